"""One subject's casebook: its forms, corrections, verification, lock, queries, signature and randomization."""

import time
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.datastructures import UploadFile

from services.web.casebook import (
    CASEBOOK_STEPS,
    CONSEQUENCES,
    FROM_PAGE,
    correcting,
    item_changes,
    shown_values,
)
from services.web.forms import parsed
from services.web.gateway import GatewayProblem
from services.web.i18n import language, translator
from services.web.pages import PagesOf
from shared.contracts.access import Right, may
from shared.contracts.casebook import form_values
from shared.contracts.forms import SIGNATURE_MEANINGS, SignatureKind
from shared.contracts.photographs import MAX_BYTES as PHOTOGRAPH_BYTES

router = APIRouter()


@router.get("/sites/{site}/subjects/{subject}")
async def casebook(request: Request, pages: PagesOf, site: str, subject: str, seen: int | None = None) -> Response:
    session = pages.signed_in(request)
    return await pages.casebook_page(request, session, site, subject, read_after=seen)


@router.post("/sites/{site}/subjects/{subject}/forms/{operation}")
async def post_casebook_form(request: Request, pages: PagesOf, site: str, subject: str, operation: str) -> Response:
    session = pages.signed_in(request)
    form = await pages.checked_form(request, session)
    in_force = await pages.in_force(request, session, site)  # a new record is entered as it declares its form
    casebook_form = await pages.casebook_form(request, operation, in_force)
    if operation in CONSEQUENCES:
        t = translator(language(request))
        asked = pages.unconfirmed(
            request, session, form, heading=pages.form_title(casebook_form.form, language(request)),
            consequence=t(CONSEQUENCES[operation]).format(subject=subject), back=f"/sites/{site}/subjects/{subject}",
        )  # fmt: skip
        if asked is not None:
            return asked
    visit = str(form.get("visit", ""))
    if "{visit}" in casebook_form.path and visit not in {v.code for v in pages.protocol.schedule.follow_up}:
        raise GatewayProblem.of(404, "not-found", f"no visit {visit!r} in the protocol's schedule")
    path = casebook_form.path.format(visit=visit)
    specs = await pages.form_fields(request, session, operation, in_force)
    taken = (await request.app.state.gateway.request_schema(operation, in_force.version)).get("properties", {})
    from_page = {k: str(form[k]) for k in FROM_PAGE if k in form}  # which visit, which adverse event
    body = parsed(form, specs, pages.zone(site)) | {k: v for k, v in from_page.items() if k in taken}
    action = f"/sites/{site}/subjects/{subject}/forms/{operation}"
    # The protocol's checks are heeded before the save, unless the person confirmed the values as entered.
    confirmed = form.get("checked") == "yes"
    advice = [] if confirmed else await pages.advice(request, session, site, subject, operation, body | from_page)
    if advice:
        warned = await pages.form_page(request, session, operation, action, body, {}, under=in_force)
        warned.extra |= from_page
        warned.advice = advice
        return await pages.casebook_page(request, session, site, subject, posted=warned)
    try:
        answer = await request.app.state.gateway.post(
            session, f"/v1/sites/{site}/subjects/{subject}/{path}", body, key=str(form.get("key"))
        )
    except GatewayProblem as problem:
        posted = await pages.form_page(
            request, session, operation, action, body, problem.messages(language(request)), problem.rules_by_field,
            under=in_force,
        )  # fmt: skip
        posted.extra |= from_page
        return await pages.casebook_page(request, session, site, subject, status=problem.status, posted=posted)
    return pages.written(site, subject, answer)


