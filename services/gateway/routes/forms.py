"""The forms site apps post, each becoming one command: the table of them, and the routes."""

import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Body, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, JsonValue, ValidationError

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
from services.gateway.errors import ProblemError, problem_responses
from services.gateway.params import IdempotencyKey, IfMatch, SitePath, SubjectPath, VisitPath, with_if_match
from shared.contracts import forms
from shared.contracts.amendments import ProtocolVersions
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
from shared.runtime.versions import HeldVersions


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


# A collected form's body: its answers, checked against the version of the protocol in force at the site
# (`answered`); the API document names each version's schema of it (`x-versions`).
Answers = Annotated[dict[str, JsonValue], Body(description="the form's answers")]


async def answered(request: Request, site: str, name: str, body: dict[str, JsonValue]) -> BaseModel:
    """A collected form's answers as the version of the protocol in force at the site today declares the form (a
    correction's may be those of an earlier version, which its record was made under: the visits service decides
    which governs). Refused with every item named, as any body; 404 for a form no version in force here has."""
    versions: HeldVersions = request.app.state.versions
    in_force = await versions.in_force(site)
    earlier = [v for v in reversed(versions.held.all) if v.version != in_force.version]
    correction = body.get("supersedes") is not None
    declaring = [v for v in (in_force, *(earlier if correction else ())) if name in v.forms.collected]
    if not declaring:
        detail = f"version {in_force.version} of the protocol, in force at {site}, has no form {name}"
        raise ProblemError(404, "not-found", "Form not found", detail)
    refused: list[Any] = []
    for version in declaring:
        try:
            return answers_model(version.forms, name).model_validate(body)
        except ValidationError as invalid:
            refused = refused or [{**e, "loc": ("body", *e["loc"])} for e in invalid.errors()]
    raise RequestValidationError(refused)


class CollectedRoutes:
    """The routes of the collected forms and logs every version of the protocol declares, one family per form:
    a form an amendment adds gets its routes when the gateway reads the amendment (`take`)."""

    def __init__(self, router: APIRouter) -> None:
        self.router = router
        self.routed: set[tuple[str, bool]] = set()

    def take(self, versions: ProtocolVersions) -> None:
        for version in versions.all:
            for name, form in version.forms.collected.items():
                if (name, form.log) not in self.routed:
                    (add_log_routes if form.log else add_collected_form_route)(self.router, name, form.title.en)
                    self.routed.add((name, form.log))


def add_collected_form_route(router: APIRouter, name: str, title: str) -> None:
    """A form declared only in the data dictionary, posted at one of its visits."""
    right = right_of(RECORD_FORM)

    async def post_at_visit(
        request: Request,
        site: SitePath,
        subject: SubjectPath,
        visit: VisitPath,
        answers: Answers,
        caller: Annotated[Principal, allowed(right, per_site=True)],
        key: IdempotencyKey,
        if_match: IfMatch = None,
    ) -> Response:
        return await record_collected(request, caller, key, site, subject, name, answers, if_match, visit=visit)

    add_subject_post(
        router, f"/visits/{{visit}}/forms/{name}", post_at_visit, f"record_{name.replace('-', '_')}", "visits",
        f"{title}: entered at its visits, as the version of the protocol in force at the site declares it",
        RecordedResponse, right, form=name,
    )  # fmt: skip


def add_log_routes(router: APIRouter, name: str, title: str) -> None:
    """A log declared only in the data dictionary (concomitant medications, medical history): a new entry is
    posted to the log and answered with its id; a correction is posted to the entry, with the entry's ETag."""
    right = right_of(RECORD_FORM)
    operation = name.replace("-", "_")

    async def new_entry(
        request: Request,
        site: SitePath,
        subject: SubjectPath,
        answers: Answers,
        caller: Annotated[Principal, allowed(right, per_site=True)],
        key: IdempotencyKey,
    ) -> Response:
        return await record_collected(request, caller, key, site, subject, name, answers, answer=LogEntryRecorded)

    async def correct_entry(
        request: Request,
        site: SitePath,
        subject: SubjectPath,
        entry: Annotated[UUID, Path(description="the entry's id, as its record answered")],
        answers: Answers,
        caller: Annotated[Principal, allowed(right, per_site=True)],
        key: IdempotencyKey,
        if_match: IfMatch = None,
    ) -> Response:
        return await record_collected(
            request, caller, key, site, subject, name, answers, if_match, entry=entry, answer=LogEntryRecorded
        )

    add_subject_post(
        router, f"/logs/{name}", new_entry, f"record_{operation}", "logs",
        f"{title}: a new entry, at any time from consent; answers the entry's id", LogEntryRecorded, right, form=name,
    )  # fmt: skip
    add_subject_post(
        router, f"/logs/{name}/{{entry}}", correct_entry, f"correct_{operation}", "logs",
        f"{title}: correct an entry (If-Match: the entry's ETag, and a reason)", LogEntryRecorded, right, form=name,
    )  # fmt: skip


async def record_collected(
    request: Request,
    caller: Principal,
    key: str,
    site: str,
    subject: str,
    name: str,
    answers: dict[str, JsonValue],
    if_match: str | None = None,
    *,
    visit: str | None = None,
    entry: UUID | None = None,
    answer: type[RecordedResponse] = RecordedResponse,
) -> Response:
    """A collected form or a log's entry as posted: its answers checked (`answered`), sent to the visits service."""
    posted = correctable(await answered(request, site, name, answers), if_match)
    return await submit_command(
        request,
        principal=caller,
        idempotency_key=key,
        site=site,
        subject=subject,
        nats_subject=RECORD_FORM,
        form=collected_form(name, posted, visit=visit, entry=entry),
        answer=answer,
    )


def correctable(posted: BaseModel, if_match: str | None) -> BaseModel:
    """A correctable form with the version it corrects from If-Match; any other as posted."""
    return with_if_match(posted, if_match) if isinstance(posted, Correctable) else posted


def add_subject_post(
    router: APIRouter,
    path: str,
    endpoint: Callable[..., Awaitable[Response]],
    name: str,
    tag: str,
    summary: str,
    answer: type[RecordedResponse],
    right: Right,
    *,
    form: str | None = None,
) -> None:
    """A form posted about one subject: rights checked before the body is read, 201 with `answer`. A collected
    form's operation names its form (`x-form`): the API document describes its body by version."""
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
        openapi_extra={"x-form": form} if form else None,
    )


def forms_router(protocol: ProtocolDefinition) -> APIRouter:
    """Every form a site posts but the collected forms and logs (`CollectedRoutes`): the typed forms where the data
    dictionary says, the requests above, and the visits (whose code is in the path)."""
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
    return router
