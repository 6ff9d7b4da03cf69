"""The data-management reports: open queries by site, form and age; source data verification by site and subject,
and the monitor's work list; electronic signatures by site."""

from datetime import datetime
from html import escape
from uuid import UUID

from pydantic import BaseModel, Field

from shared.readmodels.datamanagement import (
    BY_SUBJECT,
    SDV_COUNTS,
    SDV_STATUS,
    SIGNATURE_STANDS,
    QueryView,
    SdvCount,
    SdvStatus,
    find_queries,
)
from shared.readmodels.states import QueryState
from shared.runtime.postgres import Connection


class OpenQueryCount(BaseModel):
    site: str
    form_kind: str = Field(description="the form, or visit and ae for any visit's or adverse event's")
    age: str = Field(description="days open: 0-7, 8-14, 15-30, over 30")
    open: int


class QueriesReport(BaseModel):
    counts: list[OpenQueryCount]
    open: list[QueryView] = Field(description="every query not closed, oldest first")


# A form's kind: its name, or `visit` and `ae` for the forms there are one of per visit and adverse event.
FORM_KIND = "CASE WHEN form LIKE 'visit-%' THEN 'visit' WHEN form LIKE 'ae-%' THEN 'ae' ELSE form END"
AGE_BUCKET = """CASE WHEN now() - opened_at <= interval '7 days' THEN '0-7'
                     WHEN now() - opened_at <= interval '14 days' THEN '8-14'
                     WHEN now() - opened_at <= interval '30 days' THEN '15-30'
                     ELSE 'over 30' END"""


async def queries_report(conn: Connection, *, site: str | None = None) -> QueriesReport:
    counts = await conn.fetch(
        f"""SELECT site, {FORM_KIND} AS form_kind, {AGE_BUCKET} AS age, count(*)::int AS open
              FROM queries WHERE state <> '{QueryState.CLOSED}' AND ($1::text IS NULL OR site = $1)
             GROUP BY 1, 2, 3 ORDER BY 1, 2, 3""",
        site,
    )
    return QueriesReport(
        counts=[OpenQueryCount.model_validate(dict(r)) for r in counts],
        open=await find_queries(conn, site=site, open_only=True),
    )


class SdvReport(BaseModel):
    sites: list[SdvCount]
    subjects: list[SdvCount]


async def sdv_report(conn: Connection, *, site: str | None = None) -> SdvReport:
    sites = await conn.fetch(SDV_COUNTS.format(subject="NULL::text", group="site"), site, None)
    subjects = await conn.fetch(BY_SUBJECT, site, None)
    return SdvReport(
        sites=[SdvCount.model_validate(dict(r)) for r in sites],
        subjects=[SdvCount.model_validate(dict(r)) for r in subjects],
    )


class WorkItem(BaseModel):
    site: str
    subject_id: str
    form: str
    version: UUID
    recorded_at: datetime
    sdv: SdvStatus


async def sdv_worklist(conn: Connection, *, site: str | None = None, limit: int = 100) -> list[WorkItem]:
    """A monitor's work: forms whose current record is not verified, the longest waiting first."""
    rows = await conn.fetch(
        f"""SELECT site, subject_id, form, version, recorded_at, {SDV_STATUS} AS sdv FROM casebook_forms
             WHERE verified_version IS DISTINCT FROM version AND ($1::text IS NULL OR site = $1)
             ORDER BY recorded_at, subject_id, form LIMIT $2""",
        site,
        limit,
    )
    return [WorkItem.model_validate(dict(r)) for r in rows]


class SignatureCount(BaseModel):
    """A site's electronic signatures of one kind: standing, invalidated by a later change."""

    site: str
    kind: str
    valid: int
    invalidated_by_change: int


async def signatures_report(conn: Connection) -> list[SignatureCount]:
    """Every site's signatures by kind, each counted once per subject by its latest signature."""
    rows = await conn.fetch(
        f"""SELECT site, kind, count(*) FILTER (WHERE stands) AS valid,
                   count(*) FILTER (WHERE NOT stands) AS invalidated_by_change
              FROM (SELECT DISTINCT ON (s.subject_id, s.kind) s.site, s.kind, {SIGNATURE_STANDS} AS stands
                      FROM signatures s ORDER BY s.subject_id, s.kind, s.signed_at DESC) latest
             GROUP BY site, kind ORDER BY site, kind"""
    )
    return [SignatureCount.model_validate(dict(r)) for r in rows]


def _table(caption: str, header: tuple[str, ...], rows: list[tuple[object, ...]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows)
    empty = f'<tr><td colspan="{len(header)}">none</td></tr>' if not rows else ""
    return f"<table><caption>{escape(caption)}</caption><tr>{head}</tr>{body}{empty}</table>"


def data_management_tables(queries: QueriesReport, sdv: SdvReport) -> str:
    """Open queries and source data verification as HTML tables for the report page."""
    return _table(
        "Open queries by site, form and days open",
        ("site", "form", "days open", "open"),
        [(c.site, c.form_kind, c.age, c.open) for c in queries.counts],
    ) + _table(
        "Source data verification by site",
        ("site", "forms", "verified", "changed since verification", "not verified", "verified %"),
        [
            (c.site, c.forms, c.verified, c.changed_since_verification, c.not_verified, c.verified_pct)
            for c in sdv.sites
        ],
    )
