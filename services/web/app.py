"""The trial in a browser for site staff, monitors, the safety team and data managers: server-rendered pages on
top of the gateway's public API, signed in at the trial's identity provider. `create_app(settings)` wires it."""

import asyncio
import contextlib
import operator
import time
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import structlog
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from services.web.casebook import (
    CASEBOOK_FORMS,
    CASEBOOK_STEPS,
    DELEGATED,
    FROM_PAGE,
    correcting,
    due_forms,
    recorded_values,
)
from services.web.forms import Field, FormPage, fields, filled, parsed
from services.web.gateway import Gateway, GatewayProblem
from services.web.i18n import LANGUAGE_COOKIE, LANGUAGES, language, translator
from services.web.session import Cookies, Session
from services.web.settings import WebSettings
from services.web.signin import Provider, SignInFailed, new_attempt
from shared.contracts.access import SITE_ROLES, Right, may
from shared.contracts.forms import SIGNATURE_MEANINGS, SignatureKind
from shared.readmodels.index import EXPORTS, PICTURES, REPORTS
from shared.runtime.health import HealthServer

log = structlog.get_logger(__name__)
TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")


class SignInNeeded(Exception):
    def __init__(self, next_path: str) -> None:
        self.next_path = next_path


def create_app(settings: WebSettings) -> FastAPI:
    if settings.web_session_key is None:
        raise ValueError("WEB_SESSION_KEY is not set: the session cookie cannot be encrypted")
    cookies = Cookies(settings.web_session_key.get_secret_value(), secure=settings.secure_cookies)
    protocol = settings.protocol()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with (
            httpx.AsyncClient(base_url=settings.gateway_url, timeout=15) as to_gateway,
            httpx.AsyncClient(timeout=10) as to_provider,
        ):
            app.state.gateway = Gateway(to_gateway)
            app.state.provider = Provider(
                to_provider,
                issuer=settings.oidc_issuer,
                client_id=settings.oidc_client_id,
                redirect_uri=f"{settings.public_url.rstrip('/')}/signin/callback",
                audience=settings.oidc_audience,
                group_prefix=settings.oidc_group_prefix,
            )

            async def gateway_reachable() -> bool:
                return (await to_gateway.get("/healthz")).status_code == 200

            health = HealthServer(settings.health_port, {"gateway": gateway_reachable})
            await health.start()
            log.info("web_started", public_url=settings.public_url)
            try:
                yield
            finally:
                await health.stop()

    app = FastAPI(title="NCT06646146 trial: web app", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")

    def site_time(instant: str | None, site: str) -> str:
        """An instant as the site reads it: its local date and time, with the offset."""
        if not instant:
            return ""
        known = protocol.site(site)
        moment = datetime.fromisoformat(instant)
        local = moment.astimezone(ZoneInfo(known.time_zone)) if known else moment
        return local.strftime("%Y-%m-%d %H:%M (UTC%z)")

    def page(request: Request, template: str, session: Session | None, status: int = 200, **context: Any) -> Response:
        lang = language(request)
        response = TEMPLATES.TemplateResponse(
            request,
            template,
            {
                "t": translator(lang),
                "lang": lang,
                "other_lang": LANGUAGES[1 - LANGUAGES.index(lang)],
                "session": session,
                "protocol": protocol,
                "local": site_time,
                **context,
            },
            status_code=status,
        )
        # Pages show one person's data: never kept by a shared cache or the browser's history cache.
        response.headers["Cache-Control"] = "no-store"
        return response

    def signed_in(request: Request) -> Session:
        session = cookies.session(request)
        if session is None:
            raise SignInNeeded(request.url.path)
        return session

    async def checked_form(request: Request, session: Session) -> Any:
        form = await request.form()
        if not session.csrf_matches(str(form.get("csrf", ""))):
            raise GatewayProblem(403, {"detail": "the form is stale or not from this app: open it again"})
        return form

    @app.exception_handler(SignInNeeded)
    async def sign_in_first(request: Request, exc: SignInNeeded) -> Response:
        return RedirectResponse(f"/signin?next={exc.next_path}", status_code=303)

    @app.exception_handler(GatewayProblem)
    async def problem_page(request: Request, exc: GatewayProblem) -> Response:
        session = cookies.session(request)
        return page(request, "message.html", session, status=exc.status, title="problem", detail=str(exc))

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/signin")
    async def signin(request: Request, next: str = "/", max_age: int | None = None) -> Response:
        attempt = new_attempt(next)
        try:
            target = await request.app.state.provider.authorization_url(attempt, max_age=max_age)
        except SignInFailed as exc:
            return page(request, "message.html", None, status=503, title="sign_in_failed", detail=str(exc))
        response = RedirectResponse(target, status_code=303)
        cookies.keep_attempt(response, attempt)
        return response

    @app.get("/signin/callback")
    async def signin_callback(request: Request, code: str = "", state: str = "", error: str = "") -> Response:
        attempt = cookies.attempt(request)
        if error or attempt is None or not code or state != attempt.state:
            detail = error or "the sign-in could not be matched to this browser: start again"
            return page(request, "message.html", None, status=400, title="sign_in_failed", detail=detail)
        try:
            session = await request.app.state.provider.session_for(code, attempt)
        except SignInFailed as exc:
            return page(request, "message.html", None, status=403, title="sign_in_failed", detail=str(exc))
        response = RedirectResponse(attempt.next, status_code=303)
        cookies.forget(response)
        cookies.keep_session(response, session)
        log.info("signed_in", role=session.role, site=session.site)
        return response

    @app.post("/signout")
    async def signout(request: Request) -> Response:
        session = cookies.session(request)
        if session is not None:
            await checked_form(request, session)
        response = page(request, "message.html", None, title="sign_out", detail="")
        cookies.forget(response)
        return response

    @app.get("/language/{lang}")
    async def choose_language(lang: str, next: str = "/") -> Response:
        target = next if next.startswith("/") and not next.startswith("//") else "/"
        response = RedirectResponse(target, status_code=303)
        if lang in LANGUAGES:
            response.set_cookie(LANGUAGE_COOKIE, lang, max_age=365 * 86400, samesite="lax", path="/")
        return response

    @app.get("/")
    async def home(request: Request) -> Response:
        session = signed_in(request)
        if session.role in SITE_ROLES and session.site:
            return RedirectResponse(f"/sites/{session.site}/subjects", status_code=303)
        if may(session.role, Right.ACKNOWLEDGE_ALERTS):
            return RedirectResponse("/safety", status_code=303)
        if may(session.role, Right.VERIFY_FORMS):
            return RedirectResponse("/worklist", status_code=303)
        if may(session.role, Right.READ_REPORTS):
            return RedirectResponse("/reports", status_code=303)
        return page(request, "home.html", session)

    @app.get("/sites/{site}/subjects")
    async def subjects(request: Request, site: str) -> Response:
        session = signed_in(request)
        listed = await request.app.state.gateway.get(session, f"/v1/sites/{site}/subjects", limit=200)
        consent = await form_page(request, session, "record_consent", f"/sites/{site}/subjects", {}, {})
        to_sign = []
        if may(session.role, Right.SIGN_CASEBOOKS) and session.site == site:
            to_sign = await request.app.state.gateway.get(session, f"/v1/sites/{site}/signatures/to-sign")
        return page(
            request, "subjects.html", session, site=site, subjects=listed["items"], consent=consent, to_sign=to_sign
        )

    @app.post("/sites/{site}/subjects")
    async def new_subject(request: Request, site: str) -> Response:
        session = signed_in(request)
        form = await checked_form(request, session)
        subject = str(form.get("subject_id", "")).strip()
        specs = await form_fields(request, session, "record_consent")
        body = parsed(form, specs)
        try:
            answer = await request.app.state.gateway.post(
                session, f"/v1/sites/{site}/subjects/{subject}/consent", body, key=str(form.get("key"))
            )
        except GatewayProblem as problem:
            errors = problem.by_field
            if "subject" in str(problem.problem.get("field") or "") or problem.status == 404:
                errors = {"subject_id": str(problem)}
            consent = await form_page(request, session, "record_consent", f"/sites/{site}/subjects", body, errors)
            consent.extra["subject_id"] = subject
            listed = await request.app.state.gateway.get(session, f"/v1/sites/{site}/subjects", limit=200)
            return page(
                request, "subjects.html", session, status=problem.status, site=site, subjects=listed["items"],
                consent=consent,
            )  # fmt: skip
        return written(site, subject, answer)

    def written(site: str, subject: str, answer: dict[str, Any]) -> Response:
        """After a write, the casebook as of it: the page asks the gateway to read after its sequence."""
        return RedirectResponse(f"/sites/{site}/subjects/{subject}?seen={answer['stream_sequence']}", status_code=303)

    @app.get("/sites/{site}/subjects/{subject}")
    async def casebook(request: Request, site: str, subject: str, seen: int | None = None) -> Response:
        session = signed_in(request)
        return await casebook_page(request, session, site, subject, read_after=seen)

    async def casebook_page(
        request: Request,
        session: Session,
        site: str,
        subject: str,
        *,
        status: int = 200,
        posted: FormPage | None = None,
        read_after: int | None = None,
    ) -> Response:
        view = await request.app.state.gateway.get(
            session, f"/v1/sites/{site}/subjects/{subject}", read_after=read_after
        )
        screened = None
        forms: list[FormPage] = []
        may_post = may(session.role, Right.POST_SITE_FORMS) and session.site == site
        if view["screenings"]:
            screened = await request.app.state.gateway.get(
                session, f"/v1/sites/{site}/subjects/{subject}/forms/screening", read_after=read_after
            )
        for operation, extra in due_forms(view) if may_post else ():
            action = f"/sites/{site}/subjects/{subject}/forms/{operation}"
            wanted = posted is not None and posted.action == action and posted.extra.items() >= extra.items()
            shown = posted if posted is not None and wanted else None
            shown = shown or await form_page(request, session, operation, action, {}, {})
            shown.extra |= extra
            forms.append(shown)
        return page(
            request, "casebook.html", session, status=status, site=site, subject=view, screened=screened, forms=forms,
            may_post=may_post, may_answer=may(session.role, Right.ANSWER_QUERIES) and session.site == site,
            may_query=may(session.role, Right.OPEN_QUERIES), may_sign=may(session.role, Right.SIGN_CASEBOOKS),
            may_verify=may(session.role, Right.VERIFY_FORMS), may_lock=may(session.role, Right.LOCK_CASEBOOKS),
            key=str(uuid.uuid4()),
        )  # fmt: skip

    @app.post("/sites/{site}/subjects/{subject}/forms/{operation}")
    async def post_casebook_form(request: Request, site: str, subject: str, operation: str) -> Response:
        session = signed_in(request)
        form = await checked_form(request, session)
        if operation not in CASEBOOK_FORMS:
            raise GatewayProblem(404, {"detail": f"no form {operation}"})
        visit = str(form.get("visit", ""))
        if "{visit}" in CASEBOOK_FORMS[operation][0] and visit not in {v.code for v in protocol.schedule.follow_up}:
            raise GatewayProblem(404, {"detail": f"no visit {visit!r} in the protocol's schedule"})
        path = CASEBOOK_FORMS[operation][0].format(visit=visit)
        specs = await form_fields(request, session, operation)
        body = parsed(form, specs) | {
            k: str(form[k]) for k in FROM_PAGE if k in CASEBOOK_FORMS[operation][2] and k in form
        }
        try:
            answer = await request.app.state.gateway.post(
                session, f"/v1/sites/{site}/subjects/{subject}/{path}", body, key=str(form.get("key"))
            )
        except GatewayProblem as problem:
            action = f"/sites/{site}/subjects/{subject}/forms/{operation}"
            posted = await form_page(request, session, operation, action, body, problem.by_field)
            posted.extra |= {k: str(form[k]) for k in FROM_PAGE if k in form}
            return await casebook_page(request, session, site, subject, status=problem.status, posted=posted)
        return written(site, subject, answer)

    @app.get("/sites/{site}/subjects/{subject}/forms/{name}/correction")
    async def correction(request: Request, site: str, subject: str, name: str) -> Response:
        """A form's current record, to correct with a reason; posted against its version (If-Match)."""
        session = signed_in(request)
        operation, extra = correcting(name)
        current = await request.app.state.gateway.get(session, f"/v1/sites/{site}/subjects/{subject}/forms/{name}")
        action = f"/sites/{site}/subjects/{subject}/forms/{name}/correction"
        shown = await form_page(request, session, operation, action, recorded_values(name, current["data"]), {})
        shown.extra |= extra | {"version": current["version"]}
        return page(request, "correction.html", session, site=site, subject_id=subject, name=name, form=shown)

    @app.post("/sites/{site}/subjects/{subject}/forms/{name}/correction")
    async def correct(request: Request, site: str, subject: str, name: str) -> Response:
        session = signed_in(request)
        form = await checked_form(request, session)
        operation, extra = correcting(name)
        path = CASEBOOK_FORMS[operation][0].format(**extra)
        specs = await form_fields(request, session, operation)
        version, reason = str(form.get("version", "")), str(form.get("reason", "")).strip()
        body = parsed(form, specs) | {"reason": reason}
        try:
            answer = await request.app.state.gateway.post(
                session,
                f"/v1/sites/{site}/subjects/{subject}/{path}",
                body,
                key=str(form.get("key")),
                if_match=f'"{version}"',
            )
        except GatewayProblem as problem:
            action = f"/sites/{site}/subjects/{subject}/forms/{name}/correction"
            shown = await form_page(request, session, operation, action, body, problem.by_field)
            shown.extra |= extra | {"version": problem.problem.get("current_version") or version, "reason": reason}
            return page(
                request, "correction.html", session, status=problem.status, site=site, subject_id=subject, name=name,
                form=shown,
            )  # fmt: skip
        return written(site, subject, answer)

    @app.post("/sites/{site}/subjects/{subject}/forms/{name}/verification")
    async def verify(request: Request, site: str, subject: str, name: str) -> Response:
        """A monitor verifies the form's record shown on the page (its version): a later one is not verified by it."""
        session = signed_in(request)
        form = await checked_form(request, session)
        answer = await request.app.state.gateway.post(
            session,
            f"/v1/sites/{site}/subjects/{subject}/forms/{name}/verification",
            {"version": str(form.get("version", ""))},
            key=str(form.get("key")),
        )
        return written(site, subject, answer)

    @app.post("/sites/{site}/subjects/{subject}/casebook/{step}")
    async def casebook_step(request: Request, site: str, subject: str, step: str) -> Response:
        session = signed_in(request)
        form = await checked_form(request, session)
        if f"casebook/{step}" not in CASEBOOK_STEPS:
            raise GatewayProblem(404, {"detail": f"no casebook step {step!r}"})
        body = {"reason": str(form.get("reason", "")).strip()} if step == "unlock" else {}
        answer = await request.app.state.gateway.post(
            session, f"/v1/sites/{site}/subjects/{subject}/casebook/{step}", body, key=str(form.get("key"))
        )
        return written(site, subject, answer)

    @app.post("/sites/{site}/subjects/{subject}/queries")
    async def open_query(request: Request, site: str, subject: str) -> Response:
        session = signed_in(request)
        form = await checked_form(request, session)
        body = {k: str(form.get(k, "")).strip() for k in ("form", "field", "text")}
        body = {k: v for k, v in body.items() if v}
        answer = await request.app.state.gateway.post(
            session, f"/v1/sites/{site}/subjects/{subject}/queries", body, key=str(form.get("key"))
        )
        return written(site, subject, answer)

    @app.post("/sites/{site}/subjects/{subject}/queries/{query}/{step}")
    async def query_step(request: Request, site: str, subject: str, query: uuid.UUID, step: str) -> Response:
        session = signed_in(request)
        form = await checked_form(request, session)
        if step not in ("answer", "close", "reopen"):
            raise GatewayProblem(404, {"detail": f"no step {step!r} of a query"})
        answer = await request.app.state.gateway.post(
            session,
            f"/v1/sites/{site}/subjects/{subject}/queries/{query}/{step}",
            {"text": str(form.get("text", "")).strip()},
            key=str(form.get("key")),
        )
        return written(site, subject, answer)

    @app.get("/sites/{site}/subjects/{subject}/sign/{kind}")
    async def signing(request: Request, site: str, subject: str, kind: SignatureKind) -> Response:
        """An electronic signature needs a fresh sign-in: the investigator is sent to sign in again first."""
        session = signed_in(request)
        # Signed in within the first half of the protocol's window: time left to read and sign before it closes.
        window = protocol.signatures.reauthentication_seconds
        if session.authenticated_at is None or time.time() - session.authenticated_at > window / 2:
            return RedirectResponse(f"/signin?max_age=0&next={request.url.path}", status_code=303)
        view = await request.app.state.gateway.get(session, f"/v1/sites/{site}/subjects/{subject}")
        meaning = SIGNATURE_MEANINGS[kind]
        return page(
            request, "sign.html", session, site=site, subject=view, kind=kind, meaning=meaning, key=str(uuid.uuid4())
        )

    @app.post("/sites/{site}/subjects/{subject}/sign/{kind}")
    async def sign(request: Request, site: str, subject: str, kind: SignatureKind) -> Response:
        session = signed_in(request)
        form = await checked_form(request, session)
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
        return written(site, subject, answer)

    @app.get("/worklist")
    async def worklist(request: Request, site: str | None = None) -> Response:
        """A monitor's work, at every site or one: forms waiting for source verification, oldest first, and every
        query not closed."""
        session = signed_in(request)
        if site is not None and protocol.site(site) is None:
            raise GatewayProblem(404, {"detail": f"no site {site} in the protocol"})
        at_site = {"site": site} if site else {}
        forms = await request.app.state.gateway.get(session, "/v1/reports/sdv-worklist.json", **at_site)
        queries = (await request.app.state.gateway.get(session, "/v1/reports/queries.json"))["open"]
        queries = [q for q in queries if site is None or q["site"] == site]
        return page(request, "worklist.html", session, forms=forms, queries=queries, site=site)

    @app.get("/reports")
    async def reports(request: Request) -> Response:
        session = signed_in(request)
        return page(
            request, "reports.html", session, pictures=PICTURES, reports=REPORTS, exports=EXPORTS,
            may_export=may(session.role, Right.EXPORT_DATA), may_lock=may(session.role, Right.LOCK_CASEBOOKS),
            key=str(uuid.uuid4()),
        )  # fmt: skip

    @app.get("/reports/page")
    async def report_page(request: Request) -> Response:
        """The gateway's report page (the primary endpoint, the data-management tables, the pictures) as it renders
        it, its links pointing here, where the browser's session reaches them."""
        session = signed_in(request)
        served = await request.app.state.gateway.file(session, "/v1/reports")
        html = served.text.replace('"/v1/reports/', '"/reports/')
        return Response(html, media_type="text/html; charset=utf-8", headers={"Cache-Control": "no-store"})

    @app.get("/reports/{path:path}")
    async def report_file(request: Request, path: str) -> Response:
        session = signed_in(request)
        if path not in {p for p, _ in (*PICTURES, *REPORTS, *EXPORTS)}:
            raise GatewayProblem(404, {"detail": f"no report {path}"})
        served = await request.app.state.gateway.file(session, f"/v1/reports/{path}")
        kept = {
            k: v for k, v in served.headers.items() if k.lower() in ("content-disposition", "database-lock-sequence")
        }
        return Response(served.content, media_type=served.headers.get("content-type"), headers=kept)

    @app.post("/trial/database-lock")
    async def lock_database(request: Request) -> Response:
        session = signed_in(request)
        form = await checked_form(request, session)
        await request.app.state.gateway.post(session, "/v1/trial/database-lock", {}, key=str(form.get("key")))
        return RedirectResponse("/reports", status_code=303)

    @app.get("/sites/{site}/calendar")
    async def calendar(request: Request, site: str) -> Response:
        """A coordinator's week: visits whose window is open or opens within seven days, and those overdue."""
        session = signed_in(request)
        gateway: Gateway = request.app.state.gateway
        today = protocol.local_date(site, datetime.now(UTC))
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
        return page(
            request, "calendar.html", session, site=site, today=today, due=sorted(due, key=order),
            overdue=sorted(overdue, key=order),
        )  # fmt: skip

    @app.get("/safety")
    async def safety_inbox(request: Request, seen: int | None = None) -> Response:
        session = signed_in(request)
        alerts = await request.app.state.gateway.get(session, "/v1/safety/alerts", read_after=seen)
        return page(request, "safety.html", session, alerts=alerts)

    @app.get("/safety/rows")
    async def safety_rows(request: Request) -> Response:
        session = signed_in(request)
        alerts = await request.app.state.gateway.get(session, "/v1/safety/alerts")
        return page(request, "_alert_rows.html", session, alerts=alerts)

    @app.get("/safety/events")
    async def safety_events(request: Request) -> Response:
        """Server-sent events: `alerts` whenever the open alerts change (looked at every second, for ten minutes;
        the browser reconnects by itself)."""
        session = signed_in(request)
        gateway: Gateway = request.app.state.gateway

        async def changes() -> AsyncIterator[str]:
            seen: set[str] | None = None
            for _ in range(600):
                if await request.is_disconnected():
                    return
                try:
                    now = {a["alert_id"] for a in await gateway.get(session, "/v1/safety/alerts")}
                except (GatewayProblem, httpx.HTTPError):
                    now = seen or set()
                if seen is not None and now != seen:
                    yield f"event: alerts\ndata: {len(now)}\n\n"
                seen = now
                await asyncio.sleep(1)

        return StreamingResponse(changes(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    @app.post("/safety/alerts/{alert}/acknowledgement")
    async def acknowledge(request: Request, alert: uuid.UUID) -> Response:
        session = signed_in(request)
        form = await checked_form(request, session)
        answer = await request.app.state.gateway.post(
            session, f"/v1/safety/alerts/{alert}/acknowledgement", {}, key=str(form.get("key"))
        )
        return RedirectResponse(f"/safety?seen={answer['stream_sequence']}", status_code=303)

    @app.get("/sites/{site}/subjects/{subject}/randomization")
    async def randomization_confirmation(request: Request, site: str, subject: str) -> Response:
        session = signed_in(request)
        view = await request.app.state.gateway.get(session, f"/v1/sites/{site}/subjects/{subject}")
        return page(request, "randomize.html", session, site=site, subject=view, key=str(uuid.uuid4()))

    @app.post("/sites/{site}/subjects/{subject}/randomization")
    async def randomize(request: Request, site: str, subject: str) -> Response:
        session = signed_in(request)
        form = await checked_form(request, session)
        answer = await request.app.state.gateway.post(
            session, f"/v1/sites/{site}/subjects/{subject}/randomization", {}, key=str(form.get("key"))
        )
        return written(site, subject, answer)

    async def form_fields(request: Request, session: Session, operation: str) -> tuple[Field, ...]:
        """The operation's fields, but those that are another role's judgement (the protocol's delegation)."""
        others = frozenset(name for name, right in DELEGATED.items() if not may(session.role, right))
        return fields(
            await request.app.state.gateway.request_schema(operation), skip=CASEBOOK_FORMS[operation][2] | others
        )

    async def form_page(
        request: Request,
        session: Session,
        operation: str,
        action: str,
        values: dict[str, Any],
        errors: dict[str, str],
    ) -> FormPage:
        specs = filled(await form_fields(request, session, operation), values, errors)
        message = errors.get("", "")
        return FormPage(CASEBOOK_FORMS[operation][1], action, specs, key=str(uuid.uuid4()), message=message)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'")
        return response

    return app