@router.get("/sites/{site}/subjects/{subject}/forms/{name}")
async def form_view(
    request: Request, pages: PagesOf, site: str, subject: str, name: str, seen: int | None = None
) -> Response:
    """A form's current record, read-only, item by item: its value as a monitor verifies it against source, its
    changes (old → new, who, when, why), and the queries on it with their threads, one raised by clicking it."""
    session = pages.signed_in(request)
    current = await request.app.state.gateway.get(
        session, f"/v1/sites/{site}/subjects/{subject}/forms/{name}", read_after=seen
    )
    lang, t = language(request), translator(language(request))
    # The record read as the version it was entered under words it.
    entered_under = current.get("protocol_version")
    under = await pages.protocol_version(request, session, entered_under) if entered_under else pages.protocol
    dictionary = under.forms
    by_item: dict[str | None, list[dict[str, Any]]] = {}
    for query in current["queries"]:
        by_item.setdefault(query["field"], []).append(query)
    try:
        correcting(await pages.casebook_forms(request, under), dictionary, name)
        correctable = True
    except GatewayProblem:  # a form no correction is taken for (consent refusal, withdrawal of consent)
        correctable = False
    at_site = session.site == site
    # A visit's record beside its source: the photographs taken at it, which the endpoint is counted on.
    visit = name.removeprefix("visit-") if dictionary.casebook_form(name) == "visit" else None
    photographs = []
    if visit is not None and may(session.role, Right.READ_PHOTOGRAPHS):
        view = await request.app.state.gateway.get(session, f"/v1/sites/{site}/subjects/{subject}", read_after=seen)
        photographs = [p for p in view["photographs"] if p["visit"] == visit]
    return pages.page(
        request, "form.html", session, site=site, subject_id=subject, name=name, form=current, photographs=photographs,
        rows=shown_values(dictionary, name, dict(form_values(name, current["data"])), lang, t),
        changes=item_changes(dictionary, name, current["history"], lang, t), by_item=by_item,
        may_correct=correctable and at_site and may(session.role, Right.POST_SITE_FORMS),
        may_verify=may(session.role, Right.VERIFY_FORMS), may_query=may(session.role, Right.OPEN_QUERIES),
        may_answer=may(session.role, Right.ANSWER_QUERIES) and at_site, here=request.url.path, key=str(uuid.uuid4()),
    )  # fmt: skip


@router.get("/sites/{site}/subjects/{subject}/forms/{name}/correction")
async def correction(
    request: Request, pages: PagesOf, site: str, subject: str, name: str, judgement: str | None = None
) -> Response:
    """A form's current record, to correct with a reason; posted against its version (If-Match). With
    `judgement` (criterion codes): the investigator completes a coordinator's screening, the reason said so."""
    session = pages.signed_in(request)
    current = await request.app.state.gateway.get(session, f"/v1/sites/{site}/subjects/{subject}/forms/{name}")
    # A record is corrected as the version it was entered under declares its form.
    under = await pages.protocol_version(request, session, current.get("protocol_version") or pages.protocol.version)
    found, extra = correcting(await pages.casebook_forms(request, under), under.forms, name)
    operation = found.operation
    action = f"/sites/{site}/subjects/{subject}/forms/{name}/correction"
    values = dict(form_values(name, current["data"]))
    shown = await pages.form_page(request, session, operation, action, values, {}, under=under)
    shown.extra |= extra | {"version": current["version"], "under": under.version}
    await pages.with_records(request, session, site, subject, shown)
    if judgement:
        codes = ", ".join(c for c in judgement.split(",") if c in pages.protocol.eligibility.criteria)
        shown.extra["reason"] = translator(language(request))("judgement_reason").format(codes=codes)
    return pages.page(request, "correction.html", session, site=site, subject_id=subject, name=name, form=shown)


@router.post("/sites/{site}/subjects/{subject}/forms/{name}/correction")
async def correct(request: Request, pages: PagesOf, site: str, subject: str, name: str) -> Response:
    session = pages.signed_in(request)
    form = await pages.checked_form(request, session)
    under = await pages.protocol_version(request, session, str(form.get("under") or pages.protocol.version))
    found, extra = correcting(await pages.casebook_forms(request, under), under.forms, name)
    operation, path = found.operation, found.path.format(**extra)
    specs = await pages.form_fields(request, session, operation, under)
    version, reason = str(form.get("version", "")), str(form.get("reason", "")).strip()
    body = parsed(form, specs, pages.zone(site)) | {"reason": reason}
    action = f"/sites/{site}/subjects/{subject}/forms/{name}/correction"
    confirmed = form.get("checked") == "yes"
    advice = [] if confirmed else await pages.advice(request, session, site, subject, operation, body | extra)
    if advice:  # the corrected values questioned by the protocol's checks, as a new entry's are
        warned = await pages.form_page(request, session, operation, action, body, {}, under=under)
        warned.extra |= extra | {"version": version, "reason": reason, "under": under.version}
        warned.advice = advice
        await pages.with_records(request, session, site, subject, warned)
        return pages.page(request, "correction.html", session, site=site, subject_id=subject, name=name, form=warned)
    try:
        answer = await request.app.state.gateway.post(
            session,
            f"/v1/sites/{site}/subjects/{subject}/{path}",
            body,
            key=str(form.get("key")),
            if_match=f'"{version}"',
        )
    except GatewayProblem as problem:
        shown = await pages.form_page(
            request, session, operation, action, body, problem.messages(language(request)), problem.rules_by_field,
            under=under,
        )  # fmt: skip
        current_version = problem.problem.get("current_version") or version
        shown.extra |= extra | {"version": current_version, "reason": reason, "under": under.version}
        await pages.with_records(request, session, site, subject, shown)
        return pages.page(
            request, "correction.html", session, status=problem.status, site=site, subject_id=subject, name=name,
            form=shown,
        )  # fmt: skip
    return pages.written(site, subject, answer)


