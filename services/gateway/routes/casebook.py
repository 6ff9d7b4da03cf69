"""A subject's casebook for data management: each form's current record (its ETag), queries and their steps,
and source data verification."""

import contextlib
import json
from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel

from services.gateway.access import allowed, rights_first
from services.gateway.auth import Principal, Right
from services.gateway.command_bus import (
    FormVerificationRecorded,
    QueryRecorded,
    RecordedResponse,
    SignatureRecorded,
    submit_command,
)
from services.gateway.errors import ProblemError, problem_responses
from services.gateway.params import FormPath, IdempotencyKey, QueryPath, SitePath, SubjectPath, etag
from services.gateway.routes.forms import add_subject_post
from shared.contracts.commands import (
    ANSWER_QUERY,
    CHANGE_ACCESS,
    CLOSE_QUERY,
    COMMAND_RIGHTS,
    LOCK_CASEBOOK,
    LOCK_DATABASE,
    OPEN_QUERY,
    REOPEN_QUERY,
    SIGN,
    UNLOCK_CASEBOOK,
    VERIFY_FORM,
)
from shared.contracts.forms import (
    AccessChange,
    AccessChangeRecord,
    CasebookLock,
    CasebookUnlock,
    DatabaseLock,
    FormVerification,
    FormVerificationRecord,
    QueryClosing,
    QueryMessage,
    QueryOpening,
    QueryStep,
    SignatureForm,
    SignatureKind,
    Signing,
)
from shared.readmodels.catalogue import ReadModel
from shared.readmodels.datamanagement import FormView, ToSign, find_form, to_sign
from shared.runtime.projections import wait_for_checkpoint


def _query_step(command: str, body: type[QueryMessage] | type[QueryClosing]) -> Callable[..., Awaitable[Response]]:
    """A step of one query: the query's id from the path, the text from the body."""

    async def step(
        request: Request,
        site: SitePath,
        subject: SubjectPath,
        query: QueryPath,
        form: BaseModel,
        caller: Annotated[Principal, allowed(COMMAND_RIGHTS[command], per_site=True)],
        key: IdempotencyKey,
    ) -> Response:
        text = getattr(form, "text", None)
        return await submit_command(
            request,
            principal=caller,
            idempotency_key=key,
            site=site,
            subject=subject,
            nats_subject=command,
            form=QueryStep(query_id=query, text=text),
            answer=QueryRecorded,
        )

    step.__annotations__["form"] = body
    return step


def _access_change(revoked: bool) -> Callable[..., Awaitable[Response]]:
    async def change_access(
        request: Request,
        form: AccessChange,
        caller: Annotated[Principal, allowed(COMMAND_RIGHTS[CHANGE_ACCESS])],
        key: IdempotencyKey,
    ) -> Response:
        response = await submit_command(
            request,
            principal=caller,
            idempotency_key=key,
            nats_subject=CHANGE_ACCESS,
            form=AccessChangeRecord(**form.model_dump(), revoked=revoked),
        )
        if response.status_code == 201:
            # Every gateway replica reads the read model on each request: answer once it holds the change.
            recorded = json.loads(bytes(response.body))["stream_sequence"]
            with contextlib.suppress(TimeoutError):
                await wait_for_checkpoint(request.app.state.pool, ReadModel.DATA_MANAGEMENT, recorded, timeout=5)
        return response

    return change_access


