"""The trial-wide desks: a monitor's work list, the safety officer's SAE inbox (pushed by server-sent events), the
reports and exports, and the database lock."""

import asyncio
import functools
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime, time, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from services.reporting.reports.endpoints import ANALYSIS_SETS
from services.reporting.reports.index import PICTURES, REPORTS, exports
from services.web.forms import parsed, typed_day
from services.web.gateway import Gateway, GatewayProblem
from services.web.i18n import language, translator
from services.web.pages import PagesOf, Said, column_word
from shared.contracts.access import Right, may
from shared.readmodels.alerts import AlertState

router = APIRouter()


@router.get("/worklist")
async def worklist(request: Request, pages: PagesOf, site: str | None = None) -> Response:
    """A monitor's work, at every site or one: forms waiting for source verification, oldest first, and every
    query not closed."""
    session = pages.signed_in(request)
    if site is not None and pages.protocol.site(site) is None:
        raise GatewayProblem.of(404, "not-found", f"no site {site} in the protocol")
    at_site = {"site": site} if site else {}
    forms = await request.app.state.gateway.get(session, "/v1/reports/sdv-worklist.json", **at_site)
    queries = (await request.app.state.gateway.get(session, "/v1/reports/queries.json"))["open"]
    queries = [q for q in queries if site is None or q["site"] == site]
    return pages.page(request, "worklist.html", session, forms=forms, queries=queries, site=site)


AUDIT_PAGE = 50


@router.get("/audit")
async def audit(
    request: Request,
    pages: PagesOf,
    subject: str = "",
    since: str = "",
    until: str = "",
    after: int | None = None,
) -> Response:
    """The audit trail as people read it: a page of entries at a time, oldest first, filtered by subject and by the
    site's days; each in its site's time, what it was by its form's title, a correction's items old → new."""
    session = pages.signed_in(request)
    zone = pages.zone(pages.trial_site)
    query: dict[str, Any] = {"limit": AUDIT_PAGE + 1}
    if subject.strip():
        query["subject"] = subject.strip()
    if first := typed_day(since):
        query["since"] = datetime.combine(first, time.min, zone).isoformat()
    if last := typed_day(until):
        query["until"] = datetime.combine(last + timedelta(days=1), time.min, zone).isoformat()
    if after is not None:
        query["after"] = after
    entries = await request.app.state.gateway.get(session, "/v1/reports/audit-trail.json", **query)
    shown, more = entries[:AUDIT_PAGE], len(entries) > AUDIT_PAGE
    filters = {k: v for k, v in (("subject", subject.strip()), ("since", since), ("until", until)) if v}
    return pages.page(
        request, "audit.html", session, entries=shown, filters=filters,
        next_page=urlencode(filters | {"after": shown[-1]["sequence"]}) if more else None,
    )  # fmt: skip


@router.get("/reports")
async def reports(request: Request, pages: PagesOf) -> Response:
    session = pages.signed_in(request)
    if not may(session.role, Right.READ_REPORTS):  # the list itself reads nothing: the role is checked here
        raise GatewayProblem.of(403, "forbidden", "this role does not read the reports")
    listed = exports(await request.app.state.gateway.datasets())
    return pages.page(
        request, "reports.html", session, pictures=PICTURES, reports=REPORTS, exports=listed,
        may_export=may(session.role, Right.EXPORT_DATA), may_lock=may(session.role, Right.LOCK_CASEBOOKS),
        key=str(uuid.uuid4()),
    )  # fmt: skip


@router.get("/reports/page")
async def report_page(request: Request, pages: PagesOf) -> Response:
    """The report page in the page's language: the primary endpoint by arm, open queries and source data
    verification by site, and the pictures."""
    session = pages.signed_in(request)
    gateway = request.app.state.gateway
    lang = language(request)
    primary = await gateway.get(session, "/v1/reports/primary-endpoint.json")
    t, cell = translator(lang), pages.cell(lang)
    tables = []
    for caption, path, part in (("queries_by_site", "queries.json", "counts"), ("sdv_by_site", "sdv.json", "sites")):
        records = (await gateway.get(session, f"/v1/reports/{path}"))[part]
        columns = list(records[0]) if records else []
        tables.append((t(caption), columns, [[cell(c, r.get(c)) for c in columns] for r in records]))
    return pages.page(
        request, "report_page.html", session, primary=primary, endpoint=cell("endpoint", primary["endpoint"]),
        analysis_sets=ANALYSIS_SETS, tables=tables, pictures=PICTURES, column=column(lang),
    )  # fmt: skip


