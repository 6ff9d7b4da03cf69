"""`/v1/reports/exports/…`: the SDTM-shaped exports, the ADaM analysis datasets and their define, and the
ODM snapshot of the clinical data, for data managers and statisticians.

Once the database is locked for analysis, every export is the one made from the record as of the lock (the same
bytes every time) and says which lock in the `Database-Lock-Sequence` header; until the reporting service has made
them (seconds after the lock), 503 with Retry-After."""

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from services.gateway.access import allowed
from services.gateway.auth import Principal, Right
from services.gateway.errors import ProblemError, problem_responses, service_unavailable
from services.gateway.openapi import CsvResponse, XmlResponse
from services.reporting.reports import datasets
from services.reporting.reports.odm import odm_snapshot
from shared.contracts.dictionary import DataDictionary
from shared.readmodels.datamanagement import LOCK_FILE, DatabaseLockFile, database_lock, frozen_export
from shared.runtime.postgres import Connection

LOCK_HEADER = "Database-Lock-Sequence"
LOCKED = "; once the database is locked, as of the lock (header Database-Lock-Sequence)"


async def export_file(
    request: Request, name: str, live: Callable[[Connection], Awaitable[str]] | None
) -> tuple[str, dict[str, str]]:
    """The file from the live read models, or as of the database lock once there is one, with the lock's sequence
    (`live` None: a file there is only as of a lock)."""
    async with request.app.state.pool.acquire() as conn:
        lock = await database_lock(conn)
        if lock is None:
            if live is None:
                raise ProblemError(404, "not-locked", "Not locked", "the database is not locked for analysis")
            return await live(conn), {"Content-Disposition": f'attachment; filename="{name}"'}
        frozen = await frozen_export(conn, name)
    if frozen is None:
        raise service_unavailable("the database is locked: its exports as of the lock are being made")
    headers = {"Content-Disposition": f'attachment; filename="{name}"', LOCK_HEADER: str(lock.through_sequence)}
    return frozen, headers


def exports_router() -> APIRouter:
    """Every export needs EXPORT_DATA. The datasets are the data dictionary's, every version's
    (`exported_forms`, as the gateway read the versions last): its collected forms' findings domains are among
    them; the API document lists them (`corrected`)."""
    # One of the exported datasets by its name, exactly (`DM`, `ADSL`); the document's enum names every one.
    Dataset = Annotated[str, Path(pattern=r"^[A-Z][A-Z0-9]{1,7}$")]  # noqa: N806 (a type, read by FastAPI)

    def exported(request: Request) -> DataDictionary:
        forms: DataDictionary = request.app.state.versions.held.exported_forms
        return forms

    exporter = Annotated[Principal, allowed(Right.EXPORT_DATA)]
    router = APIRouter(prefix="/v1/reports", tags=["reports"], responses=problem_responses(401, 403, 503))

    @router.get(
        "/exports/define.json",
        operation_id="export_define",
        summary="Every exported column described",
        response_model=datasets.Define,
    )
    async def define(request: Request, caller: exporter) -> Response:
        return Response(datasets.define_json(exported(request)), media_type="application/json")

    @router.get(
        "/exports/database-lock.json",
        operation_id="export_database_lock",
        summary="Which database lock the exports are made as of (404 until the database is locked)",
        responses={200: {"model": DatabaseLockFile}, **problem_responses(404)},
    )
    async def lock_file(request: Request, caller: exporter) -> Response:
        content, headers = await export_file(request, LOCK_FILE, None)
        return Response(content, media_type="application/json", headers=headers)

    @router.get(
        "/exports/odm.xml",
        operation_id="export_odm",
        summary="CDISC ODM 1.3.2 snapshot of the clinical data: metadata, sites and every subject's forms" + LOCKED,
        response_class=XmlResponse,
    )
    async def odm_export(request: Request, caller: exporter) -> XmlResponse:
        protocol = request.app.state.settings.protocol()

        async def live(conn: Connection) -> str:
            return await odm_snapshot(conn, protocol, datetime.now(UTC))

        content, headers = await export_file(request, "odm.xml", live)
        return XmlResponse(content, headers=headers)

    @router.get(
        "/exports/{domain}.csv",
        operation_id="export_domain",
        summary="CSV of one SDTM domain or ADaM dataset" + LOCKED,
        response_class=CsvResponse,
    )
    async def export(request: Request, domain: Dataset, caller: exporter) -> CsvResponse:
        forms = exported(request)
        build = datasets.builders(request.app.state.dictionaries, forms).get(domain)
        if build is None:  # refused as the document's enum refuses it
            names = ", ".join(datasets.names(forms))
            raise RequestValidationError([{"loc": ("path", "domain"), "type": "enum", "msg": f"not one of {names}"}])

        async def live(conn: Connection) -> str:
            return datasets.to_csv(domain, await build(conn, request.app.state.settings.protocol()), forms)

        content, headers = await export_file(request, f"{domain.lower()}.csv", live)
        return CsvResponse(content, headers=headers)

    return router
