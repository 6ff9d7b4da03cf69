"""Read your own writes: a read that waits until every read model includes the record through an answer's
`stream_sequence` (the Read-After header)."""

from typing import Annotated

from fastapi import Header, Request

from services.gateway.access import Caller
from services.gateway.errors import ProblemError, service_unavailable
from shared.readmodels.catalogue import ReadModel
from shared.runtime.eventstore import EVENTS_STREAM
from shared.runtime.projections import wait_for_read_models

READ_AFTER_SECONDS = 5.0


async def read_after(
    request: Request,
    _caller: Caller,
    read_after: Annotated[
        int | None,
        Header(
            alias="Read-After",
            ge=1,
            description="a `stream_sequence` from an earlier answer: the read waits (a few seconds at most, else "
            "503 with Retry-After) until every read model includes the record through it (read your own writes)",
        ),
    ] = None,
) -> None:
    if read_after is None:
        return
    recorded = (await request.app.state.nc.jetstream().stream_info(EVENTS_STREAM)).state.last_seq
    if read_after > recorded:
        # The record does not reach it (yet): a conflict with its state, not a malformed header.
        raise ProblemError(
            409,
            "read-after-beyond-the-record",
            "Read-After is beyond the record",
            f"Read-After {read_after} is beyond the record (its last sequence is {recorded})",
            rule="read_after.recorded",
            field="header.Read-After",
        )
    try:
        await wait_for_read_models(request.app.state.pool, list(ReadModel), read_after, READ_AFTER_SECONDS)
    except TimeoutError as exc:
        raise service_unavailable(f"the read models have not reached sequence {read_after} yet") from exc
