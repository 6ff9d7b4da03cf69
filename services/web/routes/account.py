"""Signing in at the identity provider and out, the language, and each role's first page."""

import httpx
import structlog
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from services.web.gateway import GatewayProblem
from services.web.i18n import LANGUAGE_COOKIE, LANGUAGES
from services.web.pages import PagesOf
from services.web.session import SIGN_IN_COOKIE
from services.web.signin import SignInFailed, new_attempt
from shared.contracts.access import SITE_ROLES, Right, may

router = APIRouter()
log = structlog.get_logger(__name__)


@router.get("/signin")
async def signin(request: Request, pages: PagesOf, next: str = "/", max_age: int | None = None) -> Response:
    # A fresh sign-in asked for by this app (before a signature) must bring back the person signed in now.
    current = pages.cookies.session(request) if max_age is not None else None
    attempt = new_attempt(next, same_person=current.subject if current else None)
    try:
        target = await request.app.state.provider.authorization_url(attempt, max_age=max_age)
    except SignInFailed as exc:
        return pages.page(request, "message.html", None, status=503, title="sign_in_failed", detail=str(exc))
    response = RedirectResponse(target, status_code=303)
    pages.cookies.keep_attempt(response, attempt)
    return response


@router.get("/signin/callback")
async def signin_callback(
    request: Request, pages: PagesOf, code: str = "", state: str = "", error: str = ""
) -> Response:
    attempt = pages.cookies.attempt(request)
    if error or attempt is None or not code or state != attempt.state:
        detail = error or "the sign-in could not be matched to this browser: start again"
        return pages.page(request, "message.html", None, status=400, title="sign_in_failed", detail=detail)
    try:
        session = await request.app.state.provider.session_for(code, attempt)
    except SignInFailed as exc:
        return pages.page(request, "message.html", None, status=403, title="sign_in_failed", detail=str(exc))
    if attempt.same_person is not None and session.subject != attempt.same_person:
        # Not a re-authentication of this person: their session stays as it was, and nothing is signed.
        kept = pages.cookies.session(request)
        detail = f"{session.name} ≠ {kept.name if kept else attempt.same_person}"
        response = pages.page(request, "message.html", kept, status=403, title="another_person", detail=detail)
        pages.cookies.forget(response, SIGN_IN_COOKIE)
        log.warning("reauthentication_by_another_person", role=session.role, site=session.site)
        return response
    response = RedirectResponse(attempt.next, status_code=303)
    pages.cookies.forget(response)
    pages.cookies.keep_session(response, session)
    log.info("signed_in", role=session.role, site=session.site)
    return response


@router.post("/signout")
async def signout(request: Request, pages: PagesOf) -> Response:
    """Ends the session where it lives: the gateway refuses its token from now on (a copy of the cookie is worth
    nothing), then the provider ends its own session, so signing in again asks for credentials."""
    session = pages.cookies.session(request)
    if session is None:
        response = RedirectResponse("/signed-out", status_code=303)
        pages.cookies.forget(response)
        return response
    await pages.checked_form(request, session)
    try:
        await request.app.state.gateway.sign_out(session)
    except GatewayProblem as problem:
        if problem.status != 401:  # 401: the token is already refused (ended, expired or revoked)
            return pages.page(request, "message.html", session, status=503, title="sign_out_failed", detail="")
    except httpx.HTTPError:
        return pages.page(request, "message.html", session, status=503, title="sign_out_failed", detail="")
    signed_out = f"{request.app.state.settings.public_url.rstrip('/')}/signed-out"
    try:
        target = await request.app.state.provider.end_session_url(session, signed_out_url=signed_out)
    except SignInFailed:
        target = None  # the provider unreachable: this app's session is ended all the same
    response = RedirectResponse(target or "/signed-out", status_code=303)
    pages.cookies.forget(response)
    log.info("signed_out", role=session.role, site=session.site)
    return response


@router.get("/signed-out")
async def signed_out(request: Request, pages: PagesOf) -> Response:
    return pages.page(request, "message.html", None, title="signed_out", detail="")


@router.get("/language/{lang}")
async def choose_language(lang: str, next: str = "/") -> Response:
    target = next if next.startswith("/") and not next.startswith("//") else "/"
    response = RedirectResponse(target, status_code=303)
    if lang in LANGUAGES:
        response.set_cookie(LANGUAGE_COOKIE, lang, max_age=365 * 86400, samesite="lax", path="/")
    return response


@router.get("/")
async def home(request: Request, pages: PagesOf) -> Response:
    session = pages.signed_in(request)
    if session.role in SITE_ROLES and session.site:
        return RedirectResponse(f"/sites/{session.site}/subjects", status_code=303)
    if may(session.role, Right.ACKNOWLEDGE_ALERTS):
        return RedirectResponse("/safety", status_code=303)
    if may(session.role, Right.VERIFY_FORMS):
        return RedirectResponse("/worklist", status_code=303)
    if may(session.role, Right.READ_REPORTS):
        return RedirectResponse("/reports", status_code=303)
    return pages.page(request, "home.html", session)
