"""Who is calling and what they may do, as FastAPI dependencies: checked before the body is even read.

All `async def`: they never block, and FastAPI would run a plain `def` in a worker thread per request.
"""

from collections.abc import Callable, Coroutine
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from services.gateway.auth import InvalidToken, Principal, ProviderUnavailable, Right, RoleNotGranted
from services.gateway.errors import forbidden, rejection_problem, service_unavailable, unauthorized
from services.gateway.middleware import timed
from services.gateway.oidc import TrustedIssuers
from services.gateway.params import SitePath
from shared.contracts.access import DOES
from shared.contracts.commands import Rejection
from shared.contracts.protocol import ProtocolDefinition
from shared.contracts.rules import UnknownSite

bearer = HTTPBearer(
    auto_error=False,
    description="an access token from the trial's identity provider (in development: `trial token`)",
)


async def principal(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    known: Principal | None = getattr(request.state, "caller", None)
    if known is not None:
        return known  # verified by `rights_first` before the body was read
    if credentials is None:
        raise unauthorized("missing bearer token")
    issuers: TrustedIssuers = request.app.state.issuers
    with timed(request, "auth"):
        try:
            caller = await issuers.verify(credentials.credentials)
        except InvalidToken as exc:
            raise unauthorized(str(exc)) from exc
        except RoleNotGranted as exc:
            raise forbidden(str(exc)) from exc
        except ProviderUnavailable as exc:
            raise service_unavailable(str(exc)) from exc
        refused = await request.app.state.standing.refusal(caller)
        if refused is not None:
            raise unauthorized(refused)
    request.state.caller = caller  # who asked, for a refusal's audit (`errors.on_problem`)
    return caller


Caller = Annotated[Principal, Depends(principal)]


def require(caller: Principal, right: Right) -> None:
    """The one place rights are checked: the role's row in RIGHTS."""
    if not caller.may(right):
        raise forbidden(f"a {caller.role.replace('_', ' ')} may not {DOES[right]}")


def require_site(caller: Principal, site: str, protocol: ProtocolDefinition) -> None:
    """A site the protocol lists (else 404), and the token's own site for site roles (a token naming a site
    the protocol does not list reaches none)."""
    if protocol.site(site) is None:
        raise rejection_problem(Rejection.of(UnknownSite(f"no site {site} in the protocol", field="site")))
    if not caller.may_see_site(site):
        raise forbidden(f"this token is for site {caller.site}, not {site}")


def rights_first(right: Right, *, per_site: bool) -> type[APIRoute]:
    """A route class that checks the caller's right (and site) before FastAPI reads the body: FastAPI
    decodes a JSON body before it resolves any dependency, so `allowed` alone would answer a malformed
    body with 422 to a caller who should get 401 or 403."""

    class RightsFirstRoute(APIRoute):
        def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
            handle = super().get_route_handler()

            async def checked(request: Request) -> Response:
                caller = await principal(request, await bearer(request))
                require(caller, right)
                if per_site:
                    require_site(caller, request.path_params["site"], request.app.state.settings.protocol())
                request.state.caller = caller
                return await handle(request)

            return checked

    return RightsFirstRoute


def allowed(right: Right, *, per_site: bool = False) -> Any:
    """A dependency checking the caller's right (and site) before anything else of the request is read."""
    if per_site:

        async def check_site(request: Request, caller: Caller, site: SitePath) -> Principal:
            require(caller, right)
            require_site(caller, site, request.app.state.settings.protocol())
            return caller

        return Depends(check_site)

    async def check(caller: Caller) -> Principal:
        require(caller, right)
        return caller

    return Depends(check)
