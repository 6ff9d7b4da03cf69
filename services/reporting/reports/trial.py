"""Enrollment over time, visit compliance, adverse events by arm, open SAE alerts, the audit trail."""

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID

from pydantic import BaseModel, Field

from services.reporting.reports.pictures import svg_text
from shared.contracts.dictionary import DataDictionary
from shared.contracts.protocol import ProtocolDefinition
from shared.readmodels.states import VisitStatus
from shared.runtime.postgres import Connection


class EnrollmentPoint(BaseModel):
    day: date
    site: str
    arm: str
    randomized: int = Field(description="randomized that day")
    cumulative: int = Field(description="randomized at this site in this arm so far")


async def enrollment(conn: Connection) -> list[EnrollmentPoint]:
    rows = await conn.fetch(
        """SELECT d.day, d.site, d.arm, d.n AS randomized,
                  sum(d.n) OVER (PARTITION BY d.site, d.arm ORDER BY d.day) AS cumulative
             FROM (SELECT randomized_on AS day, site, arm, count(*) AS n
                     FROM randomizations GROUP BY 1, 2, 3) AS d
            ORDER BY d.day, d.site, d.arm"""
    )
    return [EnrollmentPoint.model_validate(dict(r)) for r in rows]


def enrollment_svg(points: list[EnrollmentPoint], *, cap: int, title: str, fat_graft_arms: tuple[str, ...]) -> str:
    """Cumulative randomizations per site and arm as steps with a marker on every enrolment day, the trial total
    against the cap, on an axis from the first enrolment day to the last (matplotlib, a Figure of its own, so it
    may be drawn in a worker thread)."""
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9, 4.5))
    ax = fig.subplots()
    series: dict[tuple[str, str], tuple[list[date], list[int]]] = {}
    for p in points:
        days, counts = series.setdefault((p.site, p.arm), ([], []))
        days.append(p.day)
        counts.append(p.cumulative)
    for (site, arm), (days, counts) in sorted(series.items()):
        style = "-" if arm in fat_graft_arms else "--"
        ax.step(
            mdates.date2num(days),  # type: ignore[no-untyped-call]
            counts,
            where="post",
            marker="o",
            markersize=4,
            label=f"{site} {arm}",
            linestyle=style,
        )
    if points:
        total_days = sorted({p.day for p in points})
        totals = [sum(p.randomized for p in points if p.day <= d) for d in total_days]
        ax.step(
            mdates.date2num(total_days),  # type: ignore[no-untyped-call]
            totals,
            where="post",
            marker="o",
            color="black",
            linewidth=2,
            label="trial total",
        )
        first, last = total_days[0] - timedelta(days=1), total_days[-1] + timedelta(days=1)
        ax.set_xlim(mdates.date2num(first), mdates.date2num(last))  # type: ignore[no-untyped-call]
        # Whole days only: over a few days an automatic locator ticks every few hours, naming each day twice.
        span = (last - first).days
        locator = (
            mdates.DayLocator(interval=max(1, -(-span // 7)))  # type: ignore[no-untyped-call]
            if span <= 90
            else mdates.AutoDateLocator(maxticks=8)  # type: ignore[no-untyped-call]
        )
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y-%m-%d"))  # type: ignore[no-untyped-call]
    ax.axhline(cap, color="#c0392b", linestyle=":", label=f"enrollment cap ({cap})")
    ax.set_ylim(0, cap * 1.08)
    ax.set_ylabel("subjects randomized")
    ax.set_title(title)
    ax.legend(loc="upper left", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    return svg_text(fig)


class VisitCompliance(BaseModel):
    site: str
    visit: str
    in_window: int
    out_of_window: int
    missed: int
    scheduled: int = Field(description="window still ahead or open")
    not_expected: int = Field(description="after the subject's withdrawal or death: neither scheduled nor missed")


async def visit_compliance(conn: Connection) -> list[VisitCompliance]:
    rows = await conn.fetch(
        f"""SELECT site, visit,
                  count(*) FILTER (WHERE status = '{VisitStatus.COMPLETED}' AND in_window) AS in_window,
                  count(*) FILTER (WHERE status = '{VisitStatus.COMPLETED}' AND NOT in_window) AS out_of_window,
                  count(*) FILTER (WHERE status = '{VisitStatus.MISSED}') AS missed,
                  count(*) FILTER (WHERE status = '{VisitStatus.SCHEDULED}') AS scheduled,
                  count(*) FILTER (WHERE status = '{VisitStatus.NOT_EXPECTED}') AS not_expected
             FROM visits GROUP BY site, visit
            ORDER BY site, min(target_date), visit"""
    )
    return [VisitCompliance.model_validate(dict(r)) for r in rows]


class Deviation(BaseModel):
    deviation_id: UUID
    site: str
    subject_id: str
    occurred_on: date = Field(
        description="the site's date the deviation happened on (the visit's, the surgery's, the late report's, the "
        "randomization's); the date it was recorded for a deviation from before the record kept it"
    )
    recorded_on: date = Field(description="the site's date when the deviation was recorded")
    kind: str = Field(description="the rule broken, e.g. VISIT_OUT_OF_WINDOW")
    code: str = Field(description="the rule code as recorded, e.g. VISIT_OUT_OF_WINDOW_M1")
    description: str


class DeviationCount(BaseModel):
    site: str
    kind: str
    deviations: int
    subjects: int


class DeviationsReport(BaseModel):
    by_site_and_kind: list[DeviationCount]
    deviations: list[Deviation]


def deviation_kind(code: str, protocol: ProtocolDefinition) -> str:
    """A visit's deviation code names the visit (VISIT_OUT_OF_WINDOW_M1); its kind is the rule without it."""
    for visit in protocol.schedule.follow_up:
        if code.endswith(f"_{visit.code}"):
            return code.removesuffix(f"_{visit.code}")
    return code


async def deviations(conn: Connection, protocol: ProtocolDefinition) -> DeviationsReport:
    rows = await conn.fetch(
        """SELECT deviation_id, site, subject_id, code, description, recorded_at, occurred_on
             FROM protocol_deviations ORDER BY site, recorded_at, subject_id, code"""
    )
    found = [
        Deviation(
            deviation_id=r["deviation_id"],
            site=r["site"],
            subject_id=r["subject_id"],
            occurred_on=r["occurred_on"] or protocol.local_date(r["site"], r["recorded_at"]),
            recorded_on=protocol.local_date(r["site"], r["recorded_at"]),
            kind=deviation_kind(r["code"], protocol),
            code=r["code"],
            description=r["description"],
        )
        for r in rows
    ]
    counts: dict[tuple[str, str], list[str]] = {}
    for d in found:
        counts.setdefault((d.site, d.kind), []).append(d.subject_id)
    return DeviationsReport(
        by_site_and_kind=[
            DeviationCount(site=site, kind=kind, deviations=len(subjects), subjects=len(set(subjects)))
            for (site, kind), subjects in sorted(counts.items())
        ],
        deviations=found,
    )


class AdverseEventCount(BaseModel):
    arm: str
    grade: int
    serious: bool
    related: bool | None = Field(
        description="possibly, probably or definitely related to either procedure; null while the investigator has "
        "not assessed the causality"
    )
    subjects: int
    events: int


class OpenAlert(BaseModel):
    alert_id: str
    site: str
    subject_id: str
    term: str
    grade: int
    raised_at: datetime
    age_hours: Decimal
    reporting_deadline: datetime
    late: bool
    escalations: int


class SafetySummary(BaseModel):
    adverse_events: list[AdverseEventCount]
    open_alerts: list[OpenAlert]


RELATED = "('possible', 'probable', 'definite')"


async def safety_summary(conn: Connection) -> SafetySummary:
    counts = await conn.fetch(
        f"""SELECT coalesce(r.arm, 'not randomized') AS arm, a.grade, a.serious,
                   (a.fat_graft_relatedness IN {RELATED} OR a.hair_transplantation_relatedness IN {RELATED}) AS related,
                   count(DISTINCT a.subject_id) AS subjects, count(*) AS events
              FROM adverse_events AS a LEFT JOIN randomizations AS r USING (subject_id)
             GROUP BY 1, 2, 3, 4 ORDER BY 1, 2, 3, 4"""
    )
    alerts = await conn.fetch(
        """SELECT alert_id::text, site, subject_id, term, grade, raised_at,
                  round(extract(epoch FROM now() - raised_at)::numeric / 3600, 1) AS age_hours,
                  site_aware_at + interval '24 hours' AS reporting_deadline, late, escalations
             FROM sae_alerts WHERE acknowledged_at IS NULL ORDER BY raised_at"""
    )
    return SafetySummary(
        adverse_events=[AdverseEventCount.model_validate(dict(r)) for r in counts],
        open_alerts=[OpenAlert.model_validate(dict(r)) for r in alerts],
    )


class AuditEntry(BaseModel):
    sequence: int
    event_id: str
    event_type: str
    site: str | None
    subject_id: str
    recorded_at: datetime
    actor: str
    actor_role: str | None
    actor_site: str | None
    reason: str | None
    protocol_version: str
    correlation_id: str
    causation_id: str | None
    data: dict[str, Any]
    changes: list[dict[str, Any]] | None = Field(
        None,
        description="a correction's fields, old → new, each with its question (`label`: en, zh) where a form asks it",
    )
    form: str | None = Field(None, description="the casebook form it records (`visit-M1`); null for other facts")


async def audit_trail(
    conn: Connection,
    dictionary: DataDictionary,
    *,
    subject: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    after: int | None = None,
) -> list[AuditEntry]:
    rows = await conn.fetch(
        """SELECT sequence, event_id::text, event_type, site, subject_id, recorded_at, actor, actor_role, actor_site,
                  reason, protocol_version, correlation_id, causation_id, data, changes, form
             FROM audit_trail
            WHERE ($1::text IS NULL OR subject_id = $1)
              AND ($2::timestamptz IS NULL OR recorded_at >= $2) AND ($3::timestamptz IS NULL OR recorded_at < $3)
              AND ($5::bigint IS NULL OR sequence > $5)
            ORDER BY sequence LIMIT $4""",
        subject,
        since,
        until,
        limit,
        after,
    )
    entries = [AuditEntry.model_validate(dict(r)) for r in rows]
    for entry in entries:
        for change in entry.changes or ():
            label = dictionary.label_of(entry.event_type, str(change["field"]), entry.data)
            change["label"] = label.model_dump() if label else None
    return entries
