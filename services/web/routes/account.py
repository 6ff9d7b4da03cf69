"""Signing in at the identity provider and out, the language, and each role's first page."""

import structlog
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from services.web.i18n import LANGUAGE_COOKIE, LANGUAGES
from services.web.pages import PagesOf
from services.web.signin import SignInFailed, new_attempt
from shared.contracts.access import SITE_ROLES, Right, may

router = APIRouter()


@router.get("/signin")
async def signin(request: Request, pages: PagesOf, next: str = "/", max_age: int | None = None) -> Response:
    attempt = new_attempt(next)
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
    response = RedirectResponse(attempt.next, status_code=303)
    pages.cookies.forget(response)
    pages.cookies.keep_session(response, session)
    structlog.get_logger(__name__).info("signed_in", role=session.role, site=session.site)
    return response


@router.post("/signout")
async def signout(request: Request, pages: PagesOf) -> Response:
    session = pages.cookies.session(request)
    if session is not None:
        await pages.checked_form(request, session)
    response = pages.page(request, "message.html", None, title="sign_out", detail="")
    pages.cookies.forget(response)
    return response


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
