"""Who is signed in, kept in an encrypted, HttpOnly cookie: the browser holds ciphertext only, never a token it can
read or reuse elsewhere, and nothing lives longer than the access token inside it (an hour at most).

Every form carries the session's CSRF token; a POST without it, or with another, is refused.
"""

import hmac
import json
import secrets
import time
from dataclasses import asdict, dataclass

from cryptography.fernet import Fernet, InvalidToken
from fastapi import Request, Response

SESSION_COOKIE = "trial_session"
SIGN_IN_COOKIE = "trial_sign_in"


@dataclass(frozen=True)
class Session:
    access_token: str
    expires_at: float
    subject: str
    name: str
    role: str
    site: str | None
    authenticated_at: int | None
    csrf: str
    # The provider's ID token, shown back to it at sign-out (RP-initiated logout) so it ends its own session too.
    id_token: str | None = None

    @property
    def expired(self) -> bool:
        return time.time() >= self.expires_at

    def csrf_matches(self, offered: str | None) -> bool:
        return offered is not None and hmac.compare_digest(offered, self.csrf)


@dataclass(frozen=True)
class SignInAttempt:
    """Between sending the browser to the provider and its coming back: state, PKCE verifier, where to go."""

    state: str
    verifier: str
    nonce: str
    next: str
    # A fresh sign-in before signing: whoever signs in must be this person (`sub`), or the session stays as it was.
    same_person: str | None = None


class Cookies:
    def __init__(self, key: str, *, secure: bool) -> None:
        self._fernet = Fernet(key)
        self._secure = secure

    def _set(self, response: Response, name: str, value: object, max_age: int) -> None:
        token = self._fernet.encrypt(json.dumps(value).encode()).decode()
        response.set_cookie(name, token, max_age=max_age, httponly=True, secure=self._secure, samesite="lax", path="/")

    def _get(self, request: Request, name: str, max_age: int) -> dict[str, object] | None:
        raw = request.cookies.get(name)
        if raw is None:
            return None
        try:
            value = json.loads(self._fernet.decrypt(raw.encode(), ttl=max_age))
        except (InvalidToken, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def keep_session(self, response: Response, session: Session) -> None:
        self._set(response, SESSION_COOKIE, asdict(session), max(1, int(session.expires_at - time.time())))

    def session(self, request: Request) -> Session | None:
        found = self._get(request, SESSION_COOKIE, 12 * 3600)
        if found is None:
            return None
        try:
            session = Session(**found)  # type: ignore[arg-type]
        except TypeError:
            return None
        return None if session.expired else session

    def keep_attempt(self, response: Response, attempt: SignInAttempt) -> None:
        self._set(response, SIGN_IN_COOKIE, asdict(attempt), 600)

    def attempt(self, request: Request) -> SignInAttempt | None:
        found = self._get(request, SIGN_IN_COOKIE, 600)
        try:
            return SignInAttempt(**found) if found else None  # type: ignore[arg-type]
        except TypeError:
            return None

    def forget(self, response: Response, *names: str) -> None:
        """Delete the cookies named (both by default: the session and a sign-in in progress)."""
        for name in names or (SESSION_COOKIE, SIGN_IN_COOKIE):
            response.delete_cookie(name, path="/", secure=self._secure, httponly=True, samesite="lax")


def new_csrf() -> str:
    return secrets.token_urlsafe(24)
