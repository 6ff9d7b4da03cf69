"""The gateway's FastAPI app: `create_app(settings)` wires auth, idempotency, commands and reads."""

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated
from uuid import UUID

import nats
import structlog
from fastapi import FastAPI, Header, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import PlainTextResponse, Response
from pydantic import BaseModel

from services.gateway.access import SitePath, allowed
from services.gateway.auth import Principal, Right
from services.gateway.commands import (
    AdverseEventRecorded,
    AlertAcknowledged,
    CommandBus,
    RandomizationRecorded,
    RecordedResponse,
    ScreeningRecorded,
    submit_command,
)
from services.gateway.errors import ProblemError, install_error_handlers, problem_responses
from services.gateway.idempotency import KEY_PATTERN, IdempotencyKeys
from services.gateway.middleware import BodySizeLimit, CorrelationId
from services.gateway.reads import (
    AlertState,
    AlertView,
    SubjectPage,
    SubjectState,
    SubjectView,
    find_alerts,
    find_subject,
    list_subjects,
)
from services.gateway.reports import reports_router
from services.gateway.settings import GatewaySettings
from shared.commands import (
    ACKNOWLEDGE_ALERT,
    EXPORT_ALLOCATION_LIST,
    INVALIDATE_RANDOMIZATION,
    RANDOMIZE_SUBJECT,
    RECORD_CONSENT,
    RECORD_PROCEDURE,
    RECORD_VISIT,
    REPORT_ADVERSE_EVENT,
    SCREEN_SUBJECT,
    UPDATE_ADVERSE_EVENT,
    WITHDRAW_CONSENT,
    WITHDRAW_SUBJECT,
    ExportRequest,
)
from shared.forms import (
    AdverseEventFollowUp,
    AdverseEventForm,
    AlertAcknowledgement,
    ConsentForm,
    ConsentWithdrawalForm,
    ProcedureForm,
    RandomizationInvalidationForm,
    RandomizationRequest,
    ScreeningForm,
    VisitAssessments,
    VisitRecord,
    WithdrawalForm,
)
from shared.postgres import apply_migrations, create_pool
from shared.protocol import SUBJECT_ID_PATTERN

log = structlog.get_logger(__name__)
MIGRATIONS = Path(__file__).parent / "sql"

SubjectPath = Annotated[str, PathParam(pattern=SUBJECT_ID_PATTERN, examples=["NFH-001"], description="subject id")]
IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        pattern=KEY_PATTERN,
        description="unique per intended request; a retry with the same key returns the first answer",
    ),
]


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
    right: Right = Right.POST_SITE_FORMS


# Every form a site app can post, in one table.
SUBJECT_FORMS = (
    FormRoute(
        "record_consent", "/consent", RECORD_CONSENT, ConsentForm, RecordedResponse,
        "Record informed consent (IN09)", "screening",
    ),
    FormRoute(
        "withdraw_consent", "/consent/withdrawal", WITHDRAW_CONSENT, ConsentWithdrawalForm, RecordedResponse,
        "Record that the subject withdrew consent", "screening",
    ),
    FormRoute(
        "screen_subject", "/screening", SCREEN_SUBJECT, ScreeningForm, ScreeningRecorded,
        "Evaluate eligibility: every criterion IN01–IN09 and EX01–EX11 with its outcome and value", "screening",
    ),
    FormRoute(
        "randomize_subject", "/randomization", RANDOMIZE_SUBJECT, RandomizationRequest, RandomizationRecorded,
        "Randomize a consented, eligible subject: returns the arm and the randomization number", "randomization",
    ),
    FormRoute(
        "invalidate_randomization", "/randomization/invalidation", INVALIDATE_RANDOMIZATION,
        RandomizationInvalidationForm, RecordedResponse,
        "Mark a randomization made in error (data managers); the slot is never reused", "randomization",
        Right.INVALIDATE_RANDOMIZATION,
    ),
    FormRoute(
        "record_procedure", "/procedures", RECORD_PROCEDURE, ProcedureForm, RecordedResponse,
        "Record the surgery (day 0); a correction names the record it supersedes and why", "visits",
    ),
    FormRoute(
        "withdraw_subject", "/withdrawal", WITHDRAW_SUBJECT, WithdrawalForm, RecordedResponse,
        "Withdraw a subject: no further visits; adverse-event information is still accepted", "visits",
    ),
    FormRoute(
        "report_adverse_event", "/adverse-events", REPORT_ADVERSE_EVENT, AdverseEventForm, AdverseEventRecorded,
        "Report an adverse event: returns its id and whether it is serious (an SAE alert follows)", "safety",
    ),
    FormRoute(
        "follow_up_adverse_event", "/adverse-events/follow-up", UPDATE_ADVERSE_EVENT, AdverseEventFollowUp,
        AdverseEventRecorded, "Follow-up information on an adverse event (an upgrade to serious raises an alert)",
        "safety",
    ),
)  # fmt: skip


