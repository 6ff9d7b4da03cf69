"""Wiring of the randomization service: the list from the secret seed, committed before any allocation."""

import asyncio
import uuid

from faststream import FastStream

from services.randomization.allocation import AllocationList, ListParameters, generate
from services.randomization.enrollment import EnrollmentClosing
from services.randomization.handlers import build_router
from services.randomization.settings import RandomizationSettings
from shared.contracts.events import EventEnvelope, RandomizationListCommitted
from shared.contracts.protocol import ProtocolDefinition
from shared.runtime.decisions import IN_FLIGHT_PAUSE, Clock, utc_now
from shared.runtime.eventstore import ConcurrencyConflict, SameEventInFlight, trial_history
from shared.runtime.service import ServiceRuntime

NAME = "randomization"


class ListMismatch(Exception):
    """The seed at hand does not make the committed list: allocating from it would break the trial."""


def allocation_list_for(protocol: ProtocolDefinition, settings: RandomizationSettings) -> AllocationList:
    parameters = ListParameters(
        trial_id=protocol.trial_id,
        list_version=protocol.randomization.list_version,
        arms=(protocol.arms[0].code, protocol.arms[1].code),
        strata=tuple(s.code for s in protocol.sites),
        # Any one site could enrol the whole trial: each stratum holds the cap (in whole blocks).
        slots_per_stratum=protocol.enrollment_cap,
        block_sizes=protocol.randomization.block_sizes,
        seed_kind=settings.randomization_seed_kind,
    )
    return generate(parameters, settings.seed())


def commitment_event(allocation_list: AllocationList) -> RandomizationListCommitted:
    p = allocation_list.parameters
    return RandomizationListCommitted(
        list_version=p.list_version,
        algorithm="hmac-sha256-drbg/permuted-blocks/v1",
        commitment=allocation_list.commitment,
        seed_kind=p.seed_kind.value,
        seed_fingerprint=allocation_list.seed_fingerprint,
        arms=p.arms,
        strata=p.strata,
        slots_per_stratum=p.slots_per_stratum,
        block_sizes=p.block_sizes,
    )


async def commit_list(runtime: ServiceRuntime, allocation_list: AllocationList) -> RandomizationListCommitted:
    """Record the list's commitment once, before the first allocation; refuse a seed that makes another list."""
    event = commitment_event(allocation_list)
    envelope = EventEnvelope.wrap(
        event,
        runtime.trial_metadata(correlation_id=f"startup-{uuid.uuid4()}"),
        event_id=uuid.uuid5(uuid.NAMESPACE_URL, f"{runtime.protocol.trial_id}/list/v{event.list_version}"),
        time=runtime.clock(),
    )
    subject_filter = trial_history(runtime.protocol.trial_id, RandomizationListCommitted.event_type)
    committed = None
    for attempt in range(1, 6):  # replicas starting together: one records it, the others read it
        history = await runtime.store.load(subject_filter)
        versions = {
            e.data.list_version: e.data for e in history.events if isinstance(e.data, RandomizationListCommitted)
        }
        committed = versions.get(event.list_version)
        if committed is not None:
            break
        try:
            await runtime.store.append(
                [envelope], subject_filter=subject_filter, expected_last_sequence=history.last_sequence
            )
            return event
        except SameEventInFlight:
            await asyncio.sleep(IN_FLIGHT_PAUSE * attempt)  # another replica is recording it: read it after
        except ConcurrencyConflict:
            continue
    if committed is None:
        raise ListMismatch("could not record or read the list's commitment")
    if committed.commitment != event.commitment:
        raise ListMismatch(
            f"the {committed.seed_kind} list committed (seed {committed.seed_fingerprint}) is not the one this "
            f"{event.seed_kind} seed ({event.seed_fingerprint}) makes; check RANDOMIZATION_SEED"
        )
    return committed


def build_app(settings: RandomizationSettings, *, clock: Clock = utc_now) -> FastStream:
    runtime = ServiceRuntime.create(NAME, settings, clock=clock)
    allocation_list = allocation_list_for(runtime.protocol, settings)
    runtime.broker.include_router(build_router(runtime, settings, allocation_list))
    runtime.react_with(lambda: EnrollmentClosing(runtime))
    app = FastStream(runtime.broker, logger=None)

    async def start() -> None:
        await runtime.start()
        await commit_list(runtime, allocation_list)

    app.on_startup(start)
    app.on_shutdown(runtime.stop)
    return app
