"""Reads from the read models: subjects and their state; and the statisticians' allocation list."""

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from services.gateway.access import allowed
from services.gateway.auth import Principal, Right
from services.gateway.command_bus import CommandBus
from services.gateway.consistency import read_after
from services.gateway.errors import ProblemError, problem_responses
from services.gateway.openapi import CsvResponse
from services.gateway.params import SitePath, SubjectPath
from shared.contracts.commands import EXPORT_ALLOCATION_LIST, ExportRequest
from shared.contracts.protocol import SUBJECT_ID_PATTERN
from shared.readmodels.matrix import SiteMatrix, site_matrix
from shared.readmodels.states import SubjectState
from shared.readmodels.subjects import SubjectPage, SubjectView, find_subject, list_subjects


def subjects_router() -> APIRouter:
    """Reads of subjects (site staff of their site, monitors) and the allocation list (statisticians)."""
    router = APIRouter()

    @router.get(
        "/v1/sites/{site}/subjects",
        tags=["subjects"],
        operation_id="list_subjects",
        dependencies=[Depends(read_after)],
        summary="The site's subjects and their state, by subject id, a page at a time",
        responses=problem_responses(401, 403, 404, 422, 503),
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

    @router.get(
        "/v1/sites/{site}/matrix",
        tags=["subjects"],
        operation_id="site_matrix",
        dependencies=[Depends(read_after)],
        summary="The site's subjects × forms: each form's status (entered, query open, verified, signed, locked, "
        "out of window, missed, not expected, not started), in the protocol's order",
        responses=problem_responses(401, 403, 404, 422, 503),
    )
    async def get_site_matrix(
        request: Request,
        site: SitePath,
        caller: Annotated[Principal, allowed(Right.READ_SUBJECTS, per_site=True)],
    ) -> SiteMatrix:
        async with request.app.state.pool.acquire() as conn:
            return await site_matrix(conn, request.app.state.settings.protocol(), site)

    @router.get(
        "/v1/sites/{site}/subjects/{subject}",
        tags=["subjects"],
        operation_id="get_subject",
        dependencies=[Depends(read_after)],
        summary="One subject and its state",
        responses=problem_responses(401, 403, 404, 422, 503),
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

    @router.get(
        "/v1/randomization/allocation-list.csv",
        tags=["randomization"],
        operation_id="export_allocation_list",
        summary="The concealed allocation list (statisticians); its SHA-256 is the recorded commitment",
        response_class=CsvResponse,
        responses=problem_responses(401, 403, 503),
    )
    async def export_allocation_list(
        request: Request, caller: Annotated[Principal, allowed(Right.READ_ALLOCATION_LIST)]
    ) -> CsvResponse:
        bus: CommandBus = request.app.state.bus
        request_model = ExportRequest(actor=caller.actor, role=caller.role, correlation_id=request.state.correlation_id)
        exported = await bus.export(EXPORT_ALLOCATION_LIST, request_model, caller=caller)
        return CsvResponse(
            exported.content,
            headers={"Content-Disposition": 'attachment; filename="allocation-list.csv"', "Cache-Control": "no-store"},
        )

    return router
