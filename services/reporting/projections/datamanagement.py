"""Every form's current record and its verification; every query and the thread of its steps; every signature; the
protocol's amendments and each site's day for them."""

from shared.contracts.casebook import form_of
from shared.contracts.events import (
    DatabaseLocked,
    DomainEvent,
    FormVerified,
    ProtocolAmendmentDeployed,
    ProtocolAmendmentEffective,
    QueryAnswered,
    QueryClosed,
    QueryOpened,
    QueryReopened,
    RecordedEvent,
    SignatureApplied,
)
from shared.readmodels.catalogue import TABLES, ReadModel
from shared.readmodels.states import QueryState
from shared.runtime.postgres import JsonText
from shared.runtime.writebatch import WriteBatch

UPSERT_FORM = """
INSERT INTO casebook_forms AS f (subject_id, form, site, event_type, version, version_sequence, first_recorded_at,
                                 recorded_at, records, data, protocol_version)
VALUES ($1, $2, $3, $4, $5, $6, $7, $7, 1, $8, $9)
ON CONFLICT (subject_id, form) DO UPDATE
   SET event_type = EXCLUDED.event_type, version = EXCLUDED.version, version_sequence = EXCLUDED.version_sequence,
       recorded_at = EXCLUDED.recorded_at, records = f.records + 1, data = EXCLUDED.data,
       protocol_version = EXCLUDED.protocol_version
"""

MARK_VERIFIED = """
UPDATE casebook_forms SET verified_version = $3, verified_at = $4, verified_by = $5
 WHERE subject_id = $1 AND form = $2
"""

INSERT_VERIFIED_ITEM = """
INSERT INTO verified_items (subject_id, form, item, version, verified_at, verified_by) VALUES ($1, $2, $3, $4, $5, $6)
ON CONFLICT DO NOTHING
"""

INSERT_QUERY = f"""
INSERT INTO queries (query_id, site, subject_id, form, field, check_code, state, opened_by, opened_at, form_version,
                     updated_at)
VALUES ($1, $2, $3, $4, $5, $6, '{QueryState.OPEN}', $7, $8, $9, $8)
"""

# answered_at and closed_at keep the last time the query reached that state.
STEP_QUERY = f"""
UPDATE queries
   SET state = $2, updated_at = $3,
       answered_at = CASE WHEN $2 = '{QueryState.ANSWERED}' THEN $3 ELSE answered_at END,
       closed_at = CASE WHEN $2 = '{QueryState.CLOSED}' THEN $3 WHEN $2 = '{QueryState.REOPENED}' THEN NULL
                       ELSE closed_at END
 WHERE query_id = $1
"""

INSERT_MESSAGE = """
INSERT INTO query_messages (query_id, sequence, step, actor, actor_role, at, text) VALUES ($1, $2, $3, $4, $5, $6, $7)
"""

INSERT_SIGNATURE = """
INSERT INTO signatures (signature_id, site, subject_id, kind, meaning, signer, printed_name, signed_at, signed_at_site,
                        authenticated_at, covers, covered_sha256)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
"""

LOCK_DATABASE = """
INSERT INTO database_lock (trial_id, through_sequence, subjects, locked_at, locked_by) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT DO NOTHING
"""

DEPLOY_AMENDMENT = """
INSERT INTO protocol_amendments (version, amends, summary, summary_zh, consent_form_version, migrates, reschedules,
                                 definition, deployed_at, deployed_by, event_id)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
ON CONFLICT DO NOTHING
"""

AMENDMENT_SITE = """
INSERT INTO amendment_sites (version, site, effective_on) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING
"""

AMENDMENT_IN_FORCE = "UPDATE amendment_sites SET in_force_at = $3 WHERE version = $1 AND site = $2"

STEPS: dict[type[DomainEvent], str] = {
    QueryOpened: "opened",
    QueryAnswered: QueryState.ANSWERED,
    QueryClosed: QueryState.CLOSED,
    QueryReopened: QueryState.REOPENED,
}


class DataManagementProjection:
    """`casebook_forms`, `queries`, `query_messages`: what monitors verify and query, and where each stands."""

    name: str = ReadModel.DATA_MANAGEMENT
    tables: tuple[str, ...] = TABLES[ReadModel.DATA_MANAGEMENT]

    async def apply(self, writes: WriteBatch, event: RecordedEvent) -> None:
        e = event.envelope
        match e.data:
            case QueryOpened() as q:
                await writes.execute(
                    INSERT_QUERY, q.query_id, e.siteid, e.subject, q.form, q.field, q.check, e.actor, e.time,
                    q.form_version,
                )  # fmt: skip
                await self._message(writes, event, q.query_id, q.text)
            case QueryAnswered() | QueryClosed() | QueryReopened() as step:
                await writes.execute(STEP_QUERY, step.query_id, STEPS[type(step)], e.time)
                await self._message(writes, event, step.query_id, step.text)
            case FormVerified() as v:
                for item in v.items:
                    await writes.execute(INSERT_VERIFIED_ITEM, e.subject, v.form, item, v.version, e.time, e.actor)
                if v.record_verified:
                    await writes.execute(MARK_VERIFIED, e.subject, v.form, v.version, e.time, e.actor)
            case DatabaseLocked() as lock:
                await writes.execute(LOCK_DATABASE, e.subject, lock.through_sequence, lock.subjects, e.time, e.actor)
            case ProtocolAmendmentDeployed() as a:
                await writes.execute(
                    DEPLOY_AMENDMENT, a.version, a.amends, a.summary, a.summary_zh, a.consent_form_version,
                    list(a.migrates), a.reschedules, a.definition, e.time, e.actor, e.id,
                )  # fmt: skip
                for site, day in a.effective.items():
                    await writes.execute(AMENDMENT_SITE, a.version, site, day)
            case ProtocolAmendmentEffective() as effective:
                await writes.execute(AMENDMENT_IN_FORCE, effective.version, effective.site, e.time)
            case SignatureApplied() as s:
                await writes.execute(
                    INSERT_SIGNATURE, s.signature_id, e.siteid, e.subject, s.kind, s.meaning, e.actor, s.printed_name,
                    s.signed_at, s.signed_at_site, s.authenticated_at, s.model_dump(mode="json")["covers"],
                    s.covered_sha256,
                )  # fmt: skip
            case data if (form := form_of(data)) is not None:
                await writes.execute(
                    UPSERT_FORM, e.subject, form, e.siteid, e.type, e.id, event.sequence, e.time,
                    JsonText(event.data_json), e.protocolversion,
                )  # fmt: skip
            case _:
                pass

    async def _message(self, writes: WriteBatch, event: RecordedEvent, query_id: object, text: str | None) -> None:
        e = event.envelope
        step = STEPS[type(e.data)]
        await writes.execute(INSERT_MESSAGE, query_id, event.sequence, step, e.actor, e.actorrole, e.time, text)
