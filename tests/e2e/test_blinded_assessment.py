"""The blinded outcome assessor (the PROBE design): sees a visit's photographs and records counts on them, and
nothing else: every route of the gateway is asked as the assessor and none answers with anything that names or
implies the arm; what it may not read is refused and kept with who asked. The endpoint reports and ADaM use the
assessor's counts where made, and say so."""

import csv
import io
import re
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import pytest
from playwright.async_api import Browser

from services.gateway.auth import Role
from shared.contracts.protocol import ProtocolDefinition
from shared.readmodels.catalogue import ReadModel
from shared.runtime.eventstore import EventStore
from shared.runtime.projections import wait_for_checkpoint
from tests.conftest import SubjectIds
from tests.e2e.api import System, headers, new_key, token
from tests.e2e.test_photographs import LOADED_WIDTH, photographed
from tests.e2e.test_web import signed_in
from tests.e2e.test_web_languages import walk

pytestmark = pytest.mark.e2e

TERM = "Transient scalp erythema after grafting"  # the adverse event: the assessor must never read it


async def primary_counts(client: httpx.AsyncClient) -> tuple[int, int]:
    report = await client.get("/v1/reports/primary-endpoint.json", headers=headers(token(Role.STATISTICIAN)))
    assert report.status_code == 200, report.text
    all_visits = next(a for a in report.json()["analyses"] if a["set_code"] == "all_visits")
    assert "blinded outcome assessor" in report.json()["values_from"]
    return all_visits["assessed_blind"], all_visits["assessed_by_site"]


async def folsurv(client: httpx.AsyncClient, subject: str) -> dict[str, str]:
    answer = await client.get("/v1/reports/exports/ADEFF.csv", headers=headers(token(Role.STATISTICIAN)))
    assert answer.status_code == 200, answer.text
    [row] = [
        r
        for r in csv.DictReader(io.StringIO(answer.text))
        if r["USUBJID"].endswith(f"-{subject}") and r["PARAMCD"] == "FOLSURV" and r["AVISIT"] == "Month 6"
    ]
    return row


def arm_revealed(text: str, protocol: ProtocolDefinition, number: int) -> list[str]:
    """What in an answer names or implies the arm: an arm's code or name, the randomization number, a fat-graft
    item, the procedure record, the adverse event's text."""
    found = [a.code for a in protocol.arms if re.search(rf"\b{re.escape(a.code)}\b", text)]
    found += [a.name for a in protocol.arms if a.name in text]
    words = ("fat_graft", "harvested_fat", "ecm_svf", "follicular_units", "randomization_number", '"arm"', TERM)
    found += [w for w in words if w in text]
    return found + ([str(number)] if re.search(rf"\b{number}\b", text) else [])


async def test_the_assessor_counts_on_the_photographs_and_the_m6_endpoint_uses_its_count_and_says_so(
    client: httpx.AsyncClient,
    store: EventStore,
    subject_ids: SubjectIds,
    protocol: ProtocolDefinition,
    read_pool: asyncpg.Pool,
) -> None:
    # The site's count at M6: 1200 surviving of 1500 follicular units transplanted, 80.0 %.
    site, subject, photograph = await photographed(
        client, store, subject_ids, protocol, read_pool, arm="FG_HT", visit="M6"
    )
    base = f"/v1/sites/{site}/subjects/{subject}"
    investigator = token(Role.INVESTIGATOR, site)
    before = await folsurv(client, subject)
    assert (before["AVAL"], before["SRCDOM"]) == ("80.0", "VISITS")
    blind_before, _ = await primary_counts(client)

    assessor = token(Role.OUTCOME_ASSESSOR)
    to_make = await client.get("/v1/assessments", headers=headers(assessor))
    assert to_make.status_code == 200, to_make.text
    [listed] = [a for a in to_make.json() if a["subject_id"] == subject]
    assert listed["visit"] == "M6" and listed["grafts_surviving"] is None
    assert listed["photographs"] == [{"view": "recipient_area", "sha256": photograph.json()["sha256"]}]
    kept = await client.get(f"{base}/photographs/{photograph.json()['sha256']}", headers=headers(assessor))
    assert kept.status_code == 200 and kept.headers["content-type"] == "image/jpeg"

    counted = await client.post(
        f"{base}/visits/M6/assessment",
        json={"grafts_surviving": 1050, "hair_density_per_cm2": "38.5"},
        headers=headers(assessor, new_key()),
    )
    assert counted.status_code == 201, counted.text
    await wait_for_checkpoint(read_pool, ReadModel.VISITS, counted.json()["stream_sequence"])
    after = await folsurv(client, subject)
    assert (after["AVAL"], after["SRCDOM"], after["SRCEVID"]) == ("70.0", "ASSESSMENTS", counted.json()["event_id"])
    blind_after, _ = await primary_counts(client)
    assert blind_after == blind_before + 1, "the report counts the values the assessor made"
    again = await client.post(
        f"{base}/visits/M6/assessment",
        json={"grafts_surviving": 1000, "hair_density_per_cm2": "38.5"},
        headers=headers(assessor, new_key()),
    )
    assert again.status_code == 409 and again.json()["rule"] == "assessment.once", again.text
    by_site = await client.post(
        f"{base}/visits/M6/assessment",
        json={"grafts_surviving": 1000, "hair_density_per_cm2": "38.5"},
        headers=headers(investigator, new_key()),
    )
    assert by_site.status_code == 403, "the site does not assess its own endpoint blind"


