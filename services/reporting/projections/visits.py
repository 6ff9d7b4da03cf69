"""The surgery record and every visit's window and status."""

from shared.contracts.events import (
    AdverseEventReported,
    AdverseEventUpdated,
    EndpointAssessed,
    GraftProcedurePerformed,
    RecordedEvent,
    ScalpPhotographRecorded,
    SubjectWithdrawn,
    VisitCompleted,
    VisitMissed,
)
from shared.contracts.protocol import ProtocolDefinition
from shared.contracts.schedule import date_of_death, visit_windows
from shared.readmodels.catalogue import TABLES, ReadModel
from shared.readmodels.states import VisitStatus
from shared.runtime.writebatch import WriteBatch

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
SCHEDULE_VISIT = f"""
INSERT INTO visits AS v (subject_id, visit, site, target_date, window_start, window_end, status)
VALUES ($1, $2, $3, $4, $5, $6, '{VisitStatus.SCHEDULED}')
ON CONFLICT (subject_id, visit) DO UPDATE
   SET target_date = EXCLUDED.target_date, window_start = EXCLUDED.window_start, window_end = EXCLUDED.window_end
 WHERE v.status = '{VisitStatus.SCHEDULED}'
"""


UPSERT_VISIT_COMPLETED = f"""
INSERT INTO visits AS v (subject_id, visit, site, target_date, window_start, window_end, status, in_window,
                         visit_date, study_day, hair_density_per_cm2, grafts_surviving, follicle_survival_pct,
                         satisfaction, mlossi, losdi, photo_reference, event_id, recorded_at)
VALUES ($1, $2, $3, $4, $5, $6, '{VisitStatus.COMPLETED}', $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)
ON CONFLICT (subject_id, visit) DO UPDATE
   SET status = '{VisitStatus.COMPLETED}', target_date = EXCLUDED.target_date, window_start = EXCLUDED.window_start,
       window_end = EXCLUDED.window_end, in_window = EXCLUDED.in_window, visit_date = EXCLUDED.visit_date,
       study_day = EXCLUDED.study_day, hair_density_per_cm2 = EXCLUDED.hair_density_per_cm2,
       grafts_surviving = EXCLUDED.grafts_surviving, follicle_survival_pct = EXCLUDED.follicle_survival_pct,
       satisfaction = EXCLUDED.satisfaction, mlossi = EXCLUDED.mlossi, losdi = EXCLUDED.losdi,
       photo_reference = EXCLUDED.photo_reference, event_id = EXCLUDED.event_id, recorded_at = EXCLUDED.recorded_at,
       corrections = v.corrections + CASE WHEN v.status = '{VisitStatus.COMPLETED}' THEN 1 ELSE 0 END
"""


MARK_VISIT_MISSED = f"""
UPDATE visits SET status = '{VisitStatus.MISSED}', recorded_at = $3
 WHERE subject_id = $1 AND visit = $2 AND status = '{VisitStatus.SCHEDULED}'
"""


# Participation ended early: the visits still ahead are not expected. A window closed before the end stays
# scheduled until the visits service records it missed.
WITHDRAWN_ON = "withdrawn on "
EXPECTED_AGAIN = f"""
UPDATE visits SET status = '{VisitStatus.SCHEDULED}', not_expected_reason = NULL
 WHERE subject_id = $1 AND status = '{VisitStatus.NOT_EXPECTED}' AND not_expected_reason LIKE $2
"""


MARK_NOT_EXPECTED = f"""
UPDATE visits SET status = '{VisitStatus.NOT_EXPECTED}', not_expected_reason = $3, recorded_at = $4
 WHERE subject_id = $1 AND status = '{VisitStatus.SCHEDULED}' AND window_end >= $2
"""


INSERT_PHOTOGRAPH = """
INSERT INTO scalp_photographs (sha256, subject_id, site, visit, view, media_type, width, height, size_bytes,
                               event_id, recorded_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT (subject_id, sha256) DO NOTHING
"""


UPSERT_ASSESSMENT = """
INSERT INTO endpoint_assessments (subject_id, visit, site, grafts_surviving, hair_density_per_cm2, photographs,
                                  assessed_by, event_id, recorded_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
ON CONFLICT (subject_id, visit) DO UPDATE
   SET grafts_surviving = EXCLUDED.grafts_surviving, hair_density_per_cm2 = EXCLUDED.hair_density_per_cm2,
       photographs = EXCLUDED.photographs, assessed_by = EXCLUDED.assessed_by, event_id = EXCLUDED.event_id,
       recorded_at = EXCLUDED.recorded_at
"""


class VisitsProjection:
    """`procedures`, `visits`, `scalp_photographs` and `endpoint_assessments`: the surgery record, every visit's
    window and status, the photographs taken at each and the blinded assessor's counts on them."""

    name: str = ReadModel.VISITS
    tables: tuple[str, ...] = TABLES[ReadModel.VISITS]

    def __init__(self, protocol: ProtocolDefinition) -> None:
        self._protocol = protocol
        self._schedule = protocol.schedule

    async def apply(self, writes: WriteBatch, event: RecordedEvent) -> None:
        e = event.envelope
        match e.data:
            case GraftProcedurePerformed() as p:
                graft = p.fat_graft
                await writes.execute(
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
                await writes.executemany(
                    SCHEDULE_VISIT,
                    [(e.subject, w.code, e.siteid, w.target, w.start, w.end) for w in windows.values()],
                )
            case VisitCompleted() as v:
                await writes.execute(
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
            case ScalpPhotographRecorded() as photograph:
                await writes.execute(
                    INSERT_PHOTOGRAPH,
                    photograph.sha256,
                    e.subject,
                    e.siteid,
                    photograph.visit,
                    photograph.view,
                    photograph.media_type,
                    photograph.width,
                    photograph.height,
                    photograph.size_bytes,
                    e.id,
                    e.time,
                )
            case EndpointAssessed() as assessed:
                await writes.execute(
                    UPSERT_ASSESSMENT,
                    e.subject,
                    assessed.visit,
                    e.siteid,
                    assessed.grafts_surviving,
                    assessed.hair_density_per_cm2,
                    list(assessed.photographs),
                    e.actor,
                    e.id,
                    e.time,
                )
            case VisitMissed() as m:
                await writes.execute(MARK_VISIT_MISSED, e.subject, m.visit, e.time)
            case SubjectWithdrawn() as w:
                if w.supersedes is not None:
                    # A corrected withdrawal: what the withdrawal as first recorded made not expected is
                    # scheduled again, then the corrected date decides.
                    await writes.execute(EXPECTED_AGAIN, e.subject, f"{WITHDRAWN_ON}%")
                reason = f"{WITHDRAWN_ON}{w.withdrawn_on} ({w.reason_category})"
                await writes.execute(MARK_NOT_EXPECTED, e.subject, w.withdrawn_on, reason, e.time)
            case AdverseEventReported(grade=5) | AdverseEventUpdated(grade=5) as fatal:
                died_on = date_of_death(fatal, self._protocol, e.siteid or "")
                await writes.execute(MARK_NOT_EXPECTED, e.subject, died_on, f"died on {died_on}", e.time)
            case _:
                pass