def add_form_route(app: FastAPI, route: FormRoute) -> None:
    async def post_form(
        request: Request,
        site: SitePath,
        subject: SubjectPath,
        form: BaseModel,
        caller: Annotated[Principal, allowed(route.right, per_site=True)],
        key: IdempotencyKey,
    ) -> Response:
        return await submit_command(
            request,
            principal=caller,
            idempotency_key=key,
            site=site,
            subject=subject,
            nats_subject=route.command,
            form=form,
            answer=route.answer,
        )

    # FastAPI reads the body's model from the signature: give it this route's form.
    post_form.__annotations__["form"] = route.form
    app.add_api_route(
        f"/v1/sites/{{site}}/subjects/{{subject}}{route.path}",
        post_form,
        methods=["POST"],
        status_code=201,
        name=route.name,
        operation_id=route.name,
        tags=[route.tag],
        summary=route.summary,
        response_model=route.answer,
        responses=problem_responses(401, 403, 404, 409, 413, 422, 503),
    )


async def migrate(settings: GatewaySettings) -> None:
    pool = await create_pool(settings.database_url, max_size=1)
    try:
        await apply_migrations(pool, "gateway", MIGRATIONS)
    finally:
        await pool.close()


def create_app(settings: GatewaySettings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Its schema is migrated beforehand by the owner (`migrate`, the migration job).
        pool = await create_pool(settings.database_url, max_size=settings.pool_size)
        nc = await nats.connect(settings.nats_url.split(","), name="trial-gateway", max_reconnect_attempts=-1)
        app.state.pool = pool
        app.state.nc = nc
        app.state.bus = CommandBus(nc, timeout=settings.command_timeout_seconds)
        app.state.idempotency = IdempotencyKeys(pool, lease_seconds=settings.idempotency_lease_seconds)
        log.info("gateway_started")
        try:
            yield
        finally:
            await nc.drain()
            await pool.close()
            log.info("gateway_stopped")

    app = FastAPI(
        title="NCT06646146 trial gateway",
        version="1.0",
        description="Forms from the sites, reads for monitors, acknowledgements for the safety team.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(CorrelationId)

    @app.get("/healthz", tags=["operations"], operation_id="healthz", summary="Liveness")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get(
        "/readyz",
        tags=["operations"],
        operation_id="readyz",
        summary="Readiness: NATS and Postgres reachable",
        responses=problem_responses(503),
    )
    async def readyz(request: Request) -> dict[str, str]:
        nc = request.app.state.nc
        try:
            await request.app.state.pool.fetchval("SELECT 1", timeout=2)
            await nc.flush(timeout=2)
        except Exception as exc:
            raise ProblemError(503, "not-ready", "Not ready", f"dependency unreachable: {type(exc).__name__}") from exc
        return {"status": "ready"}

    for route in SUBJECT_FORMS:
        add_form_route(app, route)
    app.include_router(reports_router())

    @app.get(
        "/v1/randomization/allocation-list.csv",
        tags=["randomization"],
        operation_id="export_allocation_list",
        summary="The concealed allocation list (statisticians); its SHA-256 is the recorded commitment",
        response_class=PlainTextResponse,
        responses={200: {"content": {"text/csv": {}}}, **problem_responses(401, 403, 503)},
    )
    async def export_allocation_list(
        request: Request, caller: Annotated[Principal, allowed(Right.READ_ALLOCATION_LIST)]
    ) -> PlainTextResponse:
        bus: CommandBus = request.app.state.bus
        request_model = ExportRequest(actor=caller.actor, role=caller.role, correlation_id=request.state.correlation_id)
        exported = await bus.export(EXPORT_ALLOCATION_LIST, request_model)
        return PlainTextResponse(
            exported.content,
            media_type="text/csv",
            headers={"Content-Disposition": 'attachment; filename="allocation-list.csv"', "Cache-Control": "no-store"},
        )

    @app.post(
        "/v1/sites/{site}/subjects/{subject}/visits/{visit}",
        status_code=201,
        tags=["visits"],
        operation_id="record_visit",
        summary="Record a follow-up visit (W1, M1, M3, M6, M12); out of window is recorded with a deviation",
        response_model=RecordedResponse,
        responses=problem_responses(401, 403, 404, 409, 413, 422, 503),
    )
    async def record_visit(
        request: Request,
        site: SitePath,
        subject: SubjectPath,
        visit: Annotated[str, PathParam(pattern=r"^[A-Z][A-Z0-9]{1,4}$", examples=["M6"])],
        form: VisitAssessments,
        caller: Annotated[Principal, allowed(Right.POST_SITE_FORMS, per_site=True)],
        key: IdempotencyKey,
    ) -> Response:
        return await submit_command(
            request,
            principal=caller,
            idempotency_key=key,
            nats_subject=RECORD_VISIT,
            form=VisitRecord(visit=visit, **form.model_dump()),
            site=site,
            subject=subject,
        )

    @app.post(
        "/v1/safety/alerts/{alert}/acknowledgement",
        status_code=201,
        tags=["safety"],
        operation_id="acknowledge_alert",
        summary="Acknowledge an SAE alert (safety officers); acknowledging twice returns the first",
        response_model=AlertAcknowledged,
        responses=problem_responses(401, 403, 404, 422, 503),
    )
    async def acknowledge_alert(
        request: Request,
        alert: UUID,
        caller: Annotated[Principal, allowed(Right.ACKNOWLEDGE_ALERTS)],
        key: IdempotencyKey,
    ) -> Response:
        return await submit_command(
            request,
            principal=caller,
            idempotency_key=key,
            nats_subject=ACKNOWLEDGE_ALERT,
            form=AlertAcknowledgement(alert_id=alert),
            answer=AlertAcknowledged,
        )

    @app.get(
        "/v1/safety/alerts",
        tags=["safety"],
        operation_id="list_alerts",
        summary="SAE alerts (safety officers), oldest first, with the 24-hour reporting deadline",
        responses=problem_responses(401, 403, 422),
    )
    async def list_alerts(
        request: Request,
        caller: Annotated[Principal, allowed(Right.READ_ADVERSE_EVENTS)],
        state: AlertState = AlertState.OPEN,
    ) -> list[AlertView]:
        return await find_alerts(request.app.state.pool, state)

    @app.get(
        "/v1/safety/alerts/{alert}",
        tags=["safety"],
        operation_id="get_alert",
        summary="One SAE alert and whether it is acknowledged",
        responses=problem_responses(401, 403, 404, 422),
    )
    async def get_alert(
        request: Request, alert: UUID, caller: Annotated[Principal, allowed(Right.READ_ADVERSE_EVENTS)]
    ) -> AlertView:
        found = await find_alerts(request.app.state.pool, AlertState.ALL, alert_id=alert)
        if not found:
            raise ProblemError(404, "alert-not-found", "Alert not found", f"no alert {alert} (yet)")
        return found[0]

    @app.get(
        "/v1/sites/{site}/subjects",
        tags=["subjects"],
        operation_id="list_subjects",
        summary="The site's subjects and their state, by subject id, a page at a time",
        responses=problem_responses(401, 403, 422),
    )
    async def get_subjects(
        request: Request,
        site: SitePath,
        caller: Annotated[Principal, allowed(Right.READ_SUBJECTS, per_site=True)],
        state: Annotated[SubjectState | None, Query(description="only subjects in this state")] = None,
        after: Annotated[
            str | None, Query(pattern=SUBJECT_ID_PATTERN, description="next_after of the last page")
        ] = None,
        limit: Annotated[int, Query(ge=1, le=200)] = 50,
    ) -> SubjectPage:
        return await list_subjects(request.app.state.pool, site, state=state, after=after, limit=limit)

    @app.get(
        "/v1/sites/{site}/subjects/{subject}",
        tags=["subjects"],
        operation_id="get_subject",
        summary="One subject and its state",
        responses=problem_responses(401, 403, 404, 422),
    )
    async def get_subject(
        request: Request,
        site: SitePath,
        subject: SubjectPath,
        caller: Annotated[Principal, allowed(Right.READ_SUBJECTS, per_site=True)],
    ) -> SubjectView:
        view = await find_subject(request.app.state.pool, site, subject)
        if view is None:
            raise ProblemError(404, "subject-not-found", "Subject not found", f"no subject {subject} at site {site}")
        return view

    return app
