"""Concomitant medications and medical history, the logs the data dictionary declares: entered through the gateway
from consent, coded with the sponsor's dictionaries, exported as SDTM CM and MH; a medication the protocol forbids
opens its query and records its deviation, once."""

import csv
import io
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import pytest
from playwright.async_api import Browser

from devstack.examples import allocation
from services.gateway.auth import Role
from shared.contracts.events import EventEnvelope, EventMetadata, ProtocolDeviationRecorded, QueryOpened
from shared.readmodels.catalogue import ReadModel
from shared.runtime.eventstore import EventStore, subject_history
from shared.runtime.projections import wait_for_checkpoint
from tests.conftest import SubjectIds
from tests.e2e.api import System, consented, eligible_subject, headers, new_key, token
from tests.e2e.test_data_management import recorded
from tests.e2e.test_web import signed_in, submit

pytestmark = pytest.mark.e2e

MEDICATION = {"medication": "Cefalexin", "route": "oral", "indication": "Prophylaxis", "ongoing": True}


async def randomized(client: httpx.AsyncClient, store: EventStore, subject_ids: SubjectIds) -> tuple[str, str]:
    """A subject consented and screened eligible through the gateway, then allocated beside the concealed list."""
    site, subject, _ = await eligible_subject(client, subject_ids)
    history = await store.load(subject_history(site, subject))
    meta = EventMetadata("/trial/test", site, subject, "setup", "setup", "1.0")
    envelope = EventEnvelope.wrap(allocation(site, "HT"), meta, event_id=uuid4(), time=datetime.now(UTC))
    await store.append([envelope], subject_filter=history.subject_filter, expected_last_sequence=history.last_sequence)
    return site, subject


async def exported(client: httpx.AsyncClient, dataset: str) -> list[dict[str, Any]]:
    response = await client.get(f"/v1/reports/exports/{dataset}.csv", headers=headers(token(Role.DATA_MANAGER)))
    assert response.status_code == 200, response.text
    return list(csv.DictReader(io.StringIO(response.text)))


async def test_an_immunosuppressant_started_during_the_trial_opens_its_query_and_records_its_deviation(
    client: httpx.AsyncClient, store: EventStore, subject_ids: SubjectIds, read_pool: asyncpg.Pool, system: System
) -> None:
    site, subject = await randomized(client, store, subject_ids)
    base, bearer = f"/v1/sites/{site}/subjects/{subject}", token(Role.SITE_COORDINATOR, site)
    today = system.today(site)
    body = MEDICATION | {"medication": "Methotrexate", "indication": "Morphea", "start_date": today.isoformat()}
    entered = await client.post(f"{base}/logs/concomitant-medication", json=body, headers=headers(bearer, new_key()))
    assert entered.status_code == 201, entered.text
    entry = entered.json()["entry"]
    form = f"concomitant-medication-{entry}"

    deviation = await recorded(store, site, subject, lambda e: isinstance(e.data, ProtocolDeviationRecorded))
    query = await recorded(store, site, subject, lambda e: isinstance(e.data, QueryOpened))
    assert isinstance(deviation.data, ProtocolDeviationRecorded) and isinstance(query.data, QueryOpened)
    assert deviation.data.code == query.data.check == "PROHIBITED_VASODILATOR_IMMUNOSUPPRESSANT"
    assert (query.data.form, deviation.data.occurred_on) == (form, today)
    assert "Other immunosuppressants" in query.data.text, "named by the sponsor's dictionary's class"

    # Corrected to what the subject really takes: the query closes; what happened stays a deviation, once.
    await wait_for_checkpoint(read_pool, ReadModel.DATA_MANAGEMENT, query.sequence)
    current = await client.get(f"{base}/forms/{form}", headers=headers(bearer))
    assert current.status_code == 200, current.text
    corrected = await client.post(
        f"{base}/logs/concomitant-medication/{entry}",
        json=body | {"medication": "Hydroxychloroquine", "reason": "the prescription was misread"},
        headers=headers(bearer, new_key()) | {"If-Match": current.headers["ETag"]},
    )
    assert corrected.status_code == 201 and corrected.json()["entry"] == entry, corrected.text
    await recorded(store, site, subject, lambda e: e.data.event_type == "QueryClosed")
    history = (await store.load(subject_history(site, subject))).events
    assert [e.data.code for e in history if isinstance(e.data, ProtocolDeviationRecorded)] == [deviation.data.code]

    await wait_for_checkpoint(read_pool, ReadModel.SAFETY, history[-1].sequence)
    deviations = await client.get("/v1/reports/deviations.json", headers=headers(token(Role.DATA_MANAGER)))
    assert any(
        d["code"] == deviation.data.code and d["subject_id"] == subject for d in deviations.json()["deviations"]
    ), deviations.text


