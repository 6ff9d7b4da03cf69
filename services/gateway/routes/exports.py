"""`/v1/reports/exports/…`: the SDTM-shaped exports, the ADaM analysis datasets and their define, and the
ODM snapshot of the clinical data, for data managers and statisticians."""

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request

from services.gateway.access import allowed
from services.gateway.auth import Principal, Right
from services.gateway.errors import problem_responses
from services.gateway.openapi import CsvResponse, XmlResponse
from shared.readmodels import datasets
from shared.readmodels.odm import odm_snapshot

# One of the exported datasets by its name, exactly (`DM`, `ADSL`): validated, and an enum in the OpenAPI.
Dataset = Annotated[
    str, Path(pattern=f"^({'|'.join(datasets.NAMES)})$", json_schema_extra={"enum": list(datasets.NAMES)})
]


def exports_router() -> APIRouter:
    """Every export needs EXPORT_DATA."""
    exporter = Annotated[Principal, allowed(Right.EXPORT_DATA)]
    router = APIRouter(prefix="/v1/reports", tags=["reports"], responses=problem_responses(401, 403))

    @router.get("/exports/define.json", operation_id="export_define", summary="Every exported column described")
    async def define(caller: exporter) -> dict[str, list[dict[str, str]]]:
        return datasets.define()

    @router.get(
        "/exports/odm.xml",
        operation_id="export_odm",
        summary="CDISC ODM 1.3.2 snapshot of the clinical data: metadata, sites and every subject's forms",
        response_class=XmlResponse,
    )
    async def odm_export(request: Request, caller: exporter) -> XmlResponse:
        async with request.app.state.pool.acquire() as conn:
            document = await odm_snapshot(conn, request.app.state.settings.protocol(), datetime.now(UTC))
        return XmlResponse(document, headers={"Content-Disposition": 'attachment; filename="odm.xml"'})

    @router.get(
        "/exports/{domain}.csv",
        operation_id="export_domain",
        summary="CSV of one SDTM domain (DM, SUPPDM, IE, DS, PR, SV, AE, SUPPAE, DV) or ADaM dataset (ADSL, ADEFF)",
        response_class=CsvResponse,
    )
    async def export(request: Request, domain: Dataset, caller: exporter) -> CsvResponse:
        build = datasets.builders(request.app.state.ae_dictionary)[domain]
        async with request.app.state.pool.acquire() as conn:
            rows = await build(conn, request.app.state.settings.protocol())
        return CsvResponse(
            datasets.to_csv(domain, rows),
            headers={"Content-Disposition": f'attachment; filename="{domain.lower()}.csv"'},
        )

    return router
