"""Reaction: enrollment closes once the randomizations reach the trial's cap, recorded exactly once.

The cap itself never depends on this fact (every allocation is decided on the trial-wide history of
randomizations); `EnrollmentClosed` tells the sites and the reports. A durable consumer of
`SubjectRandomized` delivers every allocation, again after a crash, so a close that a crash
interrupted is recorded when the reaction runs again.
"""

from uuid import NAMESPACE_URL, uuid5

from services.randomization import domain
from services.randomization.handlers import ALL_RANDOMIZATIONS
from shared.contracts.events import EnrollmentClosed, EventEnvelope, RecordedEvent, SubjectRandomized
from shared.runtime.decisions import record_once
from shared.runtime.eventstore import trial_history
from shared.runtime.service import ServiceRuntime


class EnrollmentClosing:
    name = "enrollment-closing"
    event_types: tuple[str, ...] = (SubjectRandomized.event_type,)

    def __init__(self, runtime: ServiceRuntime) -> None:
        self._runtime = runtime
        self._allocations = domain.AllocationTally()

    async def react(self, event: RecordedEvent) -> None:
        runtime, protocol = self._runtime, self._runtime.protocol
        assert isinstance(event.data, SubjectRandomized)
        if not domain.may_close_enrollment(event.data, protocol):
            return
        closed_filter = trial_history(protocol.trial_id, EnrollmentClosed.event_type)
        randomized = (await runtime.store.load(ALL_RANDOMIZATIONS)).events
        closed = (await runtime.store.load(closed_filter)).events
        decided = domain.close_enrollment(
            self._allocations.of(randomized),
            already_closed=bool(closed),
            protocol=protocol,
        )
        for fact in decided:
            envelope = EventEnvelope.wrap(
                fact,
                runtime.trial_metadata(correlation_id=event.envelope.correlationid),
                # One id for the fact, whichever allocation or replica records it.
                event_id=uuid5(NAMESPACE_URL, f"{protocol.trial_id}/EnrollmentClosed"),
                time=runtime.clock(),
            )
            await record_once(runtime.store, subject_filter=closed_filter, envelope=envelope)
