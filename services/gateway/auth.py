"""Who may do what: signed expiring tokens naming a role (and a site for site roles), and the rights table."""

import uuid
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Self

import jwt
from pydantic import BaseModel, ConfigDict, ValidationError, model_validator

from shared.protocol import SiteCode


class Role(StrEnum):
    SITE_COORDINATOR = "site_coordinator"
    INVESTIGATOR = "investigator"
    MONITOR = "monitor"
    DATA_MANAGER = "data_manager"
    SAFETY_OFFICER = "safety_officer"
    STATISTICIAN = "statistician"


class Right(StrEnum):
    POST_SITE_FORMS = "post_site_forms"
    READ_SUBJECTS = "read_subjects"
    READ_REPORTS = "read_reports"
    EXPORT_DATA = "export_data"
    ACKNOWLEDGE_ALERTS = "acknowledge_alerts"
    READ_ADVERSE_EVENTS = "read_adverse_events"
    READ_ALLOCATION_LIST = "read_allocation_list"
    INVALIDATE_RANDOMIZATION = "invalidate_randomization"


# The whole access policy, in one table. Site roles are further limited to their own site.
RIGHTS: dict[Role, frozenset[Right]] = {
    Role.SITE_COORDINATOR: frozenset({Right.POST_SITE_FORMS, Right.READ_SUBJECTS}),
    Role.INVESTIGATOR: frozenset({Right.POST_SITE_FORMS, Right.READ_SUBJECTS}),
    Role.MONITOR: frozenset({Right.READ_SUBJECTS, Right.READ_REPORTS}),
    Role.DATA_MANAGER: frozenset({Right.READ_REPORTS, Right.EXPORT_DATA, Right.INVALIDATE_RANDOMIZATION}),
    Role.SAFETY_OFFICER: frozenset({Right.ACKNOWLEDGE_ALERTS, Right.READ_ADVERSE_EVENTS}),
    Role.STATISTICIAN: frozenset({Right.READ_REPORTS, Right.EXPORT_DATA, Right.READ_ALLOCATION_LIST}),
}
SITE_ROLES = frozenset({Role.SITE_COORDINATOR, Role.INVESTIGATOR})
ALGORITHM = "HS256"


class Principal(BaseModel):
    model_config = ConfigDict(frozen=True)
    actor: str
    role: Role
    site: SiteCode | None = None
    token_id: str

    @model_validator(mode="after")
    def _site_roles_name_one_site(self) -> Self:
        if (self.role in SITE_ROLES) != (self.site is not None):
            raise ValueError("site roles carry exactly one site, other roles none")
        return self

    def may(self, right: Right) -> bool:
        return right in RIGHTS[self.role]

    def may_see_site(self, site: str) -> bool:
        return self.role not in SITE_ROLES or self.site == site


class InvalidToken(Exception):
    """Missing, expired, forged or malformed: 401. The message names no personal data."""


class TokenRequestInvalid(ValueError):
    pass


def issue_token(
    keys: dict[str, str], *, issuer: str, role: Role, site: str | None, hours: float, actor: str | None = None
) -> str:
    if role in SITE_ROLES and not site:
        raise TokenRequestInvalid(f"role {role} needs --site")
    if role not in SITE_ROLES and site:
        raise TokenRequestInvalid(f"role {role} is not tied to a site; omit --site")
    if not 0 < hours <= 24 * 31:
        raise TokenRequestInvalid("hours must be between 0 and 744")
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
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM, headers={"kid": kid})


def verify_token(token: str, keys: dict[str, str], *, issuer: str) -> Principal:
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
        return Principal(actor=claims["sub"], role=claims.get("role"), site=claims.get("site"), token_id=claims["jti"])
    except jwt.ExpiredSignatureError as exc:
        raise InvalidToken("token expired") from exc
    except (jwt.InvalidTokenError, ValidationError, KeyError) as exc:
        raise InvalidToken("token invalid") from exc
