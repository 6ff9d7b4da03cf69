"""Each subject's site, state and milestones, for the gateway's reads and the reports."""

from shared.contracts.events import (
    AdverseEventReported,
    AdverseEventUpdated,
    CasebookLocked,
    CasebookUnlocked,
    ConsentDeclined,
    ConsentRecorded,
    ConsentWithdrawn,
    GraftProcedurePerformed,
    RandomizationInvalidated,
    RecordedEvent,
    SubjectCompletedStudy,
    SubjectRandomized,
    SubjectScreened,
    SubjectWithdrawn,
)
from shared.contracts.protocol import ProtocolDefinition
from shared.contracts.schedule import date_of_death
from shared.readmodels.catalogue import TABLES, ReadModel
from shared.readmodels.states import SubjectState
from shared.runtime.writebatch import WriteBatch

# The states are the read model's contract (`SubjectState`), shared with the gateway and the reports.
# The date of consent is the first consent's (a re-consent on a revised form leaves it); the version, the latest's.
UPSERT_CONSENTED = f"""
INSERT INTO subjects AS s (subject_id, site, state, consent_form_version, consented_on,
                           first_event_at, last_event_at, last_event_type, last_sequence)
VALUES ($1, $2, '{SubjectState.CONSENTED}', $3,
        COALESCE((SELECT min(c.signed_on) FROM consent_versions c WHERE c.subject_id = $1), $4), $5, $5, $6, $7)
ON CONFLICT (subject_id) DO UPDATE
   SET consent_form_version = EXCLUDED.consent_form_version,
       consented_on = EXCLUDED.consented_on,
       last_event_at = EXCLUDED.last_event_at,
       last_event_type = EXCLUDED.last_event_type,
       last_sequence = EXCLUDED.last_sequence
"""


# Screening moves a subject between the pre-randomization states only; later states are kept.
UPDATE_SCREENED = f"""
UPDATE subjects
   SET state = CASE WHEN state IN ('{SubjectState.CONSENTED}', '{SubjectState.ELIGIBLE}',
                                   '{SubjectState.SCREEN_FAILED}')
                    THEN CASE WHEN $2 THEN '{SubjectState.ELIGIBLE}' ELSE '{SubjectState.SCREEN_FAILED}' END
                    ELSE state END,
       eligible = $2, screenings = $3, last_screened_on = $4, screen_failure_reasons = $5,
       last_event_at = $6, last_event_type = $7, last_sequence = $8
 WHERE subject_id = $1
"""


INSERT_DECLINED = f"""
INSERT INTO subjects (subject_id, site, state, consent_declined_on, consent_declined_reason,
                      first_event_at, last_event_at, last_event_type, last_sequence)
VALUES ($1, $2, '{SubjectState.CONSENT_DECLINED}', $3, $4, $5, $5, $6, $7)
"""


# A subject who left the study, died or completed it keeps that state; the withdrawn consent is recorded beside it.
UPDATE_CONSENT_WITHDRAWN = f"""
UPDATE subjects
   SET state = CASE WHEN state IN ('{SubjectState.WITHDRAWN}', '{SubjectState.DIED}', '{SubjectState.COMPLETED}')
                    THEN state ELSE '{SubjectState.CONSENT_WITHDRAWN}' END,
       consent_withdrawn_on = $2,
       last_event_at = $3, last_event_type = $4, last_sequence = $5
 WHERE subject_id = $1
"""


UPDATE_RANDOMIZED = f"""
UPDATE subjects
   SET state = '{SubjectState.RANDOMIZED}', arm = $2, randomization_number = $3, randomized_at = $4,
       randomized_on = $7, last_event_at = $4, last_event_type = $5, last_sequence = $6
 WHERE subject_id = $1
"""


UPDATE_INVALIDATED = """
UPDATE subjects
   SET randomization_invalidated = true, last_event_at = $2, last_event_type = $3, last_sequence = $4
 WHERE subject_id = $1
"""


UPDATE_TREATED = f"""
UPDATE subjects
   SET state = CASE WHEN state = '{SubjectState.RANDOMIZED}' THEN '{SubjectState.TREATED}' ELSE state END,
       surgery_date = $2,
       last_event_at = $3, last_event_type = $4, last_sequence = $5
 WHERE subject_id = $1
"""


UPDATE_WITHDRAWN = f"""
UPDATE subjects
   SET state = CASE WHEN state = '{SubjectState.DIED}' THEN state ELSE '{SubjectState.WITHDRAWN}' END,
       withdrawn_on = $2, withdrawal_reason = $3,
       last_event_at = $4, last_event_type = $5, last_sequence = $6
 WHERE subject_id = $1
"""