def column(lang: str) -> Callable[[str], str]:
    """A report's column or part as a page heads it."""
    return functools.partial(column_word, lang=lang)


@router.get("/reports/table/{path}")
async def report_table(request: Request, pages: PagesOf, path: str) -> Response:
    """A JSON report as tables: each list of records one table, the rest as plain values."""
    session = pages.signed_in(request)
    titles = dict(REPORTS)
    if not path.endswith(".json") or path not in titles:
        raise GatewayProblem.of(404, "not-found", f"no report {path}")
    if path == "audit-trail.json":  # its own page: paged, filtered, in the site's time
        return RedirectResponse("/audit", status_code=303)
    report = await request.app.state.gateway.get(session, f"/v1/reports/{path}")
    lang = language(request)
    tables, values = report_tables(report, pages.cell(lang))
    return pages.page(
        request, "report_table.html", session, title=titles[path].in_(lang), path=path, tables=tables,
        values=values, column=column(lang),
    )  # fmt: skip


def report_tables(
    report: Any, cell: Callable[[str, Any], Said]
) -> tuple[list[tuple[str, list[str], list[list[Said]]]], list[tuple[str, Said]]]:
    """(caption, columns, rows) for every list of records in a report, and its other values, each value as
    `cell(column, value)` says it."""
    tables: list[tuple[str, list[str], list[list[Said]]]] = []
    values: list[tuple[str, Said]] = []
    parts = report.items() if isinstance(report, dict) else [("", report)]
    for name, value in parts:
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            columns = list(value[0])
            rows = [[cell(c, record.get(c)) for c in columns] for record in value]
            tables.append((str(name), columns, rows))
        else:
            values.append((str(name), cell(str(name), value)))
    return tables, values


@router.get("/reports/{path:path}")
async def report_file(request: Request, pages: PagesOf, path: str) -> Response:
    session = pages.signed_in(request)
    if path not in {p for p, _ in (*PICTURES, *REPORTS, *exports(await request.app.state.gateway.datasets()))}:
        raise GatewayProblem.of(404, "not-found", f"no report {path}")
    served = await request.app.state.gateway.file(session, f"/v1/reports/{path}")
    kept = {k: v for k, v in served.headers.items() if k.lower() in ("content-disposition", "database-lock-sequence")}
    return Response(served.content, media_type=served.headers.get("content-type"), headers=kept)


@router.post("/trial/database-lock")
async def lock_database(request: Request, pages: PagesOf) -> Response:
    session = pages.signed_in(request)
    form = await pages.checked_form(request, session)
    t = translator(language(request))
    asked = pages.unconfirmed(
        request, session, form, heading=t("database_lock"), consequence=t("confirm_database_lock"), back="/reports"
    )
    if asked is not None:
        return asked
    await request.app.state.gateway.post(session, "/v1/trial/database-lock", {}, key=str(form.get("key")))
    return RedirectResponse("/reports", status_code=303)


@router.get("/safety")
async def safety_inbox(request: Request, pages: PagesOf, seen: int | None = None) -> Response:
    session = pages.signed_in(request)
    alerts = await request.app.state.gateway.get(session, "/v1/safety/alerts", read_after=seen)
    acknowledged = await request.app.state.gateway.get(session, "/v1/safety/alerts", state=AlertState.ACKNOWLEDGED)
    return pages.page(request, "safety.html", session, alerts=alerts, acknowledged=acknowledged[::-1])


@router.get("/safety/rows")
async def safety_rows(request: Request, pages: PagesOf) -> Response:
    session = pages.signed_in(request)
    alerts = await request.app.state.gateway.get(session, "/v1/safety/alerts")
    return pages.page(request, "_alert_rows.html", session, alerts=alerts)


