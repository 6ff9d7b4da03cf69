"""Every allocation (invalidated ones marked) and when enrollment closed."""

from shared.contracts.events import EnrollmentClosed, RandomizationInvalidated, RecordedEvent, SubjectRandomized
from shared.contracts.protocol import ProtocolDefinition
from shared.readmodels.catalogue import TABLES, ReadModel
from shared.runtime.writebatch import WriteBatch

INSERT_RANDOMIZATION = """
INSERT INTO randomizations (randomization_number, subject_id, site, stratum, arm, list_version,
                            randomized_at, randomized_on, actor, sequence)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
"""


MARK_RANDOMIZATION_INVALID = """
UPDATE randomizations SET invalidated = true, invalidation_reason = $2, invalidated_by = $3
 WHERE randomization_number = $1
"""


INSERT_ENROLLMENT_CLOSED = """
INSERT INTO enrollment (trial_id, closed_at, randomized, cap) VALUES ($1, $2, $3, $4)
"""


class RandomizationsProjection:
    """`randomizations` (every allocation, invalidated ones marked) and `enrollment` (when the cap was reached)."""

    name: str = ReadModel.RANDOMIZATIONS
    tables: tuple[str, ...] = TABLES[ReadModel.RANDOMIZATIONS]

    def __init__(self, protocol: ProtocolDefinition) -> None:
        self._protocol = protocol

    async def apply(self, writes: WriteBatch, event: RecordedEvent) -> None:
        e = event.envelope
        match e.data:
            case SubjectRandomized() as r:
                await writes.execute(
                    INSERT_RANDOMIZATION,
                    r.randomization_number,
                    e.subject,
                    e.siteid,
                    r.stratum,
                    r.arm,
                    r.list_version,
                    e.time,
                    self._protocol.local_date(e.siteid or r.stratum, e.time),
                    e.actor,
                    event.sequence,
                )
            case RandomizationInvalidated() as invalidated:
                await writes.execute(MARK_RANDOMIZATION_INVALID, invalidated.randomization_number, e.reason, e.actor)
            case EnrollmentClosed() as closed:
                await writes.execute(INSERT_ENROLLMENT_CLOSED, e.subject, e.time, closed.randomized, closed.cap)
            case _:
                pass
