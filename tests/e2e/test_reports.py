"""Reports through the real gateway: the monitor's page, the pictures, the audit trail, the exports."""

import csv
import io

import asyncpg
import httpx
import pytest

from services.gateway.auth import Role
from services.reporting.reports import datasets
from shared.contracts.protocol import cached_protocol
from shared.runtime.projections import wait_for_checkpoint
from shared.runtime.settings import DEFAULT_PROTOCOL_FILE
from tests import odm_check
from tests.conftest import SubjectIds
from tests.e2e.api import consented, headers, new_key, token

pytestmark = pytest.mark.e2e


async def test_a_monitor_opens_a_page_linking_every_report(client: httpx.AsyncClient) -> None:
    page = await client.get("/v1/reports", headers=headers(token(Role.MONITOR)))
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for link in ("consort.svg", "enrollment.svg", "visit-compliance.json", "adverse-events.json", "exports/DM.csv"):
        assert f'href="/v1/reports/{link}"' in page.text


async def test_the_consort_and_enrollment_pictures_are_svg(client: httpx.AsyncClient) -> None:
    bearer = headers(token(Role.STATISTICIAN))
    for path in ("/v1/reports/consort.svg", "/v1/reports/enrollment.svg"):
        picture = await client.get(path, headers=bearer)
        assert picture.status_code == 200 and picture.headers["content-type"] == "image/svg+xml"
        assert "<svg" in picture.text[:500]
    flow = (await client.get("/v1/reports/consort.json", headers=bearer)).json()
    assert flow["assessed_for_eligibility"] >= 0 and "arms" in flow


async def test_the_audit_trail_shows_who_did_what_for_a_subject(
    client: httpx.AsyncClient, subject_ids: SubjectIds, read_pool: asyncpg.Pool
) -> None:
    site, subject, bearer = await consented(client, subject_ids)
    withdrawal = {"withdrawn_on": "2026-11-21", "recorded_by": "inv-01"}
    posted = await client.post(
        f"/v1/sites/{site}/subjects/{subject}/consent/withdrawal", json=withdrawal, headers=headers(bearer, new_key())
    )
    await wait_for_checkpoint(read_pool, "audit_trail", posted.json()["stream_sequence"])
    trail = await client.get(f"/v1/reports/audit-trail.json?subject={subject}", headers=headers(token(Role.MONITOR)))
    entries = trail.json()
    assert [e["event_type"] for e in entries] == ["ConsentRecorded", "ConsentWithdrawn"]
    assert all(e["actor_role"] == "investigator" and e["actor_site"] == site for e in entries)
    assert entries[1]["data"]["withdrawn_on"] == "2026-11-21" and entries[1]["protocol_version"] == "1.0"


async def test_exports_are_csv_with_the_sdtm_columns_for_data_managers(client: httpx.AsyncClient) -> None:
    forms = cached_protocol(DEFAULT_PROTOCOL_FILE).forms
    for domain in datasets.names(forms):
        exported = await client.get(f"/v1/reports/exports/{domain}.csv", headers=headers(token(Role.DATA_MANAGER)))
        assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
        assert csv.DictReader(io.StringIO(exported.text)).fieldnames == [
            v[0] for v in datasets.define_of(forms)[domain]
        ]
    unknown = await client.get("/v1/reports/exports/XX.csv", headers=headers(token(Role.DATA_MANAGER)))
    assert unknown.status_code == 422 and unknown.json()["field"] == "path.domain", unknown.text
    define = (await client.get("/v1/reports/exports/define.json", headers=headers(token(Role.STATISTICIAN)))).json()
    assert [v["variable"] for v in define["DM"]][:3] == ["STUDYID", "DOMAIN", "USUBJID"]


async def test_the_odm_export_is_an_odm_document_that_passes_the_odm_schema(client: httpx.AsyncClient) -> None:
    exported = await client.get("/v1/reports/exports/odm.xml", headers=headers(token(Role.DATA_MANAGER)))
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("application/xml")
    assert 'filename="odm.xml"' in exported.headers["content-disposition"]
    assert odm_check.findings(exported.content) == []
