"""`/v1/reports/…`: the trial's reports for data managers, monitors and statisticians."""

from html import escape
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from services.gateway.access import allowed
from services.gateway.auth import Principal, Right
from services.gateway.errors import problem_responses
from shared.contracts.forms import Instant
from shared.contracts.protocol import SUBJECT_ID_PATTERN
from shared.readmodels import sdtm
from shared.readmodels.consort import Consort, consort, consort_svg
from shared.readmodels.trial import (
    AuditEntry,
    DeviationsReport,
    EnrollmentPoint,
    SafetySummary,
    VisitCompliance,
    audit_trail,
    deviations,
    enrollment,
    enrollment_svg,
    safety_summary,
    visit_compliance,
)

SVG = "image/svg+xml"


def reports_router() -> APIRouter:
    """Every report needs READ_REPORTS; the page links the exports too (`exports_router`)."""
    reader = Annotated[Principal, allowed(Right.READ_REPORTS)]
    router = APIRouter(prefix="/v1/reports", tags=["reports"], responses=problem_responses(401, 403))

    @router.get("", operation_id="reports_index", summary="A page linking every report", response_class=HTMLResponse)
    async def index(request: Request, caller: reader) -> HTMLResponse:
        p = request.app.state.settings.protocol()
        links = [
            ("consort.svg", "CONSORT flow diagram"),
            ("consort.json", "CONSORT flow (JSON)"),
            ("enrollment.svg", "Enrollment over time by site and arm"),
            ("enrollment.json", "Enrollment over time (JSON)"),
            ("visit-compliance.json", "Visit compliance by visit and site"),
            ("adverse-events.json", "Adverse events by arm, grade, seriousness and relatedness; open SAE alerts"),
            ("deviations.json", "Protocol deviations by site and kind, each with subject, date and rule code"),
            ("audit-trail.json", "Audit trail (filter by subject, since, until)"),
            *[(f"exports/{d}.csv", f"SDTM {d} export") for d in sdtm.DOMAINS],
            ("exports/define.json", "Define: every exported column described"),
        ]
        items = "".join(f'<li><a href="/v1/reports/{href}">{escape(text)}</a></li>' for href, text in links)
        return HTMLResponse(
            f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(p.trial_id)} reports</title></head>"
            f"<body><h1>{escape(p.trial_id)} — reports</h1><p>{escape(p.title)}</p><ul>{items}</ul></body></html>"
        )

    @router.get("/consort.json", operation_id="consort", summary="CONSORT 2010 flow")
    async def consort_json(request: Request, caller: reader) -> Consort:
        async with request.app.state.pool.acquire() as conn:
            return await consort(conn, request.app.state.settings.protocol())

    @router.get(
        "/consort.svg",
        operation_id="consort_diagram",
        summary="CONSORT 2010 flow diagram",
        response_class=Response,
        responses={200: {"content": {SVG: {}}}},
    )
    async def consort_diagram(request: Request, caller: reader) -> Response:
        async with request.app.state.pool.acquire() as conn:
            flow = await consort(conn, request.app.state.settings.protocol())
        title = f"{request.app.state.settings.protocol().trial_id} — CONSORT flow"
        return Response(consort_svg(flow, title=title), media_type=SVG)

    @router.get("/enrollment.json", operation_id="enrollment", summary="Randomizations per day, site and arm")
    async def enrollment_json(request: Request, caller: reader) -> list[EnrollmentPoint]:
        async with request.app.state.pool.acquire() as conn:
            return await enrollment(conn)

    @router.get(
        "/enrollment.svg",
        operation_id="enrollment_plot",
        summary="Cumulative enrollment by site and arm against the cap",
        response_class=Response,
        responses={200: {"content": {SVG: {}}}},
    )
    async def enrollment_plot(request: Request, caller: reader) -> Response:
        async with request.app.state.pool.acquire() as conn:
            points = await enrollment(conn)
        p = request.app.state.settings.protocol()
        svg = enrollment_svg(
            points, cap=p.enrollment_cap, title=f"{p.trial_id} enrollment", fat_graft_arms=p.fat_graft_arms
        )
        return Response(svg, media_type=SVG)

    @router.get("/visit-compliance.json", operation_id="visit_compliance", summary="Visits in window, out, missed")
    async def compliance(request: Request, caller: reader) -> list[VisitCompliance]:
        async with request.app.state.pool.acquire() as conn:
            return await visit_compliance(conn)

    @router.get("/adverse-events.json", operation_id="adverse_event_summary", summary="Adverse events and open SAEs")
    async def adverse_events(request: Request, caller: reader) -> SafetySummary:
        async with request.app.state.pool.acquire() as conn:
            return await safety_summary(conn)

    @router.get("/deviations.json", operation_id="deviations", summary="Protocol deviations by site and kind")
    async def deviations_json(request: Request, caller: reader) -> DeviationsReport:
        async with request.app.state.pool.acquire() as conn:
            return await deviations(conn, request.app.state.settings.protocol())

    @router.get("/audit-trail.json", operation_id="audit_trail", summary="Every event: who, what, when, why")
    async def audit(
        request: Request,
        caller: reader,
        subject: Annotated[str | None, Query(pattern=SUBJECT_ID_PATTERN)] = None,
        since: Annotated[Instant | None, Query(description="events recorded at or after (with its UTC offset)")] = None,
        until: Annotated[Instant | None, Query(description="events recorded before (with its UTC offset)")] = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
    ) -> list[AuditEntry]:
        async with request.app.state.pool.acquire() as conn:
            return await audit_trail(conn, subject=subject, since=since, until=until, limit=limit)

    return router
