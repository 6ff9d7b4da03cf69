"""Scalp photographs, the source documents of the endpoint: uploaded by the site for a visit and view, cleaned and
kept in the object store under their SHA-256, recorded by the visits service; each read of one is audited."""

import asyncio
from typing import Annotated

import nats.js.errors
from fastapi import APIRouter, Depends, Header, Path, Request
from fastapi.responses import Response
from nats.js.object_store import ObjectStore

from services.gateway.access import allowed, rights_first
from services.gateway.auth import Principal, Right
from services.gateway.command_bus import PhotographRecorded, submit_command
from services.gateway.consistency import read_after
from services.gateway.errors import ProblemError, problem_responses
from services.gateway.params import IdempotencyKey, SitePath, SubjectPath, VisitPath
from services.gateway.photographs import BYTES, Cleaned, PhotographRefused, cleaned
from services.gateway.routes.forms import add_visit_form_route
from shared.contracts.commands import ASSESS_ENDPOINT, RECORD_PHOTOGRAPH, right_of
from shared.contracts.forms import EndpointAssessmentForm
from shared.contracts.photographs import (
    BUCKET,
    MAX_BYTES,
    MEDIA_TYPES,
    PHOTOGRAPH_VISITS,
    SHA256_PATTERN,
    EndpointAssessmentRecord,
    PhotographRecord,
    thumbnail_name,
)
from shared.contracts.protocol import ProtocolDefinition
from shared.readmodels.assessments import AssessmentView, assessments_to_make

TAG = "photographs"
UPLOAD = r"^/v1/sites/[^/]+/subjects/[^/]+/visits/[^/]+/photographs/[^/]+$"
RECORDED_PHOTOGRAPH = """
SELECT media_type FROM scalp_photographs WHERE site = $1 AND subject_id = $2 AND sha256 = $3
"""
AUDIT_READ = """
INSERT INTO photograph_reads (actor, role, site, subject_id, sha256, thumbnail) VALUES ($1, $2, $3, $4, $5, $6)
"""


async def kept(store: ObjectStore, photograph: Cleaned) -> None:
    """The image and its thumbnail in the object store, once: an image is named by its content."""
    for name, data in (
        (photograph.sha256, photograph.image),
        (thumbnail_name(photograph.sha256), photograph.thumbnail),
    ):
        try:
            await store.get_info(name)
        except nats.js.errors.ObjectNotFoundError:
            await store.put(name, data)


