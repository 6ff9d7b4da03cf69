"""Access tokens from the trial's OpenID Connect provider (a hospital's or the sponsor's Keycloak, Entra ID, …).

A token is taken when the provider's published keys (its JWKS, found through the discovery document) verify its
signature, it names the configured issuer and audience, it has not expired, and its groups give exactly one trial
role: `trial:<SITE>:<role>` for site roles, `trial:<role>` for the others. The keys are cached; a key id not seen
yet makes the gateway fetch them again (at most every few seconds), so a rotation at the provider needs nothing here.
"""

import asyncio
import hashlib
import time
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
import structlog
from pydantic import ValidationError

from services.gateway.auth import (
    InvalidToken,
    Principal,
    ProviderUnavailable,
    RoleNotGranted,
    VerifiedTokens,
    signed_in_at,
    verify_token,
)
from services.gateway.settings import GatewaySettings
from shared.contracts.access import Role, trial_roles
from shared.runtime.logging import error_summary

log = structlog.get_logger(__name__)

# Asymmetric only: a provider's keys are public, so a symmetric algorithm would let anyone sign.
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")


class ProviderKeys:
    """The provider's signing keys by key id: fetched when first needed, again when older than `cache_seconds`
    or when a token names a key id not among them (not more often than every `refetch_seconds`)."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        issuer: str,
        *,
        jwks_url: str | None = None,
        cache_seconds: float = 300.0,
        refetch_seconds: float = 5.0,
    ) -> None:
        self._http = http
        self._issuer = issuer
        self._jwks_url = jwks_url
        self._cache_seconds = cache_seconds
        self._refetch_seconds = refetch_seconds
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = -float("inf")
        self._reachable = True  # the last fetch got the keys
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> jwt.PyJWK:
        seen = self._fetched_at
        age = time.monotonic() - seen
        if age > self._cache_seconds or (kid not in self._keys and age > self._refetch_seconds):
            async with self._lock:
                if self._fetched_at == seen:  # else another request fetched them while this one waited
                    await self._fetch()
        known = self._keys.get(kid)
        if known is None and not self._reachable:
            raise ProviderUnavailable("the identity provider's keys cannot be fetched now")
        if known is None:
            raise InvalidToken("token signed with a key the identity provider does not publish")
        return known

    @property
    def checked_again_at(self) -> float:
        """When the keys held now are next fetched again (wall clock): a token verified by one of them is taken
        without a new check until then, so a key the provider drops is refused as soon as it would be anyway."""
        return time.time() + self._cache_seconds - (time.monotonic() - self._fetched_at)

    async def _fetch(self) -> None:
        try:
            if self._jwks_url is None:
                discovery = await self._http.get(f"{self._issuer.rstrip('/')}/.well-known/openid-configuration")
                discovery.raise_for_status()
                self._jwks_url = str(discovery.json()["jwks_uri"])
            answer = await self._http.get(self._jwks_url)
            answer.raise_for_status()
            keys = jwt.PyJWKSet.from_dict(answer.json()).keys
        except (httpx.HTTPError, ValueError, KeyError, jwt.PyJWKSetError) as exc:
            # The keys known so far stay in use: a provider that is briefly away does not sign everyone out.
            log.warning("identity_provider_keys_unavailable", error=error_summary(exc))
            self._fetched_at, self._reachable = time.monotonic(), False
            return
        self._keys = {k.key_id: k for k in keys if k.key_id and k.public_key_use in (None, "sig")}
        self._fetched_at, self._reachable = time.monotonic(), True
        log.info("identity_provider_keys_fetched", kids=sorted(self._keys))


class OidcVerifier:
    def __init__(
        self,
        keys: ProviderKeys,
        *,
        issuer: str,
        audience: str,
        groups_claim: str = "groups",
        group_prefix: str = "trial",
        name_claim: str = "name",
        max_hours: float,
    ) -> None:
        self.issuer = issuer
        self.keys = keys
        self._audience = audience
        self._groups_claim = groups_claim
        self._group_prefix = group_prefix
        self._name_claim = name_claim
        self._max_hours = max_hours

    async def verify(self, token: str) -> Principal:
        try:
            header = jwt.get_unverified_header(token)
            kid, algorithm = header.get("kid"), header.get("alg")
            if not isinstance(kid, str) or algorithm not in ALGORITHMS:
                raise InvalidToken("token not signed with one of the identity provider's keys")
            key = await self.keys.key(kid)
            claims = jwt.decode(
                token,
                key.key,
                algorithms=[algorithm],
                issuer=self.issuer,
                audience=self._audience,
                options={"require": ["exp", "iat", "sub", "iss", "aud"]},
            )
            if not 0 < claims["exp"] - claims["iat"] <= self._max_hours * 3600:
                raise InvalidToken(f"token lifetime over {self._max_hours:g} hours")
            role, site = self.trial_role(claims.get(self._groups_claim))
            return Principal(
                actor=claims["sub"],
                role=role,
                site=site,
                # Providers differ (jti, Entra's uti): a digest of the token stands in where none is given.
                token_id=str(claims.get("jti") or claims.get("uti") or hashlib.sha256(token.encode()).hexdigest()[:32]),
                issuer=self.issuer,
                authenticated_at=signed_in_at(claims),
                name=claims.get(self._name_claim),
                expires_at=datetime.fromtimestamp(claims["exp"], UTC),
            )
        except jwt.ExpiredSignatureError as exc:
            raise InvalidToken("token expired") from exc
        except jwt.InvalidAudienceError as exc:
            raise InvalidToken("token issued for another audience") from exc
        except jwt.InvalidIssuerError as exc:
            raise InvalidToken("token from another issuer") from exc
        except (jwt.InvalidTokenError, ValidationError, KeyError, TypeError) as exc:
            raise InvalidToken("token invalid") from exc

    def trial_role(self, groups: Any) -> tuple[Role, str | None]:
        """The one trial role the groups give (`trial:NFH:investigator`, `trial:monitor`); other groups ignored."""
        granted = trial_roles(groups, self._group_prefix)
        if len(granted) != 1:
            raise RoleNotGranted(
                "the identity provider gives this account no trial role"
                if not granted
                else "the identity provider gives this account more than one trial role: one account per role"
            )
        return granted.pop()


class TrustedIssuers:
    """Whose tokens the gateway takes, chosen by the token's `iss`: the identity provider's (production), and the
    gateway's own development issuer while it has keys (`make run`, the tests, the `token` command)."""

    def __init__(
        self,
        *,
        provider: OidcVerifier | None,
        development_keys: dict[str, str],
        development_issuer: str,
        max_hours: float,
    ) -> None:
        self._provider = provider
        self._development_keys = development_keys
        self._development_issuer = development_issuer
        self._max_hours = max_hours
        self._verified = VerifiedTokens()

    async def verify(self, token: str) -> Principal:
        """The token's holder, verified once per token (`VerifiedTokens`)."""
        known = self._verified.get(token)
        if known is not None:
            return known
        try:
            issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
        except jwt.InvalidTokenError as exc:
            raise InvalidToken("token invalid") from exc
        if self._provider is not None and issuer == self._provider.issuer:
            caller = await self._provider.verify(token)
            self._verified.keep(token, caller, until=self._provider.keys.checked_again_at)
            return caller
        if self._development_keys and issuer == self._development_issuer:
            caller = verify_token(token, self._development_keys, issuer=issuer, max_hours=self._max_hours)
            self._verified.keep(token, caller, until=caller.expires_at.timestamp())
            return caller
        raise InvalidToken("token from another issuer")


def trusted_issuers(settings: GatewaySettings, http: httpx.AsyncClient) -> TrustedIssuers:
    """From the settings; refuses (UnsafeConfiguration) a gateway that would trust nobody or a published key."""
    provider = None
    if settings.oidc_issuer is not None:
        keys = ProviderKeys(
            http, settings.oidc_issuer, jwks_url=settings.oidc_jwks_url, cache_seconds=settings.oidc_keys_cache_seconds
        )
        provider = OidcVerifier(
            keys,
            issuer=settings.oidc_issuer,
            audience=settings.oidc_audience or "",
            groups_claim=settings.oidc_groups_claim,
            group_prefix=settings.oidc_group_prefix,
            name_claim=settings.oidc_name_claim,
            max_hours=settings.token_max_hours,
        )
    return TrustedIssuers(
        provider=provider,
        development_keys=settings.signing_keys(),
        development_issuer=settings.token_issuer,
        max_hours=settings.token_max_hours,
    )
