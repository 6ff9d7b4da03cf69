"""Read-model projections. One `match` case per event type used; every other event only advances the checkpoint."""

from shared.events import (
    AdverseEventReported,
    AdverseEventUpdated,
    ConsentRecorded,
    ConsentWithdrawn,
    EnrollmentClosed,
    GraftProcedurePerformed,
    ProtocolDeviationRecorded,
    RandomizationInvalidated,
    RecordedEvent,
    SeriousAdverseEventAcknowledged,
    SeriousAdverseEventAlertEscalated,
    SeriousAdverseEventAlertRaised,
    SubjectCompletedStudy,
    SubjectRandomized,
    SubjectScreened,
    SubjectWithdrawn,
    VisitCompleted,
    VisitMissed,
)
from shared.postgres import Connection
from shared.projections import Projection
from shared.protocol import ProtocolDefinition, Schedule
from shared.schedule import visit_windows

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

INSERT_RANDOMIZATION = """
INSERT INTO randomizations (randomization_number, subject_id, site, stratum, arm, list_version,
                            randomized_at, actor, sequence)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
"""

MARK_RANDOMIZATION_INVALID = """
UPDATE randomizations SET invalidated = true, invalidation_reason = $2, invalidated_by = $3
 WHERE randomization_number = $1
"""

INSERT_ENROLLMENT_CLOSED = """
INSERT INTO enrollment (trial_id, closed_at, randomized, cap) VALUES ($1, $2, $3, $4)
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

INSERT_ADVERSE_EVENT = """
INSERT INTO adverse_events (ae_id, subject_id, site, term, onset_date, site_aware_at, reported_at, grade,
                            seriousness, serious, fat_graft_relatedness, hair_transplantation_relatedness,
                            action_taken, outcome, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $7)
"""

UPDATE_ADVERSE_EVENT = """
UPDATE adverse_events
   SET grade = COALESCE($2, grade), seriousness = COALESCE($3, seriousness), serious = $4,
       fat_graft_relatedness = COALESCE($5, fat_graft_relatedness),
       hair_transplantation_relatedness = COALESCE($6, hair_transplantation_relatedness),
       action_taken = COALESCE($7, action_taken), outcome = COALESCE($8, outcome),
       updated_at = $9, follow_ups = follow_ups + 1
 WHERE ae_id = $1
RETURNING subject_id, grade
"""

INSERT_ALERT = """
INSERT INTO sae_alerts (alert_id, ae_id, subject_id, site, term, grade, seriousness, site_aware_at,
                        reported_at, raised_at, late)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
"""

ACKNOWLEDGE_ALERT = "UPDATE sae_alerts SET acknowledged_at = $2, acknowledged_by = $3 WHERE alert_id = $1"

ESCALATE_ALERT = """
UPDATE sae_alerts SET escalations = GREATEST(escalations, $2), last_escalated_at = $3 WHERE alert_id = $1
"""

INSERT_DEVIATION = """
INSERT INTO protocol_deviations (deviation_id, subject_id, site, code, description, related_event_id, recorded_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)
"""

INSERT_SCREENING = """
INSERT INTO screening_log (subject_id, screening_number, site, screening_date, eligible, bmi,
                           protocol_version, recorded_at, sequence, age_years, sex)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
"""

INSERT_CRITERIA = """
INSERT INTO screening_criteria (subject_id, screening_number, code, kind, outcome, blocks, value, rule)
SELECT $1, $2, c.code, c.kind, c.outcome, c.blocks, c.value, c.rule
  FROM unnest($3::text[], $4::text[], $5::text[], $6::boolean[], $7::text[], $8::text[])
       AS c(code, kind, outcome, blocks, value, rule)
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


class RandomizationsProjection:
    """`randomizations` (every allocation, invalidated ones marked) and `enrollment` (when the cap was reached)."""

    name = "randomizations"
    tables: tuple[str, ...] = ("randomizations", "enrollment")

    async def apply(self, conn: Connection, event: RecordedEvent) -> None:
        e = event.envelope
        match e.data:
            case SubjectRandomized() as r:
                await conn.execute(
                    INSERT_RANDOMIZATION,
                    r.randomization_number,
                    e.subject,
                    e.siteid,
                    r.stratum,
                    r.arm,
                    r.list_version,
                    e.time,
                    e.actor,
                    event.sequence,
                )
            case RandomizationInvalidated() as invalidated:
                await conn.execute(MARK_RANDOMIZATION_INVALID, invalidated.randomization_number, e.reason, e.actor)
            case EnrollmentClosed() as closed:
                await conn.execute(INSERT_ENROLLMENT_CLOSED, e.subject, e.time, closed.randomized, closed.cap)
            case _:
                pass


