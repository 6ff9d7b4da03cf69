"""Each subject's site, state and milestones, for the gateway's reads and the reports."""

from shared.contracts.events import (
    AdverseEventReported,
    AdverseEventUpdated,
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
from shared.runtime.postgres import Connection

UPSERT_CONSENTED = """
INSERT INTO subjects AS s (subject_id, site, state, consent_form_version, consented_on,
                           first_event_at, last_event_at, last_event_type, last_sequence)
VALUES ($1, $2, 'consented', $3, $4, $5, $5, $6, $7)
ON CONFLICT (subject_id) DO UPDATE
   SET consent_form_version = EXCLUDED.consent_form_version,
       consented_on = EXCLUDED.consented_on,
       last_event_at = EXCLUDED.last_event_at,
       last_event_type = EXCLUDED.last_event_type,
       last_sequence = EXCLUDED.last_sequence
"""


# Screening moves a subject between the pre-randomization states only; later states are kept.
UPDATE_SCREENED = """
UPDATE subjects
   SET state = CASE WHEN state IN ('consented', 'eligible', 'screen_failed')
                    THEN CASE WHEN $2 THEN 'eligible' ELSE 'screen_failed' END ELSE state END,
       eligible = $2, screenings = $3, last_screened_on = $4, screen_failure_reasons = $5,
       last_event_at = $6, last_event_type = $7, last_sequence = $8
 WHERE subject_id = $1
"""


UPDATE_CONSENT_WITHDRAWN = """
UPDATE subjects
   SET state = 'consent_withdrawn', consent_withdrawn_on = $2,
       last_event_at = $3, last_event_type = $4, last_sequence = $5
 WHERE subject_id = $1
"""


UPDATE_RANDOMIZED = """
UPDATE subjects
   SET state = 'randomized', arm = $2, randomization_number = $3, randomized_at = $4,
       last_event_at = $4, last_event_type = $5, last_sequence = $6
 WHERE subject_id = $1
"""


UPDATE_INVALIDATED = """
UPDATE subjects
   SET randomization_invalidated = true, last_event_at = $2, last_event_type = $3, last_sequence = $4
 WHERE subject_id = $1
"""


UPDATE_TREATED = """
UPDATE subjects
   SET state = CASE WHEN state = 'randomized' THEN 'treated' ELSE state END, surgery_date = $2,
       last_event_at = $3, last_event_type = $4, last_sequence = $5
 WHERE subject_id = $1
"""


UPDATE_WITHDRAWN = """
UPDATE subjects
   SET state = CASE WHEN state = 'died' THEN state ELSE 'withdrawn' END, withdrawn_on = $2, withdrawal_reason = $3,
       last_event_at = $4, last_event_type = $5, last_sequence = $6
 WHERE subject_id = $1
"""


UPDATE_COMPLETED = """
UPDATE subjects
   SET state = CASE WHEN state = 'died' THEN state ELSE 'completed' END, completed_on = $2,
       last_event_at = $3, last_event_type = $4, last_sequence = $5
 WHERE subject_id = $1
"""


MARK_DIED = """
UPDATE subjects SET state = 'died', died_on = $2, last_event_at = $3, last_event_type = $4, last_sequence = $5
 WHERE subject_id = $1
"""


class SubjectsProjection:
    """`subjects`: each subject's site, state and latest screening outcome, for reads and reports."""

    name = "subjects"
    tables: tuple[str, ...] = ("subjects",)

    async def apply(self, conn: Connection, event: RecordedEvent) -> None:
        e = event.envelope
        match e.data:
            case ConsentRecorded() as consent:
                await conn.execute(
                    UPSERT_CONSENTED,
                    e.subject,
                    e.siteid,
                    consent.consent_form_version,
                    consent.signed_on,
                    e.time,
                    e.type,
                    event.sequence,
                )
            case SubjectScreened() as screened:
                await conn.execute(
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
                await conn.execute(
                    UPDATE_CONSENT_WITHDRAWN, e.subject, withdrawn.withdrawn_on, e.time, e.type, event.sequence
                )
            case SubjectRandomized() as randomized:
                await conn.execute(
                    UPDATE_RANDOMIZED,
                    e.subject,
                    randomized.arm,
                    randomized.randomization_number,
                    e.time,
                    e.type,
                    event.sequence,
                )
            case RandomizationInvalidated():
                await conn.execute(UPDATE_INVALIDATED, e.subject, e.time, e.type, event.sequence)
            case GraftProcedurePerformed() as p:
                await conn.execute(UPDATE_TREATED, e.subject, p.procedure_date, e.time, e.type, event.sequence)
            case SubjectWithdrawn() as w:
                await conn.execute(
                    UPDATE_WITHDRAWN, e.subject, w.withdrawn_on, w.reason_category, e.time, e.type, event.sequence
                )
            case SubjectCompletedStudy() as c:
                await conn.execute(UPDATE_COMPLETED, e.subject, c.completed_on, e.time, e.type, event.sequence)
            case AdverseEventReported(grade=5) as ae:
                await conn.execute(MARK_DIED, e.subject, ae.onset_date, e.time, e.type, event.sequence)
            case AdverseEventUpdated(grade=5):
                await conn.execute(MARK_DIED, e.subject, e.time.date(), e.time, e.type, event.sequence)
            case _:
                pass
