"""A site's subjects (each with its next visit), a new subject's consent, and the coordinator's visit calendar."""

import operator
from datetime import UTC, date, datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.web.casebook import next_step
from services.web.forms import parsed
from services.web.gateway import Gateway, GatewayProblem
from services.web.i18n import language
from services.web.pages import PagesOf
from shared.contracts.access import Right, may
from shared.readmodels.matrix import CellStatus, SiteMatrix, marked
from shared.readmodels.states import SubjectState

router = APIRouter()


@router.get("/sites/{site}/subjects")
async def subjects(request: Request, pages: PagesOf, site: str) -> Response:
    session = pages.signed_in(request)
    listed = await request.app.state.gateway.get(session, f"/v1/sites/{site}/subjects", limit=200)
    consent = await pages.form_page(request, session, "record_consent", f"/sites/{site}/subjects", {}, {})
    to_sign = []
    if may(session.role, Right.SIGN_CASEBOOKS) and session.site == site:
        to_sign = await request.app.state.gateway.get(session, f"/v1/sites/{site}/signatures/to-sign")
    reconsent = await request.app.state.gateway.get(session, f"/v1/sites/{site}/reconsent")
    return pages.page(
        request, "subjects.html", session, site=site, subjects=listed["items"], consent=consent, to_sign=to_sign,
        reconsent=reconsent,
    )  # fmt: skip


@router.get("/sites/{site}/matrix")
async def matrix(request: Request, pages: PagesOf, site: str, state: str = "", status: str = "") -> Response:
    """The site's subjects × forms, each cell's status linking to its form: filtered to a state, or to the
    subjects with a form in a status (every open query, every visit out of its window); "any" is left empty."""
    session = pages.signed_in(request)
    wanted_state = SubjectState(state) if state in set(SubjectState) else None
    wanted_status = CellStatus(status) if status in set(CellStatus) else None
    found = SiteMatrix.model_validate(await request.app.state.gateway.get(session, f"/v1/sites/{site}/matrix"))
    rows = [
        row
        for row in found.rows
        if (wanted_state is None or row.state is wanted_state)
        and (wanted_status is None or any(marked(c, wanted_status) for c in row.cells))
    ]
    steps = {}
    visits = [v.code for v in pages.protocol.schedule.follow_up]
    for row in rows:
        cells = {c.form: c.status for c in row.cells}
        steps[row.subject_id] = next_step(
            row.state, arm=row.arm, awaiting=row.awaiting,
            surgery_done=cells["procedure"] is not CellStatus.NOT_STARTED,
            next_visit=next((v for v in visits if cells[f"visit-{v}"] is CellStatus.NOT_STARTED), None),
        )  # fmt: skip
    # Two header rows: a form before the follow-up spans both; a visit spans its own form and those collected at it.
    at_visit = {f"visit-{v.code}": v.code for v in pages.protocol.schedule.follow_up}
    groups: list[tuple[str, list[str]]] = []
    for column in found.columns:
        if column in at_visit or not groups or not groups[-1][0]:
            groups.append((at_visit.get(column, ""), [column]))
        else:
            groups[-1][1].append(column)
    return pages.page(
        request, "matrix.html", session, site=site, groups=groups, rows=rows, steps=steps, states=list(SubjectState),
        statuses=list(CellStatus), state_filter=wanted_state, status_filter=wanted_status,
    )  # fmt: skip


@router.post("/sites/{site}/subjects")
async def new_subject(request: Request, pages: PagesOf, site: str) -> Response:
    session = pages.signed_in(request)
    form = await pages.checked_form(request, session)
    subject = str(form.get("subject_id", "")).strip()
    specs = await pages.form_fields(request, session, "record_consent")
    body = parsed(form, specs, pages.zone(site))
    try:
        answer = await request.app.state.gateway.post(
            session, f"/v1/sites/{site}/subjects/{subject}/consent", body, key=str(form.get("key"))
        )
    except GatewayProblem as problem:
        errors = problem.messages(language(request))
        if "subject" in str(problem.problem.get("field") or "") or problem.status == 404:
            errors = {"subject_id": problem.said(language(request))}
        consent = await pages.form_page(
            request, session, "record_consent", f"/sites/{site}/subjects", body, errors, problem.rules_by_field
        )
        consent.extra["subject_id"] = subject
        listed = await request.app.state.gateway.get(session, f"/v1/sites/{site}/subjects", limit=200)
        return pages.page(
            request, "subjects.html", session, status=problem.status, site=site, subjects=listed["items"],
            consent=consent,
        )  # fmt: skip
    return pages.written(site, subject, answer)


@router.get("/sites/{site}/calendar")
async def calendar(request: Request, pages: PagesOf, site: str) -> Response:
    """A coordinator's week: visits whose window is open or opens within seven days, and those overdue."""
    session = pages.signed_in(request)
    gateway: Gateway = request.app.state.gateway
    today = pages.protocol.local_date(site, datetime.now(UTC))
    listed = await gateway.get(session, f"/v1/sites/{site}/subjects", limit=200)
    due, overdue = [], []
    for summary in listed["items"]:
        if not summary["arm"]:
            continue
        view = await gateway.get(session, f"/v1/sites/{site}/subjects/{summary['subject_id']}")
        for visit in view["visits"]:
            if visit["status"] != "scheduled":
                continue
            entry = {"subject_id": view["subject_id"], **visit}
            if date.fromisoformat(visit["window_end"]) < today:
                overdue.append(entry)
            elif date.fromisoformat(visit["window_start"]) <= today + timedelta(days=7):
                due.append(entry)
    order = operator.itemgetter("window_end")
    return pages.page(
        request, "calendar.html", session, site=site, today=today, due=sorted(due, key=order),
        overdue=sorted(overdue, key=order),
    )  # fmt: skip
