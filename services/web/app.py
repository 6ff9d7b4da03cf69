"""The trial in a browser for site staff, monitors, the safety team and data managers: server-rendered pages on
top of the gateway's public API, signed in at the trial's identity provider. `create_app(settings)` wires it."""

import contextlib
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import structlog
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from services.web.forms import Field, FormPage, fields, filled, parsed
from services.web.gateway import Gateway, GatewayProblem
from services.web.i18n import LANGUAGE_COOKIE, LANGUAGES, language, translator
from services.web.session import Cookies, Session
from services.web.settings import WebSettings
from services.web.signin import Provider, SignInFailed, new_attempt
from shared.contracts.access import SITE_ROLES, Right, may
from shared.runtime.health import HealthServer

log = structlog.get_logger(__name__)
TEMPLATES = Jinja2Templates(directory=Path(__file__).parent / "templates")

# The forms of a subject's casebook this app offers, by the gateway's operation: its path under the subject, its
# title, and the fields the app fills itself or leaves to another step.
CASEBOOK_FORMS: dict[str, tuple[str, str, frozenset[str]]] = {
    "record_consent": ("consent", "consent", frozenset({"supersedes", "reason"})),
    "screen_subject": ("screening", "screening", frozenset({"supersedes", "reason"})),
}


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
        return page(request, "home.html", session)

    @app.get("/sites/{site}/subjects")
    async def subjects(request: Request, site: str) -> Response:
        session = signed_in(request)
        listed = await request.app.state.gateway.get(session, f"/v1/sites/{site}/subjects", limit=200)
        consent = await form_page(request, "record_consent", f"/sites/{site}/subjects", {}, {})
        return page(request, "subjects.html", session, site=site, subjects=listed["items"], consent=consent)

    @app.post("/sites/{site}/subjects")
    async def new_subject(request: Request, site: str) -> Response:
        session = signed_in(request)
        form = await checked_form(request, session)
        subject = str(form.get("subject_id", "")).strip()
        specs = await form_fields(request, "record_consent")
        body = parsed(form, specs)
        try:
            answer = await request.app.state.gateway.post(
                session, f"/v1/sites/{site}/subjects/{subject}/consent", body, key=str(form.get("key"))
            )
        except GatewayProblem as problem:
            errors = problem.by_field
            if "subject" in str(problem.problem.get("field") or "") or problem.status == 404:
                errors = {"subject_id": str(problem)}
            consent = await form_page(request, "record_consent", f"/sites/{site}/subjects", body, errors)
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
        if may_post and view["state"] in ("consented", "screen_failed", "eligible") and not view["arm"]:
            action = f"/sites/{site}/subjects/{subject}/forms/screen_subject"
            forms.append(posted or await form_page(request, "screen_subject", action, {}, {}))
        return page(
            request, "casebook.html", session, status=status, site=site, subject=view, screened=screened, forms=forms,
            may_post=may_post, key=str(uuid.uuid4()),
        )  # fmt: skip

    @app.post("/sites/{site}/subjects/{subject}/forms/{operation}")
    async def post_casebook_form(request: Request, site: str, subject: str, operation: str) -> Response:
        session = signed_in(request)
        form = await checked_form(request, session)
        if operation not in CASEBOOK_FORMS:
            raise GatewayProblem(404, {"detail": f"no form {operation}"})
        path = CASEBOOK_FORMS[operation][0]
        specs = await form_fields(request, operation)
        body = parsed(form, specs)
        try:
            answer = await request.app.state.gateway.post(
                session, f"/v1/sites/{site}/subjects/{subject}/{path}", body, key=str(form.get("key"))
            )
        except GatewayProblem as problem:
            action = f"/sites/{site}/subjects/{subject}/forms/{operation}"
            posted = await form_page(request, operation, action, body, problem.by_field)
            return await casebook_page(request, session, site, subject, status=problem.status, posted=posted)
        return written(site, subject, answer)

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

    async def form_fields(request: Request, operation: str) -> tuple[Field, ...]:
        skip = CASEBOOK_FORMS[operation][2]
        return fields(await request.app.state.gateway.request_schema(operation), skip=skip)

    async def form_page(
        request: Request, operation: str, action: str, values: dict[str, Any], errors: dict[str, str]
    ) -> FormPage:
        specs = filled(await form_fields(request, operation), values, errors)
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