def filled(path: str, values: dict[str, str]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: values[m.group(1)], path)


async def test_no_route_answers_the_assessor_with_anything_that_reveals_the_arm_and_refusals_are_kept(
    client: httpx.AsyncClient,
    store: EventStore,
    subject_ids: SubjectIds,
    protocol: ProtocolDefinition,
    read_pool: asyncpg.Pool,
    system_openapi: dict[str, Any],
) -> None:
    site, subject, photograph = await photographed(
        client, store, subject_ids, protocol, read_pool, arm="FG_HT", visit="M1", view="vertex"
    )
    onset = (datetime.now(UTC) - timedelta(days=10)).date().isoformat()
    reported = await client.post(f"/v1/sites/{site}/subjects/{subject}/adverse-events", json={
        "term": TERM, "onset_date": onset, "site_aware_at": f"{onset}T10:00:00+08:00", "grade": 1, "seriousness": [],
        "action_taken": "none", "outcome": "recovered",
        "relationship": {"fat_graft": "possible", "hair_transplantation": "possible"},
    }, headers=headers(token(Role.INVESTIGATOR, site), new_key()))  # fmt: skip
    assert reported.status_code == 201, reported.text
    await wait_for_checkpoint(read_pool, ReadModel.SAFETY, reported.json()["stream_sequence"])
    number = await read_pool.fetchval("SELECT randomization_number FROM randomizations WHERE subject_id = $1", subject)
    values = {
        "site": site, "subject": subject, "visit": "M1", "form": "procedure", "sha256": photograph.json()["sha256"],
        "query": str(uuid4()), "alert": str(uuid4()), "domain": "DM", "kind": "eligibility", "entry": str(uuid4()),
        "view": "vertex", "version": protocol.version,
    }  # fmt: skip
    assessor = token(Role.OUTCOME_ASSESSOR)
    refused_before = await read_pool.fetchval("SELECT count(*) FROM refused_requests WHERE role = 'outcome_assessor'")
    answered, refused, revealing = [], 0, {}
    for template, item in system_openapi["paths"].items():
        for method in item:
            path = filled(template, values)
            if method == "get":
                answer = await client.get(path, headers=headers(assessor))
            elif template.endswith("/assessment") or template == "/v1/sign-out":
                continue  # what the assessor does (above), and ending its own session
            else:
                answer = await client.request(method, path, json={}, headers=headers(assessor, new_key()))
            if answer.status_code < 300:
                answered.append(template)
                if found := arm_revealed(
                    answer.text if "image" not in answer.headers["content-type"] else "", protocol, number
                ):
                    revealing[template] = found
            else:
                assert answer.status_code in (403, 404), (method, template, answer.status_code, answer.text)
                refused += answer.status_code == 403
    assert not revealing, revealing
    assert sorted(answered) == sorted(
        ["/healthz", "/readyz", "/v1/assessments", "/v1/sites/{site}/subjects/{subject}/photographs/{sha256}"]
    )
    refused_after = await read_pool.fetchval("SELECT count(*) FROM refused_requests WHERE role = 'outcome_assessor'")
    assert refused > 40 and refused_after - refused_before == refused, "every refusal kept with who asked"


@pytest.mark.parametrize(("language", "title"), [("zh-CN", "待评估照片"), ("en-GB", "Photographs to assess")])
async def test_the_assessors_pages_count_in_either_language_and_no_page_it_reaches_names_the_arm(
    browser: Browser,
    system: System,
    client: httpx.AsyncClient,
    store: EventStore,
    subject_ids: SubjectIds,
    protocol: ProtocolDefinition,
    read_pool: asyncpg.Pool,
    language: str,
    title: str,
) -> None:
    site, subject, _ = await photographed(client, store, subject_ids, protocol, read_pool, arm="FG_HT", visit="M1")
    number = await read_pool.fetchval("SELECT randomization_number FROM randomizations WHERE subject_id = $1", subject)

    page = await signed_in(browser, system, "outcome-assessor", language=language)
    await page.goto(f"{system.web_url}/assessments")
    assert await page.inner_text("h1") == title
    section = page.locator(f"section[data-subject='{subject}']")
    assert await section.locator("img").evaluate(LOADED_WIDTH) == 320
    await section.locator("[name=grafts_surviving]").fill("1100")
    await section.locator("[name=hair_density_per_cm2]").fill("39.5")
    async with page.expect_navigation():
        await section.locator("button[type=submit]").click()
    assert "1100" in await page.locator(f"section[data-subject='{subject}'] .assessed").inner_text()
    # Every page the assessor's links reach, and every page a site's staff would open, names nothing of the arm.
    reached = await walk(page, f"{system.web_url}/")
    tried = [f"/sites/{site}/subjects", f"/sites/{site}/subjects/{subject}", f"/sites/{site}/matrix", "/reports",
             "/worklist", "/audit", "/safety", f"/sites/{site}/subjects/{subject}/forms/procedure"]  # fmt: skip
    for path in tried:
        answer = await page.goto(f"{system.web_url}{path}")
        assert answer is not None and answer.status in (403, 404), (path, answer.status if answer else None)
        reached[path] = [await page.inner_text("body")]
    revealing = {
        url: found for url, texts in reached.items() if (found := arm_revealed(" ".join(texts), protocol, number))
    }
    assert not revealing, revealing
    await page.context.close()