class ScreeningLogProjection:
    """`screening_log` and `screening_criteria`: every screening with every criterion's result."""

    name = "screening_log"
    tables: tuple[str, ...] = ("screening_log", "screening_criteria")

    async def apply(self, conn: Connection, event: RecordedEvent) -> None:
        e = event.envelope
        match e.data:
            case SubjectScreened() as screened:
                await conn.execute(
                    INSERT_SCREENING,
                    e.subject,
                    screened.screening_number,
                    e.siteid,
                    screened.screening_date,
                    screened.eligible,
                    screened.bmi,
                    e.protocolversion,
                    e.time,
                    event.sequence,
                    screened.form.age_years,
                    screened.form.sex,
                )
                c = screened.criteria
                await conn.execute(
                    INSERT_CRITERIA,
                    e.subject,
                    screened.screening_number,
                    [r.code for r in c],
                    [r.kind.value for r in c],
                    [r.outcome.value for r in c],
                    [r.blocks_eligibility for r in c],
                    [r.value for r in c],
                    [r.rule for r in c],
                )
            case _:
                pass


class SafetyProjection:
    """`adverse_events`, `sae_alerts` and `protocol_deviations`."""

    name = "safety"
    tables: tuple[str, ...] = ("adverse_events", "sae_alerts", "protocol_deviations")

    async def apply(self, conn: Connection, event: RecordedEvent) -> None:
        e = event.envelope
        match e.data:
            case AdverseEventReported() as ae:
                await conn.execute(
                    INSERT_ADVERSE_EVENT,
                    ae.ae_id,
                    e.subject,
                    e.siteid,
                    ae.term,
                    ae.onset_date,
                    ae.site_aware_at,
                    e.time,
                    ae.grade,
                    list(ae.seriousness),
                    ae.serious,
                    ae.relationship.fat_graft,
                    ae.relationship.hair_transplantation,
                    ae.action_taken,
                    ae.outcome,
                )
            case AdverseEventUpdated() as update:
                await conn.execute(
                    UPDATE_ADVERSE_EVENT,
                    update.ae_id,
                    update.grade,
                    list(update.seriousness) if update.seriousness is not None else None,
                    update.serious,
                    update.relationship.fat_graft if update.relationship else None,
                    update.relationship.hair_transplantation if update.relationship else None,
                    update.action_taken,
                    update.outcome,
                    e.time,
                )
            case SeriousAdverseEventAlertRaised() as alert:
                await conn.execute(
                    INSERT_ALERT,
                    alert.alert_id,
                    alert.ae_id,
                    e.subject,
                    e.siteid,
                    alert.term,
                    alert.grade,
                    list(alert.seriousness),
                    alert.site_aware_at,
                    alert.reported_at,
                    e.time,
                    alert.late,
                )
            case SeriousAdverseEventAcknowledged() as ack:
                await conn.execute(ACKNOWLEDGE_ALERT, ack.alert_id, e.time, e.actor)
            case SeriousAdverseEventAlertEscalated() as escalated:
                await conn.execute(ESCALATE_ALERT, escalated.alert_id, escalated.escalation, e.time)
            case ProtocolDeviationRecorded() as deviation:
                await conn.execute(
                    INSERT_DEVIATION,
                    deviation.deviation_id,
                    e.subject,
                    e.siteid,
                    deviation.code,
                    deviation.description,
                    deviation.related_event_id,
                    e.time,
                )
            case _:
                pass


UPSERT_PROCEDURE = """
INSERT INTO procedures AS p (subject_id, site, procedure_date, surgeon, anaesthesia, recipient_area_cm2,
                             follicular_units, donor_site, fat_harvest_site, harvested_fat_ml, ecm_svf_gel_ml,
                             event_id, recorded_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
ON CONFLICT (subject_id) DO UPDATE
   SET procedure_date = EXCLUDED.procedure_date, surgeon = EXCLUDED.surgeon, anaesthesia = EXCLUDED.anaesthesia,
       recipient_area_cm2 = EXCLUDED.recipient_area_cm2, follicular_units = EXCLUDED.follicular_units,
       donor_site = EXCLUDED.donor_site, fat_harvest_site = EXCLUDED.fat_harvest_site,
       harvested_fat_ml = EXCLUDED.harvested_fat_ml, ecm_svf_gel_ml = EXCLUDED.ecm_svf_gel_ml,
       event_id = EXCLUDED.event_id, corrections = p.corrections + 1, recorded_at = EXCLUDED.recorded_at
"""

# Windows follow the (possibly corrected) surgery date until the visit happens or is missed.
SCHEDULE_VISIT = """
INSERT INTO visits AS v (subject_id, visit, site, target_date, window_start, window_end, status)
VALUES ($1, $2, $3, $4, $5, $6, 'scheduled')
ON CONFLICT (subject_id, visit) DO UPDATE
   SET target_date = EXCLUDED.target_date, window_start = EXCLUDED.window_start, window_end = EXCLUDED.window_end
 WHERE v.status = 'scheduled'
"""

