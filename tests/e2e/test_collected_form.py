"""A form added to the data dictionary and nowhere else (the questionnaire of `tests/questionnaire.py`, in the
running system's protocol): the gateway documents and takes it, the web page offers it in the page's language,
and the ODM snapshot and the SDTM exports carry it."""

import csv
import io
from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from playwright.async_api import Browser

from services.gateway.auth import Role
from shared.contracts.protocol import ProtocolDefinition
from shared.readmodels.catalogue import ReadModel
from shared.runtime.eventstore import EventStore, subject_history
from shared.runtime.projections import wait_for_checkpoint
from tests.conftest import SubjectIds
from tests.e2e.api import System, headers, new_key, token
from tests.e2e.test_visits import TARGET_DAYS, assessments, randomized_days_ago, surgery
from tests.e2e.test_web import fill, signed_in, submit
from tests.questionnaire import NAME

pytestmark = pytest.mark.e2e

PATH = f"/v1/sites/{{site}}/subjects/{{subject}}/visits/{{visit}}/forms/{NAME}"


def test_the_gateway_documents_the_questionnaire_with_the_dictionarys_words(system_openapi: dict[str, Any]) -> None:
    operation = system_openapi["paths"][PATH]["post"]
    assert operation["operationId"] == "record_scalp_symptoms"
    schema = system_openapi["components"]["schemas"]["ScalpSymptomsForm"]
    itch = schema["properties"]["itch"]
    assert (itch["minimum"], itch["maximum"], itch["x-label"]) == (0, 10, {"en": "Itch", "zh": "瘙痒"})
    assert schema["properties"]["donor_fat_site_sore"]["x-when"]["condition"] == "fat_graft_arm"
    [visit] = [p for p in operation["parameters"] if p["name"] == "visit"]
    assert visit["schema"]["pattern"] == "^(M1|M6)$"


async def test_a_site_records_the_questionnaire_at_m1_and_every_export_carries_it(
    client: httpx.AsyncClient,
    store: EventStore,
    subject_ids: SubjectIds,
    protocol: ProtocolDefinition,
    read_pool: asyncpg.Pool,
    browser: Browser,
    system: System,
) -> None:
    site, subject, randomized_on = await randomized_days_ago(store, subject_ids, protocol, 60, "HT")
    bearer = token(Role.INVESTIGATOR, site)
    base = f"/v1/sites/{site}/subjects/{subject}"
    day0 = randomized_on + timedelta(days=5)
    m1 = day0 + timedelta(days=TARGET_DAYS["M1"])
    for path, body in (("procedures", surgery(day0, fat_graft=False)), ("visits/M1", assessments(m1))):
        done = await client.post(f"{base}/{path}", json=body, headers=headers(bearer, new_key()))
        assert done.status_code == 201, done.text
    await wait_for_checkpoint(read_pool, "subjects", done.json()["stream_sequence"])

    # The web page offers it once M1 is done, in the page's language, and says a refusal beside its item.
    page = await signed_in(browser, system, f"investigator.{site.lower()}", language="zh-CN")
    await page.goto(f"{system.web_url}/sites/{site}/subjects/{subject}")
    assert await page.inner_text("label[for='f-itch']") == "瘙痒 *"
    assert await page.locator("#f-donor_fat_site_sore").count() == 1, "asked, and refused for this arm if answered"
    await fill(page, {"assessed_on": m1.isoformat(), "itch": "11", "tightness": "mild"})
    await submit(page, "record_scalp_symptoms")
    assert await page.inner_text("#f-itch-error") == "请填写0至10之间的数字。"
    await fill(page, {"itch": "4"})
    await submit(page, "record_scalp_symptoms")
    assert await page.locator("form[action$='record_scalp_symptoms']").count() == 0, await page.inner_text("main")
    await page.context.close()

    history = await store.load(subject_history(site, subject))
    await wait_for_checkpoint(read_pool, ReadModel.DATA_MANAGEMENT, history.events[-1].sequence)
    form = (await client.get(f"{base}/forms/{NAME}-M1", headers=headers(bearer))).json()
    assert form["data"]["answers"] == {"assessed_on": m1.isoformat(), "itch": 4, "tightness": "mild"}
    again = await client.post(
        PATH.format(site=site, subject=subject, visit="M1"),
        json={"assessed_on": m1.isoformat(), "itch": 5},
        headers=headers(bearer, new_key()),
    )
    assert again.status_code == 409 and again.json()["rule"] == "form.once", again.text
    wrong_arm = await client.post(
        PATH.format(site=site, subject=subject, visit="M6"),
        json={"assessed_on": m1.isoformat(), "itch": 5, "donor_fat_site_sore": True},
        headers=headers(bearer, new_key()),
    )
    assert wrong_arm.status_code == 422 and wrong_arm.json()["field"] == "donor_fat_site_sore", wrong_arm.text

    exporter = headers(token(Role.DATA_MANAGER))
    odm = (await client.get("/v1/reports/exports/odm.xml", headers=exporter)).text
    assert '<FormDef OID="F.SCALP_SYMPTOMS"' in odm and 'ItemOID="IT.SCALP_SYMPTOMS.ITCH" Value="4"' in odm
    assert '<TranslatedText xml:lang="zh">瘙痒</TranslatedText>' in odm
    qs = list(csv.DictReader(io.StringIO((await client.get("/v1/reports/exports/QS.csv", headers=exporter)).text)))
    mine = {r["QSTESTCD"]: r for r in qs if r["USUBJID"].endswith(subject)}
    month_1 = next(v.name for v in protocol.schedule.follow_up if v.code == "M1").upper()  # as SV names it
    assert (mine["ITCH"]["QSORRES"], mine["ITCH"]["VISIT"]) == ("4", month_1)
    assert (mine["TIGHTNES"]["QSORRES"], mine["TIGHTNES"]["QSSTRESC"]) == ("mild", "Mild")
    define = (await client.get("/v1/reports/exports/define.json", headers=exporter)).json()
    assert [v["variable"] for v in define["QS"]][:5] == ["STUDYID", "DOMAIN", "USUBJID", "QSSEQ", "QSTESTCD"]

    # A correction names the record it corrects (If-Match) and says why; the form's record is then the new one.
    corrected = await client.post(
        PATH.format(site=site, subject=subject, visit="M1"),
        json={"assessed_on": m1.isoformat(), "itch": 5, "reason": "Itch score misread from the diary"},
        headers=headers(bearer, new_key()) | {"If-Match": f'"{form["version"]}"'},
    )
    assert corrected.status_code == 201, corrected.text
    await wait_for_checkpoint(read_pool, ReadModel.DATA_MANAGEMENT, corrected.json()["stream_sequence"])
    current = (await client.get(f"{base}/forms/{NAME}-M1", headers=headers(bearer))).json()
    assert current["data"]["answers"]["itch"] == 5 and current["data"]["supersedes"] == form["version"]
