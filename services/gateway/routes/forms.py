"""The forms site apps post, each becoming one command: the table of them, and the routes."""

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel

from services.gateway.access import allowed, rights_first
from services.gateway.auth import Principal, Right
from services.gateway.command_bus import (
    AdverseEventRecorded,
    LogEntryRecorded,
    RandomizationRecorded,
    RecordedResponse,
    ScreeningRecorded,
    submit_command,
)
from services.gateway.errors import problem_responses
from services.gateway.params import IdempotencyKey, IfMatch, SitePath, SubjectPath, VisitPath, with_if_match
from shared.contracts import forms
from shared.contracts.collected import CollectedForm, answers_model, answers_of
from shared.contracts.commands import (
    INVALIDATE_RANDOMIZATION,
    RANDOMIZE_SUBJECT,
    RECORD_FORM,
    RECORD_VISIT,
    REPORT_ADVERSE_EVENT,
    SCREEN_SUBJECT,
    UPDATE_ADVERSE_EVENT,
    command_subject,
    right_of,
)
from shared.contracts.dictionary import DataDictionary
from shared.contracts.forms import (
    Correctable,
    RandomizationInvalidationForm,
    RandomizationRequest,
    VisitAssessments,
    VisitRecord,
)
from shared.contracts.protocol import ProtocolDefinition


@dataclass(frozen=True)
class FormRoute:
    """One form a site posts about a subject: where, which command it becomes, what it answers."""

    name: str
    path: str  # below /v1/sites/{site}/subjects/{subject}
    command: str
    form: type[BaseModel]
    answer: type[RecordedResponse]
    summary: str
    tag: str

    @property
    def right(self) -> Right:
        return right_of(self.command)


# The requests about a subject that are no case report form (the forms are the data dictionary's).
SUBJECT_REQUESTS = (
    FormRoute(
        "randomize_subject", "/randomization", RANDOMIZE_SUBJECT, RandomizationRequest, RandomizationRecorded,
        "Randomize a consented, eligible subject: returns the arm and the randomization number", "randomization",
    ),
    FormRoute(
        "invalidate_randomization", "/randomization/invalidation", INVALIDATE_RANDOMIZATION,
        RandomizationInvalidationForm, RecordedResponse,
        "Mark a randomization made in error (data managers); the slot is never reused", "randomization",
    ),
)  # fmt: skip

# What a command answers beyond the recorded fact's ids.
ANSWERS: dict[str, type[RecordedResponse]] = {
    SCREEN_SUBJECT: ScreeningRecorded,
    REPORT_ADVERSE_EVENT: AdverseEventRecorded,
    UPDATE_ADVERSE_EVENT: AdverseEventRecorded,
}


def posted_forms(dictionary: DataDictionary) -> list[FormRoute]:
    """Each typed form where the data dictionary says it is posted, as the command it names."""
    routes = []
    for form in dictionary.forms.values():
        if form.posted is None or form.model is None:
            continue
        command = command_subject(form.posted.service, form.posted.action)
        routes.append(
            FormRoute(
                form.posted.operation,
                form.posted.path,
                command,
                getattr(forms, form.model),
                ANSWERS.get(command, RecordedResponse),
                form.posted.summary,
                form.posted.service,
            )
        )
    return routes


def add_form_route(router: APIRouter, route: FormRoute) -> None:
    async def post_form(
        request: Request,
        site: SitePath,
        subject: SubjectPath,
        form: BaseModel,
        caller: Annotated[Principal, allowed(route.right, per_site=True)],
        key: IdempotencyKey,
        if_match: IfMatch = None,
    ) -> Response:
        return await submit_command(
            request,
            principal=caller,
            idempotency_key=key,
            site=site,
            subject=subject,
            nats_subject=route.command,
            form=with_if_match(form, if_match) if isinstance(form, Correctable) else form,
            answer=route.answer,
        )

    add_subject_post(
        router,
        route.path,
        taking(post_form, route.form),
        route.name,
        route.tag,
        route.summary,
        route.answer,
        route.right,
    )


def taking(endpoint: Callable[..., Awaitable[Response]], form: type[BaseModel]) -> Callable[..., Awaitable[Response]]:
    """The endpoint with this route's form as its body: FastAPI reads the body's model from the signature. A form
    that is never corrected takes no If-Match: the header is neither documented nor read."""
    endpoint.__annotations__["form"] = form
    if not issubclass(form, Correctable):
        signature = inspect.signature(endpoint)
        endpoint.__signature__ = signature.replace(  # type: ignore[attr-defined]
            parameters=[p for p in signature.parameters.values() if p.name != "if_match"]
        )
    return endpoint


def add_visit_form_route(
    router: APIRouter,
    *,
    path: str,
    name: str,
    summary: str,
    form: type[BaseModel],
    visit: object,
    command: str,
    recorded: Callable[[BaseModel, str], BaseModel],
) -> None:
    """A form posted at one visit, whose code is in the path (`visit`: the path parameter's type, the visits it
    may name): the command carries what `recorded` makes of the posted form and the visit."""

    async def post_at_visit(
        request: Request,
        site: SitePath,
        subject: SubjectPath,
        visit: str,
        form: BaseModel,
        caller: Annotated[Principal, allowed(right_of(command), per_site=True)],
        key: IdempotencyKey,
        if_match: IfMatch = None,
    ) -> Response:
        posted = with_if_match(form, if_match) if isinstance(form, Correctable) else form
        return await submit_command(
            request,
            principal=caller,
            idempotency_key=key,
            site=site,
            subject=subject,
            nats_subject=command,
            form=recorded(posted, visit),
        )

    post_at_visit.__annotations__["visit"] = visit
    endpoint = taking(post_at_visit, form)
    add_subject_post(router, path, endpoint, name, "visits", summary, RecordedResponse, right_of(command))