UPSERT_VISIT_COMPLETED = """
INSERT INTO visits AS v (subject_id, visit, site, target_date, window_start, window_end, status, in_window,
                         visit_date, study_day, hair_density_per_cm2, grafts_surviving, follicle_survival_pct,
                         satisfaction, mlossi, losdi, photo_reference, event_id, recorded_at)
VALUES ($1, $2, $3, $4, $5, $6, 'completed', $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
ON CONFLICT (subject_id, visit) DO UPDATE
   SET status = 'completed', target_date = EXCLUDED.target_date, window_start = EXCLUDED.window_start,
       window_end = EXCLUDED.window_end, in_window = EXCLUDED.in_window, visit_date = EXCLUDED.visit_date,
       study_day = EXCLUDED.study_day, hair_density_per_cm2 = EXCLUDED.hair_density_per_cm2,
       grafts_surviving = EXCLUDED.grafts_surviving, follicle_survival_pct = EXCLUDED.follicle_survival_pct,
       satisfaction = EXCLUDED.satisfaction, mlossi = EXCLUDED.mlossi, losdi = EXCLUDED.losdi,
       photo_reference = EXCLUDED.photo_reference, event_id = EXCLUDED.event_id, recorded_at = EXCLUDED.recorded_at,
       corrections = v.corrections + CASE WHEN v.status = 'completed' THEN 1 ELSE 0 END
"""

MARK_VISIT_MISSED = """
UPDATE visits SET status = 'missed', recorded_at = $3 WHERE subject_id = $1 AND visit = $2 AND status = 'scheduled'
"""


class VisitsProjection:
    """`procedures` and `visits`: the surgery record and every visit's window and status."""

    name = "visits"
    tables: tuple[str, ...] = ("procedures", "visits")

    def __init__(self, schedule: Schedule) -> None:
        self._schedule = schedule

    async def apply(self, conn: Connection, event: RecordedEvent) -> None:
        e = event.envelope
        match e.data:
            case GraftProcedurePerformed() as p:
                graft = p.fat_graft
                await conn.execute(
                    UPSERT_PROCEDURE,
                    e.subject,
                    e.siteid,
                    p.procedure_date,
                    p.surgeon,
                    p.anaesthesia,
                    p.recipient_area_cm2,
                    p.follicular_units,
                    p.donor_site,
                    graft.fat_harvest_site if graft else None,
                    graft.harvested_fat_ml if graft else None,
                    graft.ecm_svf_gel_ml if graft else None,
                    e.id,
                    e.time,
                )
                windows = visit_windows(p.procedure_date, self._schedule)
                await conn.executemany(
                    SCHEDULE_VISIT,
                    [(e.subject, w.code, e.siteid, w.target, w.start, w.end) for w in windows.values()],
                )
            case VisitCompleted() as v:
                await conn.execute(
                    UPSERT_VISIT_COMPLETED,
                    e.subject,
                    v.visit,
                    e.siteid,
                    v.target_date,
                    v.window_start,
                    v.window_end,
                    v.in_window,
                    v.visit_date,
                    v.study_day,
                    v.hair_density_per_cm2,
                    v.grafts_surviving,
                    v.follicle_survival_pct,
                    v.satisfaction,
                    v.mlossi,
                    v.losdi,
                    v.photo_reference,
                    e.id,
                    e.time,
                )
            case VisitMissed() as m:
                await conn.execute(MARK_VISIT_MISSED, e.subject, m.visit, e.time)
            case _:
                pass


INSERT_AUDIT = """
INSERT INTO audit_trail (sequence, event_id, event_type, schema_version, site, subject_id, recorded_at, actor,
                         actor_role, actor_site, actor_token, reason, protocol_version, correlation_id,
                         causation_id, data)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
"""


class AuditTrailProjection:
    """`audit_trail`: every event with who, when, why, protocol version and correlation, in stream order."""

    name = "audit_trail"
    tables: tuple[str, ...] = ("audit_trail",)

    async def apply(self, conn: Connection, event: RecordedEvent) -> None:
        e = event.envelope
        await conn.execute(
            INSERT_AUDIT,
            event.sequence,
            e.id,
            e.type,
            e.schemaversion,
            e.siteid,
            e.subject,
            e.time,
            e.actor,
            e.actorrole,
            e.actorsite,
            e.actortoken,
            e.reason,
            e.protocolversion,
            e.correlationid,
            e.causationid,
            e.data.model_dump(mode="json"),
        )


def all_projections(protocol: ProtocolDefinition) -> list[Projection]:
    return [
        SubjectsProjection(),
        ScreeningLogProjection(),
        RandomizationsProjection(),
        SafetyProjection(),
        VisitsProjection(protocol.schedule),
        AuditTrailProjection(),
    ]
