"""The data-management read model as the gateway reads it: a form's current record and its verification, queries
with their threads, signatures and what is left to sign, the database lock. The reports over them live with the
other reports (`services.reporting.reports.datamanagement`)."""

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field, JsonValue

from shared.readmodels.states import PARTICIPATION_ENDED, QueryState
from shared.runtime.postgres import Connection

# A subject whose participation has ended: the casebook is signed then.
ENDED = "(" + ", ".join(f"'{state}'" for state in sorted(PARTICIPATION_ENDED)) + ")"


class SdvStatus(StrEnum):
    NOT_VERIFIED = "not_verified"
    VERIFIED = "verified"
    CHANGED_SINCE_VERIFICATION = "changed_since_verification"


SDV_STATUS = f"""CASE WHEN verified_version IS NULL THEN '{SdvStatus.NOT_VERIFIED}'
                      WHEN verified_version = version THEN '{SdvStatus.VERIFIED}'
                      ELSE '{SdvStatus.CHANGED_SINCE_VERIFICATION}' END"""


class QueryMessageView(BaseModel):
    step: str
    actor: str
    actor_role: str | None
    at: datetime
    text: str | None


class QueryView(BaseModel):
    query_id: UUID
    site: str
    subject_id: str
    form: str
    field: str | None
    check: str | None = Field(description="the edit check that raised it; null for a person's query")
    state: str
    opened_by: str
    opened_at: datetime
    age_days: int = Field(description="whole days since it was opened")
    form_version: UUID = Field(description="the record of the form it was raised on")
    messages: list[QueryMessageView] = Field(default_factory=list)


class ItemVerification(BaseModel):
    verified_at: datetime
    verified_by: str


class FormRecord(BaseModel):
    """One record of a form, oldest first: the first entry, then each correction, re-screen or follow-up."""

    version: UUID = Field(description="the record's event id: what a correction supersedes, a query names")
    event_type: str
    recorded_at: datetime
    actor: str
    actor_role: str | None
    reason: str | None = Field(description="why it was corrected; null for a first entry")
    changes: list[dict[str, Any]] | None = Field(description="a correction's items, old → new (dotted paths)")


class FormView(BaseModel):
    """A form's current record: `version` is its ETag, what a correction supersedes and what a monitor verifies."""

    site: str
    subject_id: str
    form: str
    event_type: str
    version: UUID
    recorded_at: datetime
    records: int = Field(description="1, plus corrections, re-screens and follow-ups")
    data: dict[str, Any]
    sdv: SdvStatus
    verified_version: UUID | None
    verified_at: datetime | None
    verified_by: str | None
    protocol_version: str | None = Field(description="the protocol version the current record was made under")
    queries: list[QueryView] = Field(default_factory=list)
    history: list[FormRecord] = Field(default_factory=list, description="every record of the form, oldest first")
    verified_items: dict[str, ItemVerification] = Field(
        default_factory=dict, description="the current record's items verified one by one, by dotted path"
    )


class FormSummary(BaseModel):
    form: str
    version: UUID
    recorded_at: datetime
    sdv: SdvStatus
    open_queries: int
    protocol_version: str | None = Field(description="the protocol version the current record was made under")
    entry: dict[str, JsonValue] | None = Field(
        None, description="a log's entry: its answers, which name it in a list (its medication, its condition)"
    )


SELECT_QUERIES = f"""
SELECT query_id, site, subject_id, form, field, check_code AS check, state, opened_by, opened_at, form_version,
       floor(extract(epoch FROM (now() - opened_at)) / 86400)::int AS age_days
  FROM queries
 WHERE ($1::text IS NULL OR subject_id = $1) AND ($2::text IS NULL OR form = $2)
   AND ($3::text IS NULL OR site = $3) AND (NOT $4 OR state <> '{QueryState.CLOSED}')
 ORDER BY opened_at, query_id
"""