UPDATE_COMPLETED = f"""
UPDATE subjects
   SET state = CASE WHEN state = '{SubjectState.DIED}' THEN state ELSE '{SubjectState.COMPLETED}' END,
       completed_on = $2,
       last_event_at = $3, last_event_type = $4, last_sequence = $5
 WHERE subject_id = $1
"""


MARK_DIED = f"""
UPDATE subjects
   SET state = '{SubjectState.DIED}', died_on = COALESCE(died_on, $2),
       last_event_at = $3, last_event_type = $4, last_sequence = $5
 WHERE subject_id = $1
"""


# The consent form versions signed, by record: a correction replaces the record it corrects.
SIGNED = """
WITH corrected AS (DELETE FROM consent_versions WHERE record_id = $6)
INSERT INTO consent_versions (subject_id, record_id, site, version, signed_on) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT DO NOTHING
"""

# Whether the casebook is locked: the lock's time, or null once unlocked (not a clinical event: the
# subject's last event stays what it was).
MARK_LOCKED = "UPDATE subjects SET casebook_locked_at = $2 WHERE subject_id = $1"


class SubjectsProjection:
    """`subjects`: each subject's site, state and latest screening outcome, for reads and reports."""

    name: str = ReadModel.SUBJECTS
    tables: tuple[str, ...] = TABLES[ReadModel.SUBJECTS]

    def __init__(self, protocol: ProtocolDefinition) -> None:
        self._protocol = protocol

    async def apply(self, writes: WriteBatch, event: RecordedEvent) -> None:
        e = event.envelope
        match e.data:
            case ConsentRecorded() as consent:
                # Its record first: the subject's date of consent is read from the records.
                await writes.execute(
                    SIGNED, e.subject, e.id, e.siteid, consent.consent_form_version, consent.signed_on,
                    consent.supersedes,
                )  # fmt: skip
                await writes.execute(
                    UPSERT_CONSENTED,
                    e.subject,
                    e.siteid,
                    consent.consent_form_version,
                    consent.signed_on,
                    e.time,
                    e.type,
                    event.sequence,
                )
            case ConsentDeclined() as declined:
                await writes.execute(
                    INSERT_DECLINED,
                    e.subject,
                    e.siteid,
                    declined.declined_on,
                    declined.reason,
                    e.time,
                    e.type,
                    event.sequence,
                )
            case SubjectScreened() as screened:
                await writes.execute(
                    UPDATE_SCREENED,
                    e.subject,
                    screened.eligible,
                    screened.screening_number,
                    screened.screening_date,
                    list(screened.reasons),
                    e.time,
                    e.type,
                    event.sequence,
                )
            case ConsentWithdrawn() as withdrawn:
                await writes.execute(
                    UPDATE_CONSENT_WITHDRAWN, e.subject, withdrawn.withdrawn_on, e.time, e.type, event.sequence
                )
            case SubjectRandomized() as randomized:
                await writes.execute(
                    UPDATE_RANDOMIZED,
                    e.subject,
                    randomized.arm,
                    randomized.randomization_number,
                    e.time,
                    e.type,
                    event.sequence,
                    self._protocol.local_date(e.siteid or randomized.stratum, e.time),
                )
            case RandomizationInvalidated():
                await writes.execute(UPDATE_INVALIDATED, e.subject, e.time, e.type, event.sequence)
            case GraftProcedurePerformed() as p:
                await writes.execute(UPDATE_TREATED, e.subject, p.procedure_date, e.time, e.type, event.sequence)
            case SubjectWithdrawn() as w:
                await writes.execute(
                    UPDATE_WITHDRAWN, e.subject, w.withdrawn_on, w.reason_category, e.time, e.type, event.sequence
                )
            case SubjectCompletedStudy() as c:
                await writes.execute(UPDATE_COMPLETED, e.subject, c.completed_on, e.time, e.type, event.sequence)
            case AdverseEventReported(grade=5) | AdverseEventUpdated(grade=5) as fatal:
                died_on = date_of_death(fatal, self._protocol, e.siteid or "")
                await writes.execute(MARK_DIED, e.subject, died_on, e.time, e.type, event.sequence)
            case CasebookLocked():
                await writes.execute(MARK_LOCKED, e.subject, e.time)
            case CasebookUnlocked():
                await writes.execute(MARK_LOCKED, e.subject, None)
            case _:
                pass