@router.post("/sites/{site}/subjects/{subject}/forms/{name}/verification")
async def verify(request: Request, pages: PagesOf, site: str, subject: str, name: str) -> Response:
    """A monitor verifies the form's record shown on the page (its version), whole or the items ticked: a later
    record is not verified by it."""
    session = pages.signed_in(request)
    form = await pages.checked_form(request, session)
    items = [str(i) for i in form.getlist("items")]
    if form.get("by_item") == "yes" and not items:  # never the whole record by an empty tick list
        raise GatewayProblem.of(422, "no-item-ticked", "no item was ticked as verified")
    answer = await request.app.state.gateway.post(
        session,
        f"/v1/sites/{site}/subjects/{subject}/forms/{name}/verification",
        {"version": str(form.get("version", "")), "items": items},
        key=str(form.get("key")),
    )
    return pages.written(site, subject, answer, back=form.get("back"))


@router.post("/sites/{site}/subjects/{subject}/casebook/{step}")
async def casebook_step(request: Request, pages: PagesOf, site: str, subject: str, step: str) -> Response:
    session = pages.signed_in(request)
    form = await pages.checked_form(request, session)
    if f"casebook/{step}" not in CASEBOOK_STEPS:
        raise GatewayProblem.of(404, "not-found", f"no casebook step {step!r}")
    t = translator(language(request))
    asked = pages.unconfirmed(
        request, session, form, heading=t(step), back=f"/sites/{site}/subjects/{subject}",
        consequence=t(CONSEQUENCES[f"casebook/{step}"]).format(subject=subject),
    )  # fmt: skip
    if asked is not None:
        return asked
    body = {"reason": str(form.get("reason", "")).strip()} if step == "unlock" else {}
    answer = await request.app.state.gateway.post(
        session, f"/v1/sites/{site}/subjects/{subject}/casebook/{step}", body, key=str(form.get("key"))
    )
    return pages.written(site, subject, answer)


@router.post("/sites/{site}/subjects/{subject}/queries")
async def open_query(request: Request, pages: PagesOf, site: str, subject: str) -> Response:
    session = pages.signed_in(request)
    form = await pages.checked_form(request, session)
    # The target is picked from the casebook's forms and their items (`form|item`), never typed.
    form_name, _, field_name = str(form.get("target", "")).partition("|")
    body = {"form": form_name, "field": field_name, "text": str(form.get("text", "")).strip()}
    body = {k: v for k, v in body.items() if v}
    answer = await request.app.state.gateway.post(
        session, f"/v1/sites/{site}/subjects/{subject}/queries", body, key=str(form.get("key"))
    )
    return pages.written(site, subject, answer, back=form.get("back"))


@router.post("/sites/{site}/subjects/{subject}/queries/{query}/{step}")
async def query_step(
    request: Request, pages: PagesOf, site: str, subject: str, query: uuid.UUID, step: str
) -> Response:
    session = pages.signed_in(request)
    form = await pages.checked_form(request, session)
    if step not in ("answer", "close", "reopen"):
        raise GatewayProblem.of(404, "not-found", f"no step {step!r} of a query")
    answer = await request.app.state.gateway.post(
        session,
        f"/v1/sites/{site}/subjects/{subject}/queries/{query}/{step}",
        {"text": str(form.get("text", "")).strip()},
        key=str(form.get("key")),
    )
    return pages.written(site, subject, answer, back=form.get("back"))