async def test_a_medical_history_entry_is_coded_linked_to_its_criterion_and_exported(
    client: httpx.AsyncClient, subject_ids: SubjectIds, read_pool: asyncpg.Pool
) -> None:
    site, subject, bearer = await consented(client, subject_ids)
    base = f"/v1/sites/{site}/subjects/{subject}"
    history_entry = {"condition": "Wound infection", "start_date": "2020-03-01", "ongoing": False,
                     "end_date": "2020-03-20", "criterion": "ex02"}  # fmt: skip
    entered = await client.post(f"{base}/logs/medical-history", json=history_entry, headers=headers(bearer, new_key()))
    assert entered.status_code == 201, entered.text
    uncoded = await client.post(
        f"{base}/logs/medical-history",
        json={"condition": "Childhood eczema", "ongoing": True},
        headers=headers(bearer, new_key()),
    )
    assert uncoded.status_code == 201, uncoded.text
    await wait_for_checkpoint(read_pool, ReadModel.DATA_MANAGEMENT, uncoded.json()["stream_sequence"])

    rows = [r for r in await exported(client, "MH") if r["USUBJID"].endswith(f"-{subject}")]
    assert [(r["MHTERM"], r["MHDECOD"], r["MHBODSYS"]) for r in rows] == [
        ("Wound infection", "Wound infection", "Infections and infestations"),
        ("Childhood eczema", "", ""),
    ]
    assert rows[0]["MHSPID"] == entered.json()["entry"] and rows[1]["MHENRTPT"] == "ONGOING"
    supp = {
        (r["IDVARVAL"], r["QNAM"]): r["QVAL"]
        for r in await exported(client, "SUPPMH")
        if r["USUBJID"].endswith(subject)
    }
    assert supp == {("1", "MHIECRIT"): "EX02", ("1", "MHCODST"): "CODED", ("2", "MHCODST"): "NOT CODED"}


async def test_an_entry_that_cannot_be_is_refused_naming_its_item_and_nothing_is_recorded(
    client: httpx.AsyncClient, subject_ids: SubjectIds, system: System
) -> None:
    site, subject = await subject_ids.fresh()
    base, bearer = f"/v1/sites/{site}/subjects/{subject}", token(Role.SITE_COORDINATOR, site)
    today = system.today(site)
    body = MEDICATION | {"start_date": today.isoformat()}
    before_consent = await client.post(
        f"{base}/logs/concomitant-medication", json=body, headers=headers(bearer, new_key())
    )
    assert before_consent.status_code == 409 and before_consent.json()["rule"] == "IN09", before_consent.text
    site, subject, bearer = await consented(client, subject_ids)
    base = f"/v1/sites/{site}/subjects/{subject}"
    ended_before = body | {"ongoing": False, "end_date": (today - timedelta(days=1)).isoformat()}
    refused = await client.post(
        f"{base}/logs/concomitant-medication", json=ended_before, headers=headers(bearer, new_key())
    )
    assert refused.status_code == 422 and refused.json()["rule"] == "form.end_after_start", refused.text
    assert refused.json()["field"] == "end_date"
    unknown = await client.post(
        f"{base}/logs/concomitant-medication/{uuid4()}",
        json=body | {"reason": "no such entry"},
        headers=headers(bearer, new_key()) | {"If-Match": f'"{uuid4()}"'},
    )
    assert unknown.status_code == 404, unknown.text
    bad_route = await client.post(
        f"{base}/logs/concomitant-medication", json=body | {"route": "by mouth"}, headers=headers(bearer, new_key())
    )
    assert bad_route.status_code == 422 and "route" in bad_route.text, bad_route.text


@pytest.mark.parametrize(
    ("language", "medication_title", "history_title"),
    [
        ("zh-CN", "合并用药: Cefalexin", "既往病史: Wound infection"),
        ("en-GB", "Concomitant medication: Cefalexin", "Medical history: Wound infection"),
    ],
)
async def test_a_coordinator_enters_a_medication_and_a_history_in_the_casebook_in_either_language(
    browser: Browser,
    system: System,
    client: httpx.AsyncClient,
    subject_ids: SubjectIds,
    language: str,
    medication_title: str,
    history_title: str,
) -> None:
    site, subject, _ = await consented(client, subject_ids)
    page = await signed_in(browser, system, f"site-coordinator.{site.lower()}", language=language)
    casebook = f"{system.web_url}/sites/{site}/subjects/{subject}"
    await page.goto(casebook)
    today = system.today(site).isoformat()
    for action, values in (
        ("record_concomitant_medication", {"medication": "Cefalexin", "indication": "Prophylaxis", "start_date": today,
                                           "route": "oral", "ongoing": "true"}),
        ("record_medical_history", {"condition": "Wound infection", "start_date": "2020-03-01", "ongoing": "false"}),
    ):  # fmt: skip
        form = page.locator(f"form[action$='{action}']")
        for name, value in values.items():
            field = form.locator(f"[name='{name}']")
            if await field.evaluate("el => el.tagName") == "SELECT":
                await field.select_option(value)
            else:
                await field.fill(value)
        await submit(page, action)
        await page.goto(casebook)
    listed = await page.locator("#forms tbody td:first-child a").all_inner_texts()
    assert medication_title in listed and history_title in listed, listed
    await page.click(f"#forms a:text-is('{medication_title}')")
    assert medication_title in await page.inner_text("h1")
    await page.context.close()
