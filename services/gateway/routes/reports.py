"""`/v1/reports/…`: the trial's reports for data managers, monitors and statisticians."""

import functools
import hashlib
import json
from collections import OrderedDict
from collections.abc import Callable, Sequence
from html import escape
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from services.gateway.access import allowed
from services.gateway.auth import Principal, Right
from services.gateway.consistency import read_after
from services.gateway.errors import problem_responses
from services.gateway.openapi import SvgResponse
from services.reporting.reports import datasets
from services.reporting.reports.consort import Consort, consort, consort_svg
from services.reporting.reports.datamanagement import (
    QueriesReport,
    SdvReport,
    SignatureCount,
    WorkItem,
    data_management_tables,
    queries_report,
    sdv_report,
    sdv_worklist,
    signatures_report,
)
from services.reporting.reports.endpoints import (
    PrimaryEndpointReport,
    VisitEstimate,
    endpoint_records,
    over_time,
    over_time_svg,
    primary_endpoint,
    primary_endpoint_table,
)
from services.reporting.reports.index import PICTURES, REPORTS, exports
from services.reporting.reports.trial import (
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
from shared.contracts.forms import Instant
from shared.contracts.protocol import SITE_CODE_PATTERN, SUBJECT_ID_PATTERN

PAGE_STYLE = (
    "body{font-family:sans-serif;margin:2em;max-width:70em} table{border-collapse:collapse;margin:1em 0}"
    " td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left} caption{font-weight:bold;text-align:left}"
    " figure{margin:1em 0} img{max-width:100%;border:1px solid #eee}"
)


class Drawn:
    """Pictures already drawn, by what they were drawn from: drawing takes a few hundred milliseconds (matplotlib,
    off the event loop, on a figure of its own), so the same data is drawn once; new data is a new key. The last
    few are kept, per gateway process."""

    def __init__(self, keep: int = 16) -> None:
        self.keep = keep
        self._svgs: OrderedDict[str, str] = OrderedDict()

    async def svg(self, name: str, data: Sequence[BaseModel], draw: Callable[[], str]) -> str:
        made_of = json.dumps([d.model_dump(mode="json") for d in data], sort_keys=True).encode()
        key = f"{name}:{hashlib.sha256(made_of).hexdigest()}"
        if key not in self._svgs:
            self._svgs[key] = await run_in_threadpool(draw)
            while len(self._svgs) > self.keep:
                self._svgs.popitem(last=False)
        self._svgs.move_to_end(key)
        return self._svgs[key]


def reports_router() -> APIRouter:
    """Every report needs READ_REPORTS, and reads the caller's own writes when asked (Read-After: the sequence of
    an answer); the page links the exports too (`exports_router`)."""
    reader = Annotated[Principal, allowed(Right.READ_REPORTS)]
    router = APIRouter(
        prefix="/v1/reports",
        tags=["reports"],
        responses=problem_responses(401, 403),
        dependencies=[Depends(read_after)],
    )
    drawn = Drawn()

    @router.get("", operation_id="reports_index", summary="A page linking every report", response_class=HTMLResponse)
    async def index(request: Request, caller: reader) -> HTMLResponse:
        p = request.app.state.settings.protocol()
        async with request.app.state.pool.acquire() as conn:
            primary = primary_endpoint(await endpoint_records(conn), p)
            data_management = data_management_tables(await queries_report(conn), await sdv_report(conn))
        items = "".join(
            f'<li><a href="/v1/reports/{href}">{escape(text.en)}</a></li>'
            for href, text in (*REPORTS, *exports(datasets.names(request.app.state.versions.held.exported_forms)))
        )
        figures = "".join(
            f'<figure><img src="/v1/reports/{href}" alt="{escape(text.en)}">'
            f"<figcaption>{escape(text.en)}</figcaption></figure>"
            for href, text in PICTURES
        )
        return HTMLResponse(
            f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(p.trial_id)} reports</title>"
            f"<style>{PAGE_STYLE}</style></head>"
            f"<body><h1>{escape(p.trial_id)} — reports</h1><p>{escape(p.title)}</p>"
            f"<h2>Primary endpoint</h2>{primary_endpoint_table(primary)}"
            f"<h2>Data management</h2>{data_management}"
            f"<h2>Pictures</h2>{figures}<h2>Reports and exports</h2><ul>{items}</ul></body></html>"
        )

    @router.get("/consort.json", operation_id="consort", summary="CONSORT 2010 flow")
    async def consort_json(request: Request, caller: reader) -> Consort:
        async with request.app.state.pool.acquire() as conn:
            return await consort(conn, request.app.state.settings.protocol())

    @router.get(
        "/consort.svg",
        operation_id="consort_diagram",
        summary="CONSORT 2010 flow diagram",
        response_class=SvgResponse,
    )
    async def consort_diagram(request: Request, caller: reader) -> SvgResponse:
        async with request.app.state.pool.acquire() as conn:
            flow = await consort(conn, request.app.state.settings.protocol())
        title = f"{request.app.state.settings.protocol().trial_id} — CONSORT flow"
        return SvgResponse(consort_svg(flow, title=title))

    @router.get("/enrollment.json", operation_id="enrollment", summary="Randomizations per day, site and arm")
    async def enrollment_json(request: Request, caller: reader) -> list[EnrollmentPoint]:
        async with request.app.state.pool.acquire() as conn:
            return await enrollment(conn)

    @router.get(
        "/enrollment.svg",
        operation_id="enrollment_plot",
        summary="Cumulative enrollment by site and arm against the cap",
        response_class=SvgResponse,
    )
    async def enrollment_plot(request: Request, caller: reader) -> SvgResponse:
        async with request.app.state.pool.acquire() as conn:
            points = await enrollment(conn)
        p = request.app.state.settings.protocol()
        draw = functools.partial(
            enrollment_svg, points, cap=p.enrollment_cap, title=f"{p.trial_id} enrollment",
            fat_graft_arms=p.fat_graft_arms,
        )  # fmt: skip
        return SvgResponse(await drawn.svg("enrollment", points, draw))

    @router.get(
        "/primary-endpoint.json",
        operation_id="primary_endpoint",
        summary="Follicle survival at the primary-endpoint visit by arm: summaries, Welch and Hodges-Lehmann",
    )
    async def primary_endpoint_json(request: Request, caller: reader) -> PrimaryEndpointReport:
        async with request.app.state.pool.acquire() as conn:
            records = await endpoint_records(conn)
        return primary_endpoint(records, request.app.state.settings.protocol())

    @router.get(
        "/endpoints.json", operation_id="endpoints_over_time", summary="Every assessment by visit and arm (95% CI)"
    )
    async def endpoints_json(request: Request, caller: reader) -> list[VisitEstimate]:
        async with request.app.state.pool.acquire() as conn:
            records = await endpoint_records(conn)
        return over_time(records, request.app.state.settings.protocol())

    @router.get(
        "/endpoints.svg",
        operation_id="endpoints_plot",
        summary="Every assessment by visit and arm: means with 95% confidence intervals",
        response_class=SvgResponse,
    )
    async def endpoints_plot(request: Request, caller: reader) -> SvgResponse:
        protocol = request.app.state.settings.protocol()
        async with request.app.state.pool.acquire() as conn:
            estimates = over_time(await endpoint_records(conn), protocol)
        return SvgResponse(
            await drawn.svg("endpoints", estimates, functools.partial(over_time_svg, estimates, protocol))
        )

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

    @router.get("/queries.json", operation_id="queries_report", summary="Open queries by site, form and age")
    async def queries_json(
        request: Request, caller: reader, site: Annotated[str | None, Query(pattern=SITE_CODE_PATTERN)] = None
    ) -> QueriesReport:
        async with request.app.state.pool.acquire() as conn:
            return await queries_report(conn, site=site)

    @router.get(
        "/signatures.json",
        operation_id="signatures_report",
        summary="Investigators' electronic signatures by site and kind: standing, or invalidated by a later change",
    )
    async def signatures_json(request: Request, caller: reader) -> list[SignatureCount]:
        async with request.app.state.pool.acquire() as conn:
            return await signatures_report(conn)

    @router.get("/sdv.json", operation_id="sdv_report", summary="Source data verification by site and subject")
    async def sdv_json(
        request: Request, caller: reader, site: Annotated[str | None, Query(pattern=SITE_CODE_PATTERN)] = None
    ) -> SdvReport:
        async with request.app.state.pool.acquire() as conn:
            return await sdv_report(conn, site=site)

    @router.get(
        "/sdv-worklist.json", operation_id="sdv_worklist", summary="Forms not yet verified, the longest waiting first"
    )
    async def worklist_json(
        request: Request,
        caller: reader,
        site: Annotated[str | None, Query(pattern=SITE_CODE_PATTERN)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[WorkItem]:
        async with request.app.state.pool.acquire() as conn:
            return await sdv_worklist(conn, site=site, limit=limit)

    @router.get("/audit-trail.json", operation_id="audit_trail", summary="Every event: who, what, when, why")
    async def audit(
        request: Request,
        caller: reader,
        subject: Annotated[str | None, Query(pattern=SUBJECT_ID_PATTERN)] = None,
        since: Annotated[Instant | None, Query(description="events recorded at or after (with its UTC offset)")] = None,
        until: Annotated[Instant | None, Query(description="events recorded before (with its UTC offset)")] = None,
        after: Annotated[int | None, Query(ge=0, description="the next page: the last sequence of this one")] = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = 1000,
    ) -> list[AuditEntry]:
        async with request.app.state.pool.acquire() as conn:
            forms = request.app.state.settings.protocol().forms
            return await audit_trail(conn, forms, subject=subject, since=since, until=until, after=after, limit=limit)

    return router
