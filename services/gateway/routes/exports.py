"""`/v1/reports/exports/…`: the SDTM-shaped exports, the ADaM analysis datasets and their define, for data
managers and statisticians."""

from typing import Annotated

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import PlainTextResponse

from services.gateway.access import allowed
from services.gateway.auth import Principal, Right
from services.gateway.errors import problem_responses
from shared.readmodels import datasets


def exports_router() -> APIRouter:
    """Every export needs EXPORT_DATA."""
    exporter = Annotated[Principal, allowed(Right.EXPORT_DATA)]
    router = APIRouter(prefix="/v1/reports", tags=["reports"], responses=problem_responses(401, 403))

    @router.get("/exports/define.json", operation_id="export_define", summary="Every exported column described")
    async def define(caller: exporter) -> dict[str, list[dict[str, str]]]:
        return datasets.define()

    @router.get(
        "/exports/{domain}.csv",
        operation_id="export_domain",
        summary="CSV of one SDTM domain (DM, SUPPDM, IE, DS, PR, SV, AE, SUPPAE, DV) or ADaM dataset (ADSL, ADEFF)",
        response_class=PlainTextResponse,
        responses={200: {"content": {"text/csv": {}}}, **problem_responses(404)},
    )
    async def export(request: Request, domain: str, caller: exporter) -> PlainTextResponse:
        build = datasets.builders(request.app.state.ae_dictionary).get(domain.upper())
        if build is None:
            raise HTTPException(404, f"no export {domain}; one of {list(datasets.NAMES)}")
        async with request.app.state.pool.acquire() as conn:
            rows = await build(conn, request.app.state.settings.protocol())
        return PlainTextResponse(
            datasets.to_csv(domain.upper(), rows),
            media_type="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{domain.lower()}.csv"'},
        )

    return router
