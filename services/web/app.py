"""The trial in a browser for site staff, monitors, the safety team and data managers: server-rendered pages on
top of the gateway's public API, signed in at the trial's identity provider. `create_app(settings)` wires it; the
pages are in `routes/`, what they share in `pages.py`."""

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import structlog
from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles

from services.web.gateway import Gateway, GatewayProblem
from services.web.i18n import language
from services.web.pages import Pages, SignInNeeded
from services.web.routes import account, desks, sites, subject
from services.web.session import Cookies
from services.web.settings import WebSettings
from services.web.signin import Provider
from shared.runtime.health import HealthServer

log = structlog.get_logger(__name__)


def create_app(settings: WebSettings) -> FastAPI:
    if settings.web_session_key is None:
        raise ValueError("WEB_SESSION_KEY is not set: the session cookie cannot be encrypted")
    cookies = Cookies(settings.web_session_key.get_secret_value(), secure=settings.secure_cookies)
    pages = Pages(cookies, settings.protocol())

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
    app.state.pages = pages
    app.state.settings = settings
    app.mount("/static", StaticFiles(directory=Path(__file__).parent / "static"), name="static")
    for routes in (account, sites, subject, desks):
        app.include_router(routes.router)

    @app.exception_handler(SignInNeeded)
    async def sign_in_first(request: Request, exc: SignInNeeded) -> Response:
        return RedirectResponse(f"/signin?next={exc.next_path}", status_code=303)

    @app.exception_handler(GatewayProblem)
    async def problem_page(request: Request, exc: GatewayProblem) -> Response:
        if exc.status == 401:
            # The gateway no longer takes this session's token (signed out elsewhere, expired, revoked): it is over.
            response = RedirectResponse(f"/signin?next={request.url.path}", status_code=303)
            cookies.forget(response)
            return response
        session = cookies.session(request)
        return pages.page(
            request, "message.html", session, status=exc.status, title="problem", detail=exc.said(language(request))
        )

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        response.headers.setdefault("Content-Security-Policy", "default-src 'self'; style-src 'self' 'unsafe-inline'")
        return response

    return app
