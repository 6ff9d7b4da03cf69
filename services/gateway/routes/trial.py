"""Trial-level data management: the database lock for analysis, and users' access."""

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel

from services.gateway.access import allowed, rights_first
from services.gateway.auth import Principal
from services.gateway.command_bus import RecordedResponse, submit_command
from services.gateway.errors import problem_responses
from services.gateway.params import IdempotencyKey
from shared.contracts.amendments import AmendmentDeployment
from shared.contracts.commands import CHANGE_ACCESS, DEPLOY_AMENDMENT, LOCK_DATABASE, right_of
from shared.contracts.forms import AccessChange, AccessChangeRecord, DatabaseLock


def _trial_command(
    command: str,
    body: type[BaseModel],
    to_form: Callable[[BaseModel], BaseModel] = lambda form: form,
) -> Callable[..., Awaitable[Response]]:
    """A command about the whole trial, from a body made into the command's form."""

    async def post(
        request: Request,
        form: BaseModel,
        caller: Annotated[Principal, allowed(right_of(command))],
        key: IdempotencyKey,
    ) -> Response:
        return await submit_command(
            request, principal=caller, idempotency_key=key, nats_subject=command, form=to_form(form)
        )

    post.__annotations__["form"] = body
    return post


def _access_change(*, revoked: bool) -> Callable[..., Awaitable[Response]]:
    return _trial_command(
        CHANGE_ACCESS,
        AccessChange,
        # Every replica reads the change from the record on the next request: in force from this answer on.
        lambda form: AccessChangeRecord(**form.model_dump(), revoked=revoked),
    )


# An amendment carries the whole new version of the protocol, its data dictionary included.
AMENDMENTS = r"^/v1/protocol/amendments$"
AMENDMENT_BYTES = 1024 * 1024


def trial_router() -> APIRouter:
    router = APIRouter()
    for path, endpoint, name, summary, command, tag in (
        ("/v1/trial/database-lock", _trial_command(LOCK_DATABASE, DatabaseLock), "lock_database",
         "Lock the database for analysis (data managers), once every casebook is locked; exports are made as of "
         "the lock from then on", LOCK_DATABASE, "data management"),
        ("/v1/protocol/amendments", _trial_command(DEPLOY_AMENDMENT, AmendmentDeployment), "deploy_amendment",
         "Deploy a protocol amendment (data managers): the whole new version, in force at each site from its own "
         "later day; every earlier version stays in force for what it governed", DEPLOY_AMENDMENT, "protocol"),
        ("/v1/access/revocations", _access_change(revoked=True), "revoke_access",
         "Revoke a user's access (data managers): their tokens are refused from the answer on", CHANGE_ACCESS,
         "access"),
        ("/v1/access/restorations", _access_change(revoked=False), "restore_access",
         "Restore a revoked user's access (data managers)", CHANGE_ACCESS, "access"),
    ):  # fmt: skip
        router.add_api_route(
            path,
            endpoint,
            methods=["POST"],
            status_code=201,
            tags=[tag],
            operation_id=name,
            summary=summary,
            response_model=RecordedResponse,
            responses=problem_responses(401, 403, 409, 413, 422, 503),
            route_class_override=rights_first(right_of(command), per_site=False),
        )
    return router
