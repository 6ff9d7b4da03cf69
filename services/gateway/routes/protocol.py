"""Reads of the protocol's versions: every amendment with each site's day and the subjects it touched, any version's
whole definition (the first is the file the system started with; each later one as its amendment deployed it), and
each site's work list of subjects to re-consent."""

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field

from services.gateway.access import allowed
from services.gateway.auth import Principal, Right
from services.gateway.consistency import read_after
from services.gateway.errors import ProblemError, problem_responses
from services.gateway.params import SitePath
from shared.readmodels.amendments import AmendmentView, ReconsentDue, amendment_definition, amendments, reconsent_due
from shared.runtime.versions import HeldVersions

VersionPath = Annotated[str, Path(pattern=r"^[A-Za-z0-9._-]{1,20}$", description="a protocol version, e.g. 2.0")]


def protocol_router() -> APIRouter:
    router = APIRouter()

    @router.get(
        "/v1/protocol/amendments",
        tags=["protocol"],
        operation_id="list_amendments",
        dependencies=[Depends(read_after)],
        summary="Every amendment of the protocol: what it changed, who deployed it and when, each site's day for it "
        "and the subjects it touched there",
        responses=problem_responses(401, 403, 503),
    )
    async def list_amendments(
        request: Request, caller: Annotated[Principal, allowed(Right.READ_REPORTS)]
    ) -> list[AmendmentView]:
        return await amendments(request.app.state.pool)

    @router.get(
        "/v1/protocol/versions/{version}",
        tags=["protocol"],
        operation_id="get_protocol_version",
        dependencies=[Depends(read_after)],
        summary="A version of the protocol, whole (criteria, schedule, edit checks, data dictionary), as it governs "
        "what was decided under it: for whoever reads the casebooks",
        responses=problem_responses(401, 403, 404, 422, 503),
    )
    async def get_protocol_version(
        request: Request, version: VersionPath, caller: Annotated[Principal, allowed(Right.READ_SUBJECTS)]
    ) -> dict[str, Any]:
        first = request.app.state.settings.protocol()
        if version == first.version:
            return dict(first.model_dump(mode="json"))
        definition = await amendment_definition(request.app.state.pool, version)
        if definition is None:
            raise ProblemError(404, "version-not-found", "Protocol version not found", f"no protocol version {version}")
        return definition

    @router.get(
        "/v1/sites/{site}/reconsent",
        tags=["protocol"],
        operation_id="reconsent_due",
        dependencies=[Depends(read_after)],
        summary="The site's subjects who must sign a revised consent form before their next visit form, the longest "
        "waiting first",
        responses=problem_responses(401, 403, 404, 422, 503),
    )
    async def get_reconsent_due(
        request: Request, site: SitePath, caller: Annotated[Principal, allowed(Right.READ_SUBJECTS, per_site=True)]
    ) -> list[ReconsentDue]:
        versions: HeldVersions = request.app.state.versions
        return await reconsent_due(request.app.state.pool, site, versions.today(site))

    @router.get(
        "/v1/sites/{site}/protocol",
        tags=["protocol"],
        operation_id="protocol_in_force",
        summary="The version of the protocol in force at the site today: what its forms are entered as",
        responses=problem_responses(401, 403, 404, 422, 503),
    )
    async def get_protocol_in_force(
        request: Request, site: SitePath, caller: Annotated[Principal, allowed(Right.READ_SUBJECTS, per_site=True)]
    ) -> InForce:
        versions: HeldVersions = request.app.state.versions
        return InForce(site=site, on=versions.today(site), version=(await versions.in_force(site)).version)

    return router


class InForce(BaseModel):
    site: str
    on: date = Field(description="the site's date today")
    version: str = Field(description="the version of the protocol in force there", examples=["2.0"])
