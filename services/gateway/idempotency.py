"""Idempotency keys stored durably in Postgres: one answer per key, across replicas and restarts."""

import asyncio
import hashlib
from dataclasses import dataclass
from uuid import UUID, uuid5

import asyncpg

from services.gateway.errors import ProblemError

# Fixed namespace: a key always maps to the same command id, so a retried command finds its own events.
COMMAND_NAMESPACE = UUID("6f1c2b0e-5d43-4a7b-9a35-0c6e7d6f9b21")
KEY_PATTERN = r"^[A-Za-z0-9._:-]{8,128}$"


def request_hash(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(b"\n".join([method.encode(), path.encode(), body])).hexdigest()


def key_scope(issuer: str, actor: str, site: str | None) -> str:
    """Whose Idempotency-Keys these are: the same staff code at two sites, or from two issuers, is two people."""
    return f"{issuer}\n{actor}\n{site or ''}"


def command_id(scope: str, key: str) -> UUID:
    return uuid5(COMMAND_NAMESPACE, f"{scope}\n{key}")


class InFlight:
    """The first request with this key has not been answered yet."""


IN_FLIGHT = InFlight()


@dataclass(frozen=True, slots=True)
class StoredResponse:
    status_code: int
    body: bytes


# A claim's commit does not wait for the disk (`synchronous_commit` off for its own transaction): it is seen by every
# replica at once all the same, and one lost in a crash of Postgres is only claimed again by the retry, under the same
# command id, so the command is not carried out twice. The answer is stored durably before it is given (`complete`).
CLAIM = """
WITH quick AS (SELECT set_config('synchronous_commit', 'off', true))
INSERT INTO idempotency_keys (scope, key, request_hash, state, leased_until)
SELECT $1, $2, $3, 'in_flight', now() + make_interval(secs => $4) FROM quick
ON CONFLICT DO NOTHING RETURNING true
"""


class IdempotencyKeys:
    def __init__(self, pool: asyncpg.Pool, *, lease_seconds: float) -> None:
        self._pool = pool
        self._lease = lease_seconds

    async def claim(self, scope: str, key: str, fingerprint: str, *, wait: float = 0.0) -> StoredResponse | None:
        """Claim the key for this request, or return the first answer it already got.

        A repeat of a request still in flight waits up to `wait` seconds for the first answer, so
        simultaneous retries all get it. Raises a 422 problem when the key was used for another
        request, 409 when the first is still in flight after waiting.
        """
        deadline = asyncio.get_running_loop().time() + wait
        while True:
            outcome = await self._try_claim(scope, key, fingerprint)
            if not isinstance(outcome, InFlight):
                return outcome
            if asyncio.get_running_loop().time() >= deadline:
                raise ProblemError(
                    409,
                    "request-in-flight",
                    "Request still in progress",
                    "a request with this Idempotency-Key is still being processed; retry shortly",
                    rule="idempotency.in_flight",
                    field="Idempotency-Key",
                    headers={"Retry-After": "1"},
                )
            await asyncio.sleep(0.025)

    async def _try_claim(self, scope: str, key: str, fingerprint: str) -> "StoredResponse | InFlight | None":
        # A new key (nearly every request) is claimed by one statement; only a key seen before needs a transaction.
        if await self._pool.fetchval(CLAIM, scope, key, fingerprint, self._lease):
            return None
        async with self._pool.acquire() as conn, conn.transaction():
            if await conn.fetchval(CLAIM, scope, key, fingerprint, self._lease):
                return None  # the claim before it was released (a 503) in between
            row = await conn.fetchrow(
                """SELECT request_hash, state, leased_until > now() AS leased, status_code, response_body
                   FROM idempotency_keys WHERE scope = $1 AND key = $2 FOR UPDATE""",
                scope,
                key,
            )
            assert row is not None
            if row["request_hash"] != fingerprint:
                raise ProblemError(
                    422,
                    "idempotency-key-reused",
                    "Idempotency-Key already used",
                    "this Idempotency-Key was used for a different request; use a new key for a new request",
                    rule="idempotency.same_request",
                    field="Idempotency-Key",
                )
            if row["state"] == "done":
                return StoredResponse(row["status_code"], bytes(row["response_body"]))
            if row["leased"]:
                return IN_FLIGHT
            # The replica that claimed it died; take over. The command id is the same, so no second fact.
            await conn.execute(
                """UPDATE idempotency_keys SET leased_until = now() + make_interval(secs => $3)
                   WHERE scope = $1 AND key = $2""",
                scope,
                key,
                self._lease,
            )
            return None

    async def complete(self, scope: str, key: str, response: StoredResponse) -> None:
        await self._pool.execute(
            """UPDATE idempotency_keys
               SET state = 'done', status_code = $3, response_body = $4, completed_at = now(), leased_until = NULL
               WHERE scope = $1 AND key = $2""",
            scope,
            key,
            response.status_code,
            response.body,
        )

    async def release(self, scope: str, key: str) -> None:
        """Forget an unanswered claim (e.g. 503) so the client's retry is processed afresh."""
        await self._pool.execute(
            "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2 AND state = 'in_flight'", scope, key
        )
