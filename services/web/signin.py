"""Signing in at the trial's OpenID Connect provider: authorization code with PKCE (RFC 7636), the code exchanged
by this server, never by the browser. The access token is the gateway's (its audience); this app reads its claims
only to shape the pages, the gateway verifies it on every call."""

import base64
import hashlib
import secrets
import time
import urllib.parse
from typing import Any

import httpx
import jwt

from services.web.session import Session, SignInAttempt, new_csrf
from shared.contracts.access import trial_roles


class SignInFailed(Exception):
    """The provider said no, or answered something this app cannot use: shown, never a 500."""


def new_attempt(next_path: str, *, same_person: str | None = None) -> SignInAttempt:
    # Only a path of this app: never an open redirect to somewhere else.
    safe_next = next_path if next_path.startswith("/") and not next_path.startswith("//") else "/"
    return SignInAttempt(
        state=secrets.token_urlsafe(24),
        verifier=secrets.token_urlsafe(48),
        nonce=secrets.token_urlsafe(16),
        next=safe_next,
        same_person=same_person,
    )


def challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class Provider:
    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        issuer: str,
        client_id: str,
        redirect_uri: str,
        audience: str,
        group_prefix: str,
    ) -> None:
        self._http = http
        self._issuer = issuer.rstrip("/")
        self._client_id = client_id
        self._redirect_uri = redirect_uri
        self._audience = audience
        self._group_prefix = group_prefix
        self._discovery: dict[str, Any] | None = None

    async def _endpoint(self, name: str) -> str:
        if self._discovery is None:
            try:
                answer = await self._http.get(f"{self._issuer}/.well-known/openid-configuration")
                answer.raise_for_status()
                self._discovery = answer.json()
            except (httpx.HTTPError, ValueError) as exc:
                raise SignInFailed("the identity provider cannot be reached") from exc
        return str(self._discovery[name])

    async def authorization_url(self, attempt: SignInAttempt, *, max_age: int | None = None) -> str:
        """Where the browser goes to sign in; `max_age` asks for a sign-in that recent (0: sign in again now)."""
        query = {
            "client_id": self._client_id,
            "response_type": "code",
            "redirect_uri": self._redirect_uri,
            "scope": "openid profile groups",
            "resource": self._audience,
            "code_challenge": challenge(attempt.verifier),
            "code_challenge_method": "S256",
            "state": attempt.state,
            "nonce": attempt.nonce,
        } | ({"max_age": str(max_age)} if max_age is not None else {})
        return f"{await self._endpoint('authorization_endpoint')}?{urllib.parse.urlencode(query)}"

    async def session_for(self, code: str, attempt: SignInAttempt) -> Session:
        """The code exchanged for the gateway's access token; the session is what its claims say."""
        try:
            answer = await self._http.post(
                await self._endpoint("token_endpoint"),
                data={
                    "grant_type": "authorization_code",
                    "code": code,
                    "redirect_uri": self._redirect_uri,
                    "client_id": self._client_id,
                    "code_verifier": attempt.verifier,
                },
            )
        except httpx.HTTPError as exc:
            raise SignInFailed("the identity provider cannot be reached") from exc
        if answer.status_code != 200:
            raise SignInFailed(f"the identity provider refused the sign-in ({answer.status_code})")
        tokens = answer.json()
        token = str(tokens.get("access_token", ""))
        try:
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError as exc:
            raise SignInFailed("the identity provider's token is not one the gateway takes") from exc
        roles = trial_roles(claims.get("groups"), self._group_prefix)
        if len(roles) != 1:
            raise SignInFailed("your account has no trial role here (or more than one): ask the data manager")
        [(role, site)] = roles
        auth_time = claims.get("auth_time")
        return Session(
            access_token=token,
            expires_at=min(float(claims.get("exp", 0)), time.time() + 12 * 3600),
            subject=str(claims.get("sub", "")),
            name=str(claims.get("name") or claims.get("sub", "")),
            role=str(role),
            site=site,
            authenticated_at=auth_time if isinstance(auth_time, int) else None,
            csrf=new_csrf(),
            id_token=tokens.get("id_token") if isinstance(tokens.get("id_token"), str) else None,
        )

    async def end_session_url(self, session: Session, *, signed_out_url: str) -> str | None:
        """Where the browser goes to end the provider's own session too (OpenID Connect RP-Initiated Logout), so that
        signing in again asks for credentials; None where the provider offers no such endpoint."""
        await self._endpoint("authorization_endpoint")  # the discovery document, read once
        assert self._discovery is not None
        endpoint = self._discovery.get("end_session_endpoint")
        if not isinstance(endpoint, str):
            return None
        query = {"client_id": self._client_id, "post_logout_redirect_uri": signed_out_url}
        if session.id_token:
            query["id_token_hint"] = session.id_token
        return f"{endpoint}?{urllib.parse.urlencode(query)}"