def collected_form(
    name: str, posted: BaseModel, *, visit: str | None = None, entry: UUID | None = None
) -> CollectedForm:
    """What the visits service is sent of a collected form as posted: its answers, at its visit or as a log's entry,
    with a correction's version and reason."""
    return CollectedForm(
        form=name,
        visit=visit,
        entry=entry,
        answers=answers_of(posted),
        supersedes=getattr(posted, "supersedes", None),
        reason=getattr(posted, "reason", None),
    )


def add_collected_form_route(router: APIRouter, dictionary: DataDictionary, name: str) -> None:
    """A form declared only in the data dictionary, posted at one of its visits: its model made from its entry."""
    declared = dictionary.forms[name]
    visits = "|".join(declared.visits)

    add_visit_form_route(
        router,
        path=f"/visits/{{visit}}/forms/{name}",
        name=f"record_{name.replace('-', '_')}",
        summary=f"{declared.title.en}: entered at {', '.join(declared.visits)}",
        form=answers_model(dictionary, name),
        visit=Annotated[
            str, Path(pattern=f"^({visits})$", examples=[declared.visits[0]], description=f"the visit: {visits}")
        ],
        command=RECORD_FORM,
        recorded=lambda posted, visit: collected_form(name, posted, visit=visit),
    )


def add_log_routes(router: APIRouter, dictionary: DataDictionary, name: str) -> None:
    """A log declared only in the data dictionary (concomitant medications, medical history): a new entry is
    posted to the log and answered with its id; a correction is posted to the entry, with the entry's ETag."""
    declared, body = dictionary.forms[name], answers_model(dictionary, name)
    right = right_of(RECORD_FORM)
    operation = name.replace("-", "_")

    async def new_entry(
        request: Request,
        site: SitePath,
        subject: SubjectPath,
        form: BaseModel,
        caller: Annotated[Principal, allowed(right, per_site=True)],
        key: IdempotencyKey,
    ) -> Response:
        return await submit_command(
            request,
            principal=caller,
            idempotency_key=key,
            site=site,
            subject=subject,
            nats_subject=RECORD_FORM,
            form=collected_form(name, form),
            answer=LogEntryRecorded,
        )

    async def correct_entry(
        request: Request,
        site: SitePath,
        subject: SubjectPath,
        entry: Annotated[UUID, Path(description="the entry's id, as its record answered")],
        form: Correctable,
        caller: Annotated[Principal, allowed(right, per_site=True)],
        key: IdempotencyKey,
        if_match: IfMatch = None,
    ) -> Response:
        return await submit_command(
            request,
            principal=caller,
            idempotency_key=key,
            site=site,
            subject=subject,
            nats_subject=RECORD_FORM,
            form=collected_form(name, with_if_match(form, if_match), entry=entry),
            answer=LogEntryRecorded,
        )

    title = declared.title.en
    add_subject_post(
        router,
        f"/logs/{name}",
        taking(new_entry, body),
        f"record_{operation}",
        "logs",
        f"{title}: a new entry, at any time from consent; answers the entry's id",
        LogEntryRecorded,
        right,
    )
    add_subject_post(
        router, f"/logs/{name}/{{entry}}", taking(correct_entry, body), f"correct_{operation}", "logs",
        f"{title}: correct an entry (If-Match: the entry's ETag, and a reason)", LogEntryRecorded, right,
    )  # fmt: skip


def add_subject_post(
    router: APIRouter,
    path: str,
    endpoint: Callable[..., Awaitable[Response]],
    name: str,
    tag: str,
    summary: str,
    answer: type[RecordedResponse],
    right: Right,
) -> None:
    """A form posted about one subject: rights checked before the body is read, 201 with `answer`."""
    router.add_api_route(
        f"/v1/sites/{{site}}/subjects/{{subject}}{path}",
        endpoint,
        methods=["POST"],
        status_code=201,
        name=name,
        operation_id=name,
        tags=[tag],
        summary=summary,
        response_model=answer,
        responses=problem_responses(401, 403, 404, 409, 412, 413, 422, 423, 428, 503),
        route_class_override=rights_first(right, per_site=True),
    )


def forms_router(protocol: ProtocolDefinition) -> APIRouter:
    """Every form a site posts: the typed forms where the data dictionary says, the requests above, the visits
    (whose code is in the path), and each collected form and log the data dictionary declares."""
    router = APIRouter()
    for route in (*posted_forms(protocol.forms), *SUBJECT_REQUESTS):
        add_form_route(router, route)
    visits = ", ".join(v.code for v in protocol.schedule.follow_up)
    add_visit_form_route(
        router,
        path="/visits/{visit}",
        name="record_visit",
        summary=f"Record a follow-up visit ({visits}); out of window is recorded with a deviation",
        form=VisitAssessments,
        visit=VisitPath,
        command=RECORD_VISIT,
        recorded=lambda posted, visit: VisitRecord(visit=visit, **posted.model_dump()),
    )
    for name, form in protocol.forms.collected.items():
        if form.log:
            add_log_routes(router, protocol.forms, name)
        else:
            add_collected_form_route(router, protocol.forms, name)
    return router