async def find_queries(
    conn: Connection,
    *,
    subject: str | None = None,
    form: str | None = None,
    site: str | None = None,
    open_only: bool = False,
) -> list[QueryView]:
    rows = await conn.fetch(SELECT_QUERIES, subject, form, site, open_only)
    messages: dict[UUID, list[QueryMessageView]] = {}
    if rows:
        for m in await conn.fetch(
            "SELECT query_id, step, actor, actor_role, at, text FROM query_messages"
            " WHERE query_id = ANY($1::uuid[]) ORDER BY sequence",
            [r["query_id"] for r in rows],
        ):
            messages.setdefault(m["query_id"], []).append(QueryMessageView.model_validate(dict(m)))
    return [QueryView.model_validate({**dict(r), "messages": messages.get(r["query_id"], [])}) for r in rows]


async def find_form(conn: Connection, site: str, subject: str, form: str) -> FormView | None:
    row = await conn.fetchrow(
        f"""SELECT site, subject_id, form, event_type, version, recorded_at, records, data, {SDV_STATUS} AS sdv,
                   verified_version, verified_at, verified_by, protocol_version
              FROM casebook_forms WHERE site = $1 AND subject_id = $2 AND form = $3""",
        site,
        subject,
        form,
    )
    if row is None:
        return None
    history = await conn.fetch(
        """SELECT event_id AS version, event_type, recorded_at, actor, actor_role, reason, changes
             FROM audit_trail WHERE subject_id = $1 AND form = $2 ORDER BY sequence""",
        subject,
        form,
    )
    items = await conn.fetch(
        """SELECT item, verified_at, verified_by FROM verified_items
            WHERE subject_id = $1 AND form = $2 AND version = $3""",
        subject,
        form,
        row["version"],
    )
    return FormView.model_validate(
        {
            **dict(row),
            "queries": await find_queries(conn, subject=subject, form=form),
            "history": [dict(r) for r in history],
            "verified_items": {r["item"]: dict(r) for r in items},
        }
    )


async def subject_forms(conn: Connection, subject: str) -> list[FormSummary]:
    rows = await conn.fetch(
        f"""SELECT f.form, f.version, f.recorded_at, {SDV_STATUS} AS sdv, f.protocol_version,
                   CASE WHEN f.data ? 'entry' THEN f.data->'answers' END AS entry,
                   (SELECT count(*) FROM queries q
                     WHERE q.subject_id = f.subject_id AND q.form = f.form
                       AND q.state <> '{QueryState.CLOSED}') AS open_queries
              FROM casebook_forms f WHERE f.subject_id = $1 ORDER BY f.first_recorded_at, f.form""",
        subject,
    )
    return [FormSummary.model_validate(dict(r)) for r in rows]


class SdvCount(BaseModel):
    site: str
    subject_id: str | None = Field(description="null on a site's total")
    forms: int
    verified: int
    changed_since_verification: int
    not_verified: int
    verified_pct: float = Field(description="verified forms out of all forms, %")


SDV_COUNTS = f"""
SELECT site, {{subject}} AS subject_id, count(*)::int AS forms,
       count(*) FILTER (WHERE {SDV_STATUS} = '{SdvStatus.VERIFIED}')::int AS verified,
       count(*) FILTER (WHERE {SDV_STATUS} = '{SdvStatus.CHANGED_SINCE_VERIFICATION}')::int
           AS changed_since_verification,
       count(*) FILTER (WHERE {SDV_STATUS} = '{SdvStatus.NOT_VERIFIED}')::int AS not_verified,
       round(100.0 * count(*) FILTER (WHERE {SDV_STATUS} = '{SdvStatus.VERIFIED}') / count(*), 1)::float AS verified_pct
  FROM casebook_forms WHERE ($1::text IS NULL OR site = $1) AND ($2::text IS NULL OR subject_id = $2)
 GROUP BY {{group}} ORDER BY {{group}}
"""
BY_SUBJECT = SDV_COUNTS.format(subject="subject_id", group="site, subject_id")


async def subject_sdv(conn: Connection, subject: str) -> SdvCount | None:
    """One subject's count, as the report counts it; None before any form."""
    row = await conn.fetchrow(BY_SUBJECT, None, subject)
    return SdvCount.model_validate(dict(row)) if row else None


