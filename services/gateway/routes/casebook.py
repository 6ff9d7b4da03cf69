"""A subject's casebook for data management: each form's current record (its ETag), queries and their steps,
source data verification, signatures and the casebook's lock."""

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from pydantic import BaseModel

from services.gateway.access import allowed
from services.gateway.auth import Principal, Right
from services.gateway.command_bus import (
    FormVerificationRecorded,
    QueryRecorded,
    RecordedResponse,
    SignatureRecorded,
    submit_command,
)
from services.gateway.consistency import read_after
from services.gateway.errors import ProblemError, problem_responses
from services.gateway.params import FormPath, IdempotencyKey, QueryPath, SitePath, SubjectPath, etag
from services.gateway.routes.forms import FormRoute, add_form_route, add_subject_post
from shared.contracts.commands import (
    ANSWER_QUERY,
    CLOSE_QUERY,
    LOCK_CASEBOOK,
    OPEN_QUERY,
    REOPEN_QUERY,
    SIGN,
    UNLOCK_CASEBOOK,
    VERIFY_FORM,
    right_of,
)
from shared.contracts.forms import (
    CasebookLock,
    CasebookUnlock,
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
from shared.readmodels.datamanagement import FormView, ToSign, find_form, to_sign

TAG = "data management"

# The data-management requests about a subject posted as they are (no case report form: the forms are the data
# dictionary's).
CASEBOOK_REQUESTS = (
    FormRoute(
        "open_query", "/queries", OPEN_QUERY, QueryOpening, QueryRecorded,
        "Open a query on a form, optionally on one field (monitors, data managers)", TAG,
    ),
    FormRoute(
        "lock_casebook", "/casebook/lock", LOCK_CASEBOOK, CasebookLock, RecordedResponse,
        "Lock the subject's casebook (data managers; every query closed): forms are refused with 423, safety "
        "information is taken and flagged", TAG,
    ),
    FormRoute(
        "unlock_casebook", "/casebook/unlock", UNLOCK_CASEBOOK, CasebookUnlock, RecordedResponse,
        "Unlock the subject's casebook with a reason (data managers)", TAG,
    ),
)  # fmt: skip


def _query_step(command: str, body: type[QueryMessage] | type[QueryClosing]) -> Callable[..., Awaitable[Response]]:
    """A step of one query: the query's id from the path, the text from the body."""

    async def step(
        request: Request,
        site: SitePath,
        subject: SubjectPath,
        query: QueryPath,
        form: BaseModel,
        caller: Annotated[Principal, allowed(right_of(command), per_site=True)],
        key: IdempotencyKey,
    ) -> Response:
        return await submit_command(
            request,
            principal=caller,
            idempotency_key=key,
            site=site,
            subject=subject,
            nats_subject=command,
            form=QueryStep(query_id=query, text=getattr(form, "text", None)),
            answer=QueryRecorded,
        )

    step.__annotations__["form"] = body
    return step


async def verify_form(
    request: Request,
    site: SitePath,
    subject: SubjectPath,
    form: FormPath,
    verification: FormVerification,
    caller: Annotated[Principal, allowed(right_of(VERIFY_FORM), per_site=True)],
    key: IdempotencyKey,
) -> Response:
    return await submit_command(
        request,
        principal=caller,
        idempotency_key=key,
        site=site,
        subject=subject,
        nats_subject=VERIFY_FORM,
        form=FormVerificationRecord(form=form, version=verification.version, items=verification.items),
        answer=FormVerificationRecorded,
    )


async def sign(
    request: Request,
    site: SitePath,
    subject: SubjectPath,
    kind: SignatureKind,
    form: SignatureForm,
    caller: Annotated[Principal, allowed(right_of(SIGN), per_site=True)],
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


def casebook_router() -> APIRouter:
    router = APIRouter()

    @router.get(
        "/v1/sites/{site}/subjects/{subject}/forms/{form}",
        tags=[TAG],
        operation_id="get_form",
        dependencies=[Depends(read_after)],
        summary="A form's current record, its verification and queries; a correction sends its ETag as If-Match",
        responses=problem_responses(401, 403, 404, 422, 503),
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
        tags=[TAG],
        operation_id="to_sign",
        summary="The investigator's list: eligible subjects and finished casebooks without a signature that stands",
        responses=problem_responses(401, 403, 422),
    )
    async def signatures_to_sign(
        request: Request,
        site: SitePath,
        caller: Annotated[Principal, allowed(right_of(SIGN), per_site=True)],
    ) -> list[ToSign]:
        async with request.app.state.pool.acquire() as conn:
            return await to_sign(conn, site)

    for route in CASEBOOK_REQUESTS:
        add_form_route(router, route)
    for path, endpoint, name, summary, answer, command in (
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
        ("/signatures/{kind}", sign, "sign",
         "Sign the subject's eligibility or, at the end, its casebook (investigators, signed in again within "
         "the protocol's window, 5 minutes: else 401 insufficient_user_authentication with max_age)",
         SignatureRecorded, SIGN),
    ):  # fmt: skip
        add_subject_post(router, path, endpoint, name, TAG, summary, answer, right_of(command))
    return router
