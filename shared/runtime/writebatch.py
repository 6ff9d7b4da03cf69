"""A projection's writes for a batch of events, sent to Postgres as a few pipelined statements, not one per row.

One statement per event per read model made the round trip the bound (about a thousand events a second). A
projection writes as if to a connection; the batch keeps the writes and sends them when the batch is applied.

Convention every projection keeps: **a write's first parameter names the rows it writes** (the subject, the
adverse event, the query, the event). Writes on different keys touch different rows, so they may run in any
order; writes on one key run in the order they were made. The batch runs in waves: a key's next write joins
the wave after its previous one (or the same wave when it is the same statement), and each wave sends one
`executemany` per statement, which asyncpg pipelines (one round trip for all its rows); a plain insert (`Insert`)
goes as one statement for all its rows in the wave, or by COPY when they are many (a rebuild's). A read first sends
everything written before it, so it sees the batch's own writes.
"""

from collections.abc import Awaitable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from asyncpg.transaction import Transaction

from shared.runtime.postgres import Connection

# Rows of one `Insert` in a wave from which they go by COPY, not as one INSERT of them all.
COPY_FROM_ROWS = 64


@dataclass(frozen=True)
class Insert:
    """A plain insert of whole rows into one table, each row's values in the order of `columns`: a wave's rows go as
    one INSERT of them all, or by COPY when there are many (the same rows, Postgres's fastest way in)."""

    table: str
    columns: tuple[str, ...]

    @cached_property
    def _head(self) -> str:
        return f"INSERT INTO {self.table} ({', '.join(self.columns)}) VALUES "

    def sql(self, rows: int) -> str:
        """The statement inserting this many rows, their values one row after another."""
        width = len(self.columns)
        return self._head + ", ".join(
            "(" + ", ".join(f"${row * width + n}" for n in range(1, width + 1)) + ")" for row in range(rows)
        )


class WriteBatch:
    """Writes kept in order per key and sent grouped by statement; a read sends what came before it."""

    def __init__(
        self, conn: Connection, *, begin_when_sending: bool = False, after: Awaitable[None] | None = None
    ) -> None:
        """`begin_when_sending`: open a transaction (`transaction`) just before the first statement is sent, so
        a batch that writes and reads nothing costs no round trip; the caller commits or rolls it back.
        `after`: the sending of the batch before this one on the same connection, which this one is filled while:
        it sends nothing, and reads nothing, before that is done."""
        self._conn = conn
        self._begin_when_sending = begin_when_sending
        self._after = after
        self.transaction: Transaction | None = None
        # wave -> statement -> rows, in the order the statements and rows came.
        self._waves: list[dict[str | Insert, list[Sequence[Any]]]] = []
        # key -> the wave and statement of its last write
        self._last: dict[Hashable, tuple[int, str | Insert]] = {}
        # Whose writes come next: several read models writing to one batch each key their rows in their own scope.
        self.scope = ""
        self.round_trips = 0

    async def execute(self, statement: str | Insert, *args: Any) -> None:
        self._add(statement, args)

    async def executemany(self, statement: str | Insert, args: Iterable[Sequence[Any]]) -> None:
        for row in args:
            self._add(statement, row)

    async def fetchval(self, query: str, *args: Any) -> Any:
        await self.flush()
        await self._ready()
        self.round_trips += 1
        return await self._conn.fetchval(query, *args)

    async def fetch(self, query: str, *args: Any) -> list[Any]:
        await self.flush()
        await self._ready()
        self.round_trips += 1
        return await self._conn.fetch(query, *args)

    async def _ready(self) -> None:
        """Ready to send: the batch before sent (`after`), and the transaction begun if this batch begins it."""
        if self._after is not None:
            await self._after
            self._after = None
        if self._begin_when_sending and self.transaction is None:
            self.transaction = self._conn.transaction()
            await self.transaction.start()
            self.round_trips += 1

    def _add(self, statement: str | Insert, row: Sequence[Any]) -> None:
        key = (self.scope, row[0] if row else None)
        last_wave, last_statement = self._last.get(key, (0, statement))
        wave = last_wave if last_statement == statement else last_wave + 1
        if wave == len(self._waves):
            self._waves.append({})
        self._waves[wave].setdefault(statement, []).append(row)
        self._last[key] = (wave, statement)

    async def flush(self) -> None:
        """Send every kept write, wave by wave; the batch is empty after."""
        waves, self._waves, self._last = self._waves, [], {}
        if waves:
            await self._ready()
        for wave in waves:
            for statement, rows in wave.items():
                if isinstance(statement, Insert) and len(rows) >= COPY_FROM_ROWS:
                    await self._conn.copy_records_to_table(statement.table, records=rows, columns=statement.columns)
                elif isinstance(statement, Insert):
                    await self._conn.execute(statement.sql(len(rows)), *(value for row in rows for value in row))
                elif len(rows) == 1:
                    await self._conn.execute(statement, *rows[0])
                else:
                    await self._conn.executemany(statement, rows)
                self.round_trips += 1