@router.get("/sites/{site}/subjects/{subject}/sign/{kind}")
async def signing(request: Request, pages: PagesOf, site: str, subject: str, kind: SignatureKind) -> Response:
    """An electronic signature needs a fresh sign-in: the investigator is sent to sign in again first."""
    session = pages.signed_in(request)
    # Signed in within the first half of the protocol's window: time left to read and sign before it closes.
    window = pages.protocol.signatures.reauthentication_seconds
    if session.authenticated_at is None or time.time() - session.authenticated_at > window / 2:
        return RedirectResponse(f"/signin?max_age=0&next={request.url.path}", status_code=303)
    view = await request.app.state.gateway.get(session, f"/v1/sites/{site}/subjects/{subject}")
    meaning = SIGNATURE_MEANINGS[kind]
    return pages.page(
        request, "sign.html", session, site=site, subject=view, kind=kind, meaning=meaning, key=str(uuid.uuid4())
    )


@router.post("/sites/{site}/subjects/{subject}/sign/{kind}")
async def sign(request: Request, pages: PagesOf, site: str, subject: str, kind: SignatureKind) -> Response:
    session = pages.signed_in(request)
    form = await pages.checked_form(request, session)
    try:
        answer = await request.app.state.gateway.post(
            session,
            f"/v1/sites/{site}/subjects/{subject}/signatures/{kind}",
            {"meaning": SIGNATURE_MEANINGS[kind]},
            key=str(form.get("key")),
        )
    except GatewayProblem as problem:
        if problem.status == 401:  # the sign-in grew too old while the page was open: sign in again
            return RedirectResponse(f"/signin?max_age=0&next={request.url.path}", status_code=303)
        raise
    return pages.written(site, subject, answer)


@router.get("/sites/{site}/subjects/{subject}/randomization")
async def randomization_confirmation(request: Request, pages: PagesOf, site: str, subject: str) -> Response:
    session = pages.signed_in(request)
    view = await request.app.state.gateway.get(session, f"/v1/sites/{site}/subjects/{subject}")
    return pages.page(request, "randomize.html", session, site=site, subject=view, key=str(uuid.uuid4()))


@router.post("/sites/{site}/subjects/{subject}/randomization")
async def randomize(request: Request, pages: PagesOf, site: str, subject: str) -> Response:
    session = pages.signed_in(request)
    form = await pages.checked_form(request, session)
    answer = await request.app.state.gateway.post(
        session, f"/v1/sites/{site}/subjects/{subject}/randomization", {}, key=str(form.get("key"))
    )
    return pages.written(site, subject, answer)


@router.post("/sites/{site}/subjects/{subject}/photographs")
async def upload_photograph(request: Request, pages: PagesOf, site: str, subject: str) -> Response:
    """A scalp photograph for a visit and view, sent to the gateway as the file it is (the gateway strips its
    metadata and refuses what is no photograph, in the page's words)."""
    session = pages.signed_in(request)
    form = await pages.checked_form(request, session)
    upload = form.get("photograph")
    if not isinstance(upload, UploadFile) or not upload.filename:
        raise GatewayProblem.of(422, "no-file", "choose the photograph's file")
    if upload.size is None or upload.size > PHOTOGRAPH_BYTES:  # not read into memory: the gateway would refuse it
        raise GatewayProblem.of(413, "payload-too-large", f"a photograph is at most {PHOTOGRAPH_BYTES} bytes")
    visit, view = str(form.get("visit", "")), str(form.get("view", ""))
    answer = await request.app.state.gateway.upload(
        session,
        f"/v1/sites/{site}/subjects/{subject}/visits/{visit}/photographs/{view}",
        await upload.read(),
        upload.content_type or "application/octet-stream",
        key=str(form.get("key")),
    )
    return pages.written(site, subject, answer)


@router.get("/sites/{site}/subjects/{subject}/photographs/{sha256}")
async def photograph(
    request: Request, pages: PagesOf, site: str, subject: str, sha256: str, thumbnail: bool = False
) -> Response:
    """A photograph (or its thumbnail) as the gateway keeps it; the gateway audits the read as this person's."""
    session = pages.signed_in(request)
    kept = await request.app.state.gateway.file(
        session, f"/v1/sites/{site}/subjects/{subject}/photographs/{sha256}?thumbnail={str(thumbnail).lower()}"
    )
    return Response(
        kept.content,
        media_type=kept.headers.get("content-type", "application/octet-stream"),
        headers={"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"},
    )
