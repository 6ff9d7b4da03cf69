"""Who may do what: signed expiring tokens naming a role (and a site for site roles), and the rights table."""

import time
import uuid
from collections import OrderedDict
from datetime import UTC, datetime, timedelta
from typing import Any, Self

import jwt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from services.gateway.idempotency import key_scope
from services.gateway.settings import MAX_TOKEN_HOURS
from shared.contracts.access import RIGHTS as RIGHTS
from shared.contracts.access import SITE_ROLES as SITE_ROLES
from shared.contracts.access import Right as Right
from shared.contracts.access import Role as Role
from shared.contracts.protocol import SiteCode

ALGORITHM = "HS256"


# Staff codes and token ids: printable, bounded (they travel in every command and event).
CLAIM_PATTERN = r"^[\x21-\x7e]{1,100}$"
# A person's printed name: any printable text, bounded (it is shown under a signature).
NAME_PATTERN = r"^[^\x00-\x1f\x7f]{1,100}$"


class Principal(BaseModel):
    model_config = ConfigDict(frozen=True)
    actor: str = Field(pattern=CLAIM_PATTERN)
    role: Role
    site: SiteCode | None = None
    token_id: str = Field(pattern=CLAIM_PATTERN)
    issuer: str = Field(pattern=r"^[\x21-\x7e]{1,300}$")  # an identity provider's URL may be long
    # When the person last proved who they are (OIDC `auth_time`): an electronic signature needs it fresh.
    authenticated_at: datetime | None = None
    name: str | None = Field(None, pattern=NAME_PATTERN, description="the printed name a signature shows")
    expires_at: datetime = Field(description="when the token stops being taken anyway")

    @model_validator(mode="after")
    def _site_roles_name_one_site(self) -> Self:
        if (self.role in SITE_ROLES) != (self.site is not None):
            raise ValueError("site roles carry exactly one site, other roles none")
        return self

    @property
    def scope(self) -> str:
        return key_scope(self.issuer, self.actor, self.site)

    def may(self, right: Right) -> bool:
        return right in RIGHTS[self.role]

    def may_see_site(self, site: str) -> bool:
        return self.role not in SITE_ROLES or self.site == site


class InvalidToken(Exception):
    """Missing, expired, forged or malformed: 401. The message names no personal data."""


# Clocks of a provider and of the gateway differ by a little; a sign-in later than this is one that has not happened.
CLOCK_SKEW_SECONDS = 60


def signed_in_at(claims: dict[str, Any]) -> datetime | None:
    """When the token's holder proved who they are (OIDC `auth_time`), which an electronic signature needs recent.
    A sign-in after the token was issued, or after now, is no sign-in that happened: the token is refused."""
    auth_time = claims.get("auth_time")
    if not isinstance(auth_time, int) or isinstance(auth_time, bool):
        return None
    latest = min(int(claims["iat"]), time.time()) + CLOCK_SKEW_SECONDS
    if auth_time > latest:
        raise InvalidToken("token says its holder signed in after it was issued")
    return datetime.fromtimestamp(auth_time, UTC)


class ProviderUnavailable(Exception):
    """The identity provider's keys cannot be fetched and none is known for the token: 503, try again."""


class RoleNotGranted(Exception):
    """A valid token whose holder has no trial role (or more than one): 403."""


class TokenRequestInvalid(ValueError):
    pass


def issue_token(
    keys: dict[str, str],
    *,
    issuer: str,
    role: Role,
    site: str | None,
    hours: float,
    actor: str | None = None,
    name: str | None = None,
    authenticated_at: datetime | None = None,
) -> str:
    """A development-issuer token; like an OIDC provider's, it says when its holder authenticated (`auth_time`:
    now, unless given) and, if given, the holder's printed name."""
    if role in SITE_ROLES and not site:
        raise TokenRequestInvalid(f"role {role} needs --site")
    if role not in SITE_ROLES and site:
        raise TokenRequestInvalid(f"role {role} is not tied to a site; omit --site")
    if not 0 < hours <= 24 * 31:
        raise TokenRequestInvalid("hours must be between 0 and 744")
    if not keys:
        raise TokenRequestInvalid(
            "no development issuer here (no TOKEN_SIGNING_KEYS): sign in at the identity provider"
        )
    kid, secret = next(iter(keys.items()))
    now = datetime.now(UTC)
    claims = {
        "iss": issuer,
        "sub": actor or f"{role}-{site or 'trial'}-{uuid.uuid4().hex[:8]}",
        "role": str(role),
        "site": site,
        "iat": now,
        "nbf": now,
        "exp": now + timedelta(hours=hours),
        "jti": uuid.uuid4().hex,
        "auth_time": int((authenticated_at or now).timestamp()),
        **({"name": name} if name else {}),
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM, headers={"kid": kid})


class VerifiedTokens:
    """Tokens already verified, each held until it expires or until the keys that verified it are checked again:
    a token's signature and claims never change, so verifying it on every request only spends the CPU again.
    Whether it still stands (a sign-out, a revoked access) is not held here: `TokenStanding` asks on every request.
    The least recently used go first beyond `capacity`."""

    def __init__(self, capacity: int = 1024) -> None:
        self._capacity = capacity
        self._held: OrderedDict[str, tuple[float, Principal]] = OrderedDict()

    def get(self, token: str) -> Principal | None:
        held = self._held.get(token)
        if held is None:
            return None
        until, principal = held
        if time.time() >= until:
            del self._held[token]
            return None
        self._held.move_to_end(token)
        return principal

    def keep(self, token: str, principal: Principal, *, until: float) -> None:
        self._held[token] = (min(until, principal.expires_at.timestamp()), principal)
        self._held.move_to_end(token)
        while len(self._held) > self._capacity:
            self._held.popitem(last=False)


def verify_token(token: str, keys: dict[str, str], *, issuer: str, max_hours: float = MAX_TOKEN_HOURS) -> Principal:
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        secret = keys.get(kid) if isinstance(kid, str) else None
        if secret is None:
            raise InvalidToken("token signed with an unknown key")
        claims = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            issuer=issuer,
            options={"require": ["exp", "iat", "sub", "iss", "jti"]},
        )
        if not 0 < claims["exp"] - claims["iat"] <= max_hours * 3600:
            raise InvalidToken(f"token lifetime over {max_hours:g} hours")
        return Principal(
            actor=claims["sub"],
            role=claims.get("role"),
            site=claims.get("site"),
            token_id=claims["jti"],
            issuer=issuer,
            authenticated_at=signed_in_at(claims),
            name=claims.get("name"),
            expires_at=datetime.fromtimestamp(claims["exp"], UTC),
        )
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("token expired") from exc
    except (jwt.InvalidTokenError, ValidationError, KeyError, TypeError) as exc:
        raise InvalidToken("token invalid") from exc