def casebook_router() -> APIRouter:
    router = APIRouter()

    @router.get(
        "/v1/sites/{site}/subjects/{subject}/forms/{form}",
        tags=["data management"],
        operation_id="get_form",
        summary="A form's current record, its verification and queries; a correction sends its ETag as If-Match",
        responses=problem_responses(401, 403, 404, 422),
    )
    async def get_form(
        request: Request,
        response: Response,
        site: SitePath,
        subject: SubjectPath,
        form: FormPath,
        caller: Annotated[Principal, allowed(Right.READ_SUBJECTS, per_site=True)],
    ) -> FormView:
        async with request.app.state.pool.acquire() as conn:
            found = await find_form(conn, site, subject, form)
        if found is None:
            raise ProblemError(404, "form-not-found", "Form not found", f"no {form} recorded for {subject} at {site}")
        response.headers["ETag"] = etag(found.version)
        return found

    @router.get(
        "/v1/sites/{site}/signatures/to-sign",
        tags=["data management"],
        operation_id="to_sign",
        summary="The investigator's list: eligible subjects and finished casebooks without a signature that stands",
        responses=problem_responses(401, 403, 422),
    )
    async def signatures_to_sign(
        request: Request,
        site: SitePath,
        caller: Annotated[Principal, allowed(COMMAND_RIGHTS[SIGN], per_site=True)],
    ) -> list[ToSign]:
        async with request.app.state.pool.acquire() as conn:
            return await to_sign(conn, site)

    async def open_query(
        request: Request,
        site: SitePath,
        subject: SubjectPath,
        form: QueryOpening,
        caller: Annotated[Principal, allowed(COMMAND_RIGHTS[OPEN_QUERY], per_site=True)],
        key: IdempotencyKey,
    ) -> Response:
        return await submit_command(
            request,
            principal=caller,
            idempotency_key=key,
            site=site,
            subject=subject,
            nats_subject=OPEN_QUERY,
            form=form,
            answer=QueryRecorded,
        )

    async def verify_form(
        request: Request,
        site: SitePath,
        subject: SubjectPath,
        form: FormPath,
        verification: FormVerification,
        caller: Annotated[Principal, allowed(COMMAND_RIGHTS[VERIFY_FORM], per_site=True)],
        key: IdempotencyKey,
    ) -> Response:
        return await submit_command(
            request,
            principal=caller,
            idempotency_key=key,
            site=site,
            subject=subject,
            nats_subject=VERIFY_FORM,
            form=FormVerificationRecord(form=form, version=verification.version),
            answer=FormVerificationRecorded,
        )

    async def lock_casebook(
        request: Request,
        site: SitePath,
        subject: SubjectPath,
        form: CasebookLock,
        caller: Annotated[Principal, allowed(COMMAND_RIGHTS[LOCK_CASEBOOK], per_site=True)],
        key: IdempotencyKey,
    ) -> Response:
        return await submit_command(
            request,
            principal=caller,
            idempotency_key=key,
            site=site,
            subject=subject,
            nats_subject=LOCK_CASEBOOK,
            form=form,
        )

    async def unlock_casebook(
        request: Request,
        site: SitePath,
        subject: SubjectPath,
        form: CasebookUnlock,
        caller: Annotated[Principal, allowed(COMMAND_RIGHTS[UNLOCK_CASEBOOK], per_site=True)],
        key: IdempotencyKey,
    ) -> Response:
        return await submit_command(
            request,
            principal=caller,
            idempotency_key=key,
            site=site,
            subject=subject,
            nats_subject=UNLOCK_CASEBOOK,
            form=form,
        )

    async def lock_database(
        request: Request,
        form: DatabaseLock,
        caller: Annotated[Principal, allowed(COMMAND_RIGHTS[LOCK_DATABASE])],
        key: IdempotencyKey,
    ) -> Response:
        return await submit_command(
            request, principal=caller, idempotency_key=key, nats_subject=LOCK_DATABASE, form=form
        )

    router.add_api_route(
        "/v1/trial/database-lock",
        lock_database,
        methods=["POST"],
        status_code=201,
        tags=["data management"],
        operation_id="lock_database",
        summary="Lock the database for analysis (data managers), once every casebook is locked; exports are "
        "made as of the lock from then on",
        response_model=RecordedResponse,
        responses=problem_responses(401, 403, 409, 413, 422, 503),
        route_class_override=rights_first(COMMAND_RIGHTS[LOCK_DATABASE], per_site=False),
    )

    async def sign(
        request: Request,
        site: SitePath,
        subject: SubjectPath,
        kind: SignatureKind,
        form: SignatureForm,
        caller: Annotated[Principal, allowed(COMMAND_RIGHTS[SIGN], per_site=True)],
        key: IdempotencyKey,
    ) -> Response:
        return await submit_command(
            request,
            principal=caller,
            idempotency_key=key,
            site=site,
            subject=subject,
            nats_subject=SIGN,
            form=Signing(kind=kind, meaning=form.meaning),
            answer=SignatureRecorded,
        )

    for revoked, path, summary in (
        (
            True,
            "/v1/access/revocations",
            "Revoke a user's access (data managers): their tokens are refused from the answer on",
        ),
        (False, "/v1/access/restorations", "Restore a revoked user's access (data managers)"),
    ):
        router.add_api_route(
            path,
            _access_change(revoked),
            methods=["POST"],
            status_code=201,
            tags=["access"],
            operation_id="revoke_access" if revoked else "restore_access",
            summary=summary,
            response_model=RecordedResponse,
            responses=problem_responses(401, 403, 409, 413, 422, 503),
            route_class_override=rights_first(COMMAND_RIGHTS[CHANGE_ACCESS], per_site=False),
        )

    for path, endpoint, name, summary, answer, command in (
        ("/queries", open_query, "open_query",
         "Open a query on a form, optionally on one field (monitors, data managers)", QueryRecorded, OPEN_QUERY),
        ("/queries/{query}/answer", _query_step(ANSWER_QUERY, QueryMessage), "answer_query",
         "Answer a query (the subject's site staff); a correction of the form goes with its own reason",
         QueryRecorded, ANSWER_QUERY),
        ("/queries/{query}/close", _query_step(CLOSE_QUERY, QueryClosing), "close_query",
         "Close a query (its opener; a data manager for an edit check's)", QueryRecorded, CLOSE_QUERY),
        ("/queries/{query}/reopen", _query_step(REOPEN_QUERY, QueryMessage), "reopen_query",
         "Re-open an answered or closed query with a comment (its opener)", QueryRecorded, REOPEN_QUERY),
        ("/forms/{form}/verification", verify_form, "verify_form",
         "Mark a form's current record verified against source (monitors); a later correction resets it",
         FormVerificationRecorded, VERIFY_FORM),
        ("/casebook/lock", lock_casebook, "lock_casebook",
         "Lock the subject's casebook (data managers; every query closed): forms are refused with 423, "
         "safety information is taken and flagged", RecordedResponse, LOCK_CASEBOOK),
        ("/signatures/{kind}", sign, "sign",
         "Sign the subject's eligibility or, at the end, its casebook (investigators, signed in again within "
         "the last 5 minutes: else 401 insufficient_user_authentication)", SignatureRecorded, SIGN),
        ("/casebook/unlock", unlock_casebook, "unlock_casebook",
         "Unlock the subject's casebook with a reason (data managers)", RecordedResponse, UNLOCK_CASEBOOK),
    ):  # fmt: skip
        add_subject_post(router, path, endpoint, name, "data management", summary, answer, COMMAND_RIGHTS[command])
    return router