# A signature stands while every record it covers is still its form's current one.
SIGNATURE_STANDS = """NOT EXISTS (SELECT 1 FROM jsonb_each_text(s.covers) c
                      JOIN casebook_forms f ON f.subject_id = s.subject_id AND f.form = c.key
                     WHERE f.version::text <> c.value)"""


class SignatureStatus(StrEnum):
    VALID = "valid"
    INVALIDATED_BY_CHANGE = "invalidated_by_change"


class SignatureView(BaseModel):
    signature_id: UUID
    kind: str
    meaning: str
    signer: str
    printed_name: str
    signed_at: datetime
    signed_at_site: str = Field(description="the instant of signing in the site's time zone")
    covers: dict[str, UUID]
    covered_sha256: str
    status: SignatureStatus


async def subject_signatures(conn: Connection, subject: str) -> list[SignatureView]:
    rows = await conn.fetch(
        f"""SELECT signature_id, kind, meaning, signer, printed_name, signed_at, signed_at_site, covers,
                   covered_sha256, CASE WHEN {SIGNATURE_STANDS} THEN '{SignatureStatus.VALID}'
                                        ELSE '{SignatureStatus.INVALIDATED_BY_CHANGE}' END AS status
              FROM signatures s WHERE s.subject_id = $1 ORDER BY signed_at, signature_id""",
        subject,
    )
    return [SignatureView.model_validate(dict(r)) for r in rows]


class SigningNeed(StrEnum):
    NOT_SIGNED = "not_signed"
    CHANGED_SINCE_SIGNED = "changed_since_signed"


class ToSign(BaseModel):
    subject_id: str
    kind: str
    why: SigningNeed = Field(description="never signed, or a record it covered changed since it was signed")


async def to_sign(conn: Connection, site: str) -> list[ToSign]:
    """An investigator's list: eligible subjects and finished casebooks without a signature that stands."""
    signed = f"""(SELECT CASE WHEN bool_or({SIGNATURE_STANDS}) THEN '{SignatureStatus.VALID}'
                               WHEN count(*) > 0 THEN '{SigningNeed.CHANGED_SINCE_SIGNED}' END
                    FROM signatures s WHERE s.subject_id = {{subject}} AND s.kind = '{{kind}}')"""
    rows = await conn.fetch(
        f"""SELECT subject_id, kind, coalesce(why, '{SigningNeed.NOT_SIGNED}') AS why FROM (
                SELECT f.subject_id, 'eligibility' AS kind, {signed.format(subject="f.subject_id", kind="eligibility")}
                       AS why
                  FROM casebook_forms f
                 WHERE f.site = $1 AND f.form = 'screening' AND (f.data ->> 'eligible')::boolean
                UNION ALL
                SELECT j.subject_id, 'casebook', {signed.format(subject="j.subject_id", kind="casebook")}
                  FROM subjects j WHERE j.site = $1 AND j.state IN {ENDED}
            ) t WHERE why IS DISTINCT FROM '{SignatureStatus.VALID}' ORDER BY subject_id, kind""",
        site,
    )
    return [ToSign.model_validate(dict(r)) for r in rows]


class DatabaseLockView(BaseModel):
    """The database lock for analysis: what the exports are made as of, once it exists."""

    through_sequence: int
    subjects: int
    locked_at: datetime
    locked_by: str


async def database_lock(conn: Connection) -> DatabaseLockView | None:
    row = await conn.fetchrow("SELECT through_sequence, subjects, locked_at, locked_by FROM database_lock")
    return DatabaseLockView(**dict(row)) if row else None


# Beside the export files once the database is locked: which lock they are made as of.
LOCK_FILE = "database-lock.json"


class DatabaseLockFile(BaseModel):
    """`database-lock.json`: the lock the exports are made as of."""

    through_sequence: int = Field(description="the last fact of the record the exports cover")
    locked_at: datetime
    by: str = Field(description="the data manager who locked the database")


async def frozen_export(conn: Connection, name: str) -> str | None:
    """One export file as of the database lock, once the reporting service has made them."""
    content: str | None = await conn.fetchval("SELECT content FROM frozen_exports WHERE name = $1", name)
    return content
