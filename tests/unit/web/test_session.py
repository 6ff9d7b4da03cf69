"""The session cookie: encrypted, refused when tampered with or expired; the CSRF token compared in constant time."""

import time

from cryptography.fernet import Fernet
from fastapi import Request, Response

from services.web.session import SESSION_COOKIE, Cookies, Session
from services.web.signin import new_attempt

KEY = Fernet.generate_key().decode()


def session(expires_in: float = 600) -> Session:
    return Session("token", time.time() + expires_in, "inv-1", "Dr Li", "investigator", "NFH", None, "csrf-abc")


def request_with(cookie: str) -> Request:
    return Request({"type": "http", "headers": [(b"cookie", f"{SESSION_COOKIE}={cookie}".encode())]})


def kept(cookies: Cookies, value: Session) -> str:
    response = Response()
    cookies.keep_session(response, value)
    header = response.headers["set-cookie"]
    assert "HttpOnly" in header and "SameSite=lax" in header and "Secure" in header
    return header.split(";")[0].split("=", 1)[1]


def test_a_session_comes_back_as_it_was_kept_and_the_browser_sees_only_ciphertext() -> None:
    cookies = Cookies(KEY, secure=True)
    raw = kept(cookies, session())
    assert "token" not in raw and "investigator" not in raw
    back = cookies.session(request_with(raw))
    assert back is not None and (back.access_token, back.role, back.site, back.csrf) == (
        "token",
        "investigator",
        "NFH",
        "csrf-abc",
    )


def test_a_tampered_expired_or_foreign_cookie_is_no_session() -> None:
    cookies = Cookies(KEY, secure=True)
    raw = kept(cookies, session())
    assert cookies.session(request_with(raw[:-4] + "AAAA")) is None
    assert cookies.session(request_with(kept(cookies, session(expires_in=-1)))) is None
    assert Cookies(Fernet.generate_key().decode(), secure=True).session(request_with(raw)) is None


def test_the_csrf_token_must_be_the_sessions_own() -> None:
    assert session().csrf_matches("csrf-abc")
    assert not session().csrf_matches("csrf-abd") and not session().csrf_matches(None)


def test_after_signing_in_the_browser_goes_only_to_a_path_of_this_app() -> None:
    assert new_attempt("/sites/NFH/subjects").next == "/sites/NFH/subjects"
    assert new_attempt("https://evil.example/").next == "/" and new_attempt("//evil.example/x").next == "/"
