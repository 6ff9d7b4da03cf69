"""Who is calling and what they may do, as FastAPI dependencies: checked before the body is even read.

All `async def`: they never block, and FastAPI would run a plain `def` in a worker thread per request.
"""

from typing import Annotated, Any

from fastapi import Depends, Path, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.gateway.auth import InvalidToken, Principal, Right, verify_token
from services.gateway.errors import forbidden, unauthorized
from services.gateway.settings import GatewaySettings
from shared.protocol import SITE_CODE_PATTERN

SitePath = Annotated[str, Path(pattern=SITE_CODE_PATTERN, examples=["NFH"], description="site code")]

bearer = HTTPBearer(auto_error=False, description="token from `python -m services.gateway token`")


async def principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    if credentials is None:
        raise unauthorized("missing bearer token")
    settings: GatewaySettings = request.app.state.settings
    try:
        return verify_token(credentials.credentials, settings.signing_keys(), issuer=settings.token_issuer)
    except InvalidToken as exc:
        raise unauthorized(str(exc)) from exc


Caller = Annotated[Principal, Depends(principal)]


def require(caller: Principal, right: Right, site: str | None = None) -> None:
    """The one place rights are checked: the role's row in RIGHTS, and its site for site roles."""
    if not caller.may(right):
        raise forbidden(f"role {caller.role} may not {right.replace('_', ' ')}")
    if site is not None and not caller.may_see_site(site):
        raise forbidden(f"this token is for site {caller.site}, not {site}")


def allowed(right: Right, *, per_site: bool = False) -> Any:
    """A dependency checking the caller's right (and site) before anything else of the request is read."""
    if per_site:

        async def check_site(caller: Caller, site: SitePath) -> Principal:
            require(caller, right, site)
            return caller

        return Depends(check_site)

    async def check(caller: Caller) -> Principal:
        require(caller, right)
        return caller

    return Depends(check)
