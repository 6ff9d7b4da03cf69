"""Adverse events as they stand, SAE alerts with acknowledgement and escalation, deviations."""

from shared.contracts.events import (
    AdverseEventReported,
    AdverseEventUpdated,
    ProtocolDeviationRecorded,
    RecordedEvent,
    SeriousAdverseEventAcknowledged,
    SeriousAdverseEventAlertEscalated,
    SeriousAdverseEventAlertRaised,
)
from shared.readmodels.catalogue import TABLES, ReadModel
from shared.runtime.writebatch import WriteBatch

INSERT_ADVERSE_EVENT = """
INSERT INTO adverse_events AS a (ae_id, subject_id, site, term, onset_date, site_aware_at, reported_at, grade,
                            seriousness, serious, fat_graft_relatedness, hair_transplantation_relatedness,
                            action_taken, outcome, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $7)
ON CONFLICT (ae_id) DO UPDATE
   SET term = EXCLUDED.term, onset_date = EXCLUDED.onset_date, site_aware_at = EXCLUDED.site_aware_at,
       grade = EXCLUDED.grade, seriousness = EXCLUDED.seriousness, serious = EXCLUDED.serious,
       fat_graft_relatedness = EXCLUDED.fat_graft_relatedness,
       hair_transplantation_relatedness = EXCLUDED.hair_transplantation_relatedness,
       action_taken = EXCLUDED.action_taken, outcome = EXCLUDED.outcome, updated_at = EXCLUDED.updated_at
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
INSERT INTO protocol_deviations (deviation_id, subject_id, site, code, description, related_event_id, recorded_at,
                                 occurred_on)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
"""


class SafetyProjection:
    """`adverse_events`, `sae_alerts` and `protocol_deviations`."""

    name: str = ReadModel.SAFETY
    tables: tuple[str, ...] = TABLES[ReadModel.SAFETY]

    async def apply(self, writes: WriteBatch, event: RecordedEvent) -> None:
        e = event.envelope
        match e.data:
            case AdverseEventReported() as ae:
                await writes.execute(
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
                    ae.relationship.fat_graft if ae.relationship else None,
                    ae.relationship.hair_transplantation if ae.relationship else None,
                    ae.action_taken,
                    ae.outcome,
                )
            case AdverseEventUpdated() as update:
                await writes.execute(
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
                await writes.execute(
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
                await writes.execute(ACKNOWLEDGE_ALERT, ack.alert_id, e.time, e.actor)
            case SeriousAdverseEventAlertEscalated() as escalated:
                await writes.execute(ESCALATE_ALERT, escalated.alert_id, escalated.escalation, e.time)
            case ProtocolDeviationRecorded() as deviation:
                await writes.execute(
                    INSERT_DEVIATION,
                    deviation.deviation_id,
                    e.subject,
                    e.siteid,
                    deviation.code,
                    deviation.description,
                    deviation.related_event_id,
                    e.time,
                    deviation.occurred_on,
                )
            case _:
                pass