def photographs_router(protocol: ProtocolDefinition) -> APIRouter:
    router = APIRouter()
    views = [c.code for c in protocol.forms.code_lists["photograph_view"]]
    visits = [*PHOTOGRAPH_VISITS, *(v.code for v in protocol.schedule.follow_up)]
    right = right_of(RECORD_PHOTOGRAPH)

    async def upload(
        request: Request,
        site: SitePath,
        subject: SubjectPath,
        visit: Annotated[str, Path(pattern=f"^({'|'.join(visits)})$", description="the visit it is taken at")],
        view: Annotated[str, Path(pattern=f"^({'|'.join(views)})$", description="the standard view")],
        caller: Annotated[Principal, allowed(right, per_site=True)],
        key: IdempotencyKey,
        content_type: Annotated[str, Header(description="image/jpeg or image/png")],
    ) -> Response:
        try:
            # Decoding and encoding take the CPU: off the event loop, which keeps answering other requests.
            photograph = await asyncio.to_thread(cleaned, await request.body(), content_type)
        except PhotographRefused as refused:
            raise ProblemError(
                refused.status, refused.kind, "Photograph not taken", refused.detail, field="body"
            ) from None
        await kept(await request.app.state.nc.jetstream().object_store(BUCKET), photograph)
        record = PhotographRecord(
            visit=visit,
            view=view,
            sha256=photograph.sha256,
            media_type=photograph.media_type,
            width=photograph.width,
            height=photograph.height,
            size_bytes=len(photograph.image),
        )
        return await submit_command(
            request,
            principal=caller,
            idempotency_key=key,
            site=site,
            subject=subject,
            nats_subject=RECORD_PHOTOGRAPH,
            form=record,
            answer=PhotographRecorded,
        )

    router.add_api_route(
        "/v1/sites/{site}/subjects/{subject}/visits/{visit}/photographs/{view}",
        upload,
        methods=["POST"],
        status_code=201,
        name="upload_photograph",
        operation_id="upload_photograph",
        tags=[TAG],
        summary=f"A scalp photograph for a visit and standard view: JPEG or PNG up to {MAX_BYTES // 2**20} MB (sent as "
        "image/jpeg, image/png or application/octet-stream), kept without its metadata (EXIF, GPS), named by its "
        "SHA-256",
        response_model=PhotographRecorded,
        responses=problem_responses(401, 403, 404, 409, 413, 415, 422, 423, 503),
        route_class_override=rights_first(right, per_site=True),
        # Documented as bytes, which generated clients send; image/jpeg and image/png are taken too (the summary).
        openapi_extra={
            "requestBody": {"required": True, "content": {BYTES: {"schema": {"type": "string", "format": "binary"}}}}
        },
    )

    @router.get(
        "/v1/sites/{site}/subjects/{subject}/photographs/{sha256}",
        tags=[TAG],
        operation_id="get_photograph",
        summary="A scalp photograph of the subject (or its thumbnail), as stored; every read is audited",
        response_class=Response,
        responses={
            200: {"content": {m: {"schema": {"type": "string", "format": "binary"}} for m in (*MEDIA_TYPES, BYTES)}},
            **problem_responses(401, 403, 404, 422, 503),
        },
    )
    async def get_photograph(
        request: Request,
        site: SitePath,
        subject: SubjectPath,
        sha256: Annotated[str, Path(pattern=SHA256_PATTERN, description="the stored image's SHA-256")],
        caller: Annotated[Principal, allowed(Right.READ_PHOTOGRAPHS, per_site=True)],
        thumbnail: bool = False,
    ) -> Response:
        async with request.app.state.pool.acquire() as conn:
            media_type = await conn.fetchval(RECORDED_PHOTOGRAPH, site, subject, sha256)
            if media_type is None:
                raise ProblemError(404, "not-found", "Photograph not found", f"{subject} has no photograph {sha256}")
            store = await request.app.state.nc.jetstream().object_store(BUCKET)
            found = await store.get(thumbnail_name(sha256) if thumbnail else sha256)
            # Audited before it is served: a read that cannot be recorded is not made.
            await conn.execute(AUDIT_READ, caller.actor, caller.role.value, site, subject, sha256, thumbnail)
        # As bytes to a client that asks for them and not for an image (a generated client), as DocumentResponse.
        accepted = request.headers.get("accept", "")
        as_bytes = BYTES in accepted and "image/" not in accepted
        return Response(
            found.data,
            media_type=BYTES if as_bytes else "image/jpeg" if thumbnail else media_type,
            headers={"Cache-Control": "private, no-store", "X-Content-Type-Options": "nosniff"},
        )

    add_visit_form_route(
        router,
        path="/visits/{visit}/assessment",
        name="assess_endpoint",
        summary="The blinded outcome assessor's counts at a follow-up visit, made on its photographs alone; once",
        form=EndpointAssessmentForm,
        visit=VisitPath,
        command=ASSESS_ENDPOINT,
        recorded=lambda posted, visit: EndpointAssessmentRecord(visit=visit, **posted.model_dump()),
    )

    @router.get(
        "/v1/assessments",
        tags=[TAG],
        operation_id="assessments_to_make",
        summary="The blinded assessor's list: each follow-up visit with photographs, its views and whether it is "
        "assessed; nothing that names or implies the arm",
        responses=problem_responses(401, 403, 503),
        dependencies=[Depends(read_after)],
    )
    async def assessments(
        request: Request, caller: Annotated[Principal, allowed(Right.ASSESS_ENDPOINTS)]
    ) -> list[AssessmentView]:
        async with request.app.state.pool.acquire() as conn:
            return await assessments_to_make(conn, [v.code for v in protocol.schedule.follow_up])

    return router
