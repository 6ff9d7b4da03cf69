"""`/v1/sign-out`: a token's holder ends it before it expires (a site app's or the web app's sign-out)."""

from fastapi import APIRouter, Request
from fastapi.responses import Response

from services.gateway.access import Caller
from services.gateway.errors import problem_responses


def session_router() -> APIRouter:
    router = APIRouter()

    @router.post(
        "/v1/sign-out",
        status_code=204,
        tags=["session"],
        operation_id="sign_out",
        summary="End the token this request carries: every later request with it is refused (401), on every replica",
        responses=problem_responses(401, 503),
    )
    async def sign_out(request: Request, caller: Caller) -> Response:
        await request.app.state.standing.end(caller)
        return Response(status_code=204)

    return router