@router.get("/safety/events")
async def safety_events(request: Request, pages: PagesOf) -> Response:
    """Server-sent events: `alerts` at once, then whenever the open alerts change (looked at every second, for ten
    minutes; the browser reconnects by itself)."""
    session = pages.signed_in(request)
    gateway: Gateway = request.app.state.gateway
    # The gateway says who may see the alerts: its refusal is this page's, before any stream is opened.
    first = {a["alert_id"] for a in await gateway.get(session, "/v1/safety/alerts")}

    async def changes() -> AsyncIterator[str]:
        # The page was drawn before this stream opened (and before each reconnection): an alert raised in between
        # is in `first` already, so no change would ever show it. The rows are fetched again at once.
        yield f"event: alerts\ndata: {len(first)}\n\n"
        seen = first
        for _ in range(600):
            await asyncio.sleep(1)
            if await request.is_disconnected():
                return
            try:
                now = {a["alert_id"] for a in await gateway.get(session, "/v1/safety/alerts")}
            except GatewayProblem:
                return  # signed out, or no longer allowed: nothing more to ask on this person's behalf
            except httpx.HTTPError:
                now = seen
            if now != seen:
                yield f"event: alerts\ndata: {len(now)}\n\n"
            seen = now

    return StreamingResponse(changes(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})


@router.post("/safety/alerts/{alert}/acknowledgement")
async def acknowledge(request: Request, pages: PagesOf, alert: uuid.UUID) -> Response:
    session = pages.signed_in(request)
    form = await pages.checked_form(request, session)
    t = translator(language(request))
    shown = await request.app.state.gateway.get(session, f"/v1/safety/alerts/{alert}")
    asked = pages.unconfirmed(
        request, session, form, heading=t("acknowledge"), back="/safety",
        consequence=t("confirm_acknowledgement").format(subject=shown["subject_id"], term=shown["term"]),
    )  # fmt: skip
    if asked is not None:
        return asked
    answer = await request.app.state.gateway.post(
        session, f"/v1/safety/alerts/{alert}/acknowledgement", {}, key=str(form.get("key"))
    )
    return RedirectResponse(f"/safety?seen={answer['stream_sequence']}", status_code=303)


@router.get("/assessments")
async def assessments(request: Request, pages: PagesOf, seen: int | None = None) -> Response:
    """The blinded outcome assessor's desk: each follow-up visit with photographs, those still to count first, the
    photographs as thumbnails and the counts' form; nothing that names or implies the arm."""
    session = pages.signed_in(request)
    to_make = await request.app.state.gateway.get(session, "/v1/assessments", read_after=seen)
    forms = {}
    for made in to_make:
        if made["grafts_surviving"] is None:
            action = f"/assessments/{made['site']}/{made['subject_id']}/{made['visit']}"
            forms[action] = await pages.form_page(request, session, "assess_endpoint", action, {}, {})
    return pages.page(request, "assessments.html", session, assessments=to_make, forms=forms)


@router.post("/assessments/{site}/{subject}/{visit}")
async def assess(request: Request, pages: PagesOf, site: str, subject: str, visit: str) -> Response:
    session = pages.signed_in(request)
    form = await pages.checked_form(request, session)
    specs = await pages.form_fields(request, session, "assess_endpoint")
    body = parsed(form, specs)
    action = f"/assessments/{site}/{subject}/{visit}"
    try:
        answer = await request.app.state.gateway.post(
            session, f"/v1/sites/{site}/subjects/{subject}/visits/{visit}/assessment", body, key=str(form.get("key"))
        )
    except GatewayProblem as problem:
        lang = language(request)
        shown = await pages.form_page(
            request, session, "assess_endpoint", action, body, problem.messages(lang), problem.rules_by_field
        )
        to_make = await request.app.state.gateway.get(session, "/v1/assessments")
        return pages.page(
            request, "assessments.html", session, status=problem.status, assessments=to_make, forms={action: shown}
        )
    return RedirectResponse(f"/assessments?seen={answer['stream_sequence']}", status_code=303)
