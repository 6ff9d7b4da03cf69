"""Randomization through the real gateway: the arm and number for sites, the list for statisticians only."""

import hashlib
import subprocess
import sys
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from devstack.servers import env_with
from services.gateway.auth import Role
from shared.contracts.events import RandomizationListCommitted
from shared.runtime.eventstore import EventStore, trial_history
from shared.runtime.projections import wait_for_checkpoint
from tests.conftest import SubjectIds
from tests.e2e.api import System, consented, eligible_subject, headers, new_key, token

pytestmark = pytest.mark.e2e


async def test_an_eligible_subject_gets_an_arm_and_a_number_and_nothing_that_reveals_the_list(
    client: httpx.AsyncClient, read_pool: asyncpg.Pool, subject_ids: SubjectIds
) -> None:
    site, subject, bearer = await eligible_subject(client, subject_ids)
    response = await client.post(
        f"/v1/sites/{site}/subjects/{subject}/randomization", json={}, headers=headers(bearer, new_key())
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {
        "event_id",
        "event_ids",
        "site",
        "subject",
        "stream_sequence",
        "arm",
        "randomization_number",
        "stratum",
    }
    assert body["arm"] in {"FG_HT", "HT"} and body["stratum"] == site and body["randomization_number"] >= 1
    await wait_for_checkpoint(read_pool, "subjects", body["stream_sequence"])
    read = (await client.get(f"/v1/sites/{site}/subjects/{subject}", headers=headers(bearer))).json()
    assert (read["state"], read["arm"], read["randomization_number"]) == (
        "randomized",
        body["arm"],
        body["randomization_number"],
    )


async def test_a_retry_returns_the_same_allocation_and_a_second_request_is_409(
    client: httpx.AsyncClient, subject_ids: SubjectIds
) -> None:
    site, subject, bearer = await eligible_subject(client, subject_ids)
    path, key = f"/v1/sites/{site}/subjects/{subject}/randomization", new_key()
    first = await client.post(path, json={}, headers=headers(bearer, key))
    again = await client.post(path, json={}, headers=headers(bearer, key))
    assert first.status_code == 201 and again.content == first.content
    second = await client.post(path, json={}, headers=headers(bearer, new_key()))
    assert second.status_code == 409 and second.json()["rule"] == "randomization.once"


async def test_an_ineligible_subject_is_refused_naming_the_rule(
    client: httpx.AsyncClient, subject_ids: SubjectIds
) -> None:
    site, subject, bearer = await consented(client, subject_ids)
    response = await client.post(
        f"/v1/sites/{site}/subjects/{subject}/randomization", json={}, headers=headers(bearer, new_key())
    )
    assert response.status_code == 409 and response.json()["rule"] == "screening.required"


async def test_only_statisticians_read_the_list_and_its_hash_is_the_recorded_commitment(
    client: httpx.AsyncClient, store: EventStore
) -> None:
    path = "/v1/randomization/allocation-list.csv"
    for role, site in ((Role.SITE_COORDINATOR, "NFH"), (Role.INVESTIGATOR, "NFH"), (Role.MONITOR, None)):
        assert (await client.get(path, headers=headers(token(role, site)))).status_code == 403
    exported = await client.get(path, headers=headers(token(Role.STATISTICIAN)))
    assert exported.status_code == 200 and exported.headers["content-type"].startswith("text/csv")
    [committed] = (await store.load(trial_history("NCT06646146", RandomizationListCommitted.event_type))).events
    assert isinstance(committed.data, RandomizationListCommitted)
    assert hashlib.sha256(exported.content).hexdigest() == committed.data.commitment
    assert committed.data.seed_kind == "test"


def test_the_openapi_allocation_answer_has_no_block_or_slot(system_openapi: dict[str, Any]) -> None:
    schemas = system_openapi["components"]["schemas"]
    assert set(schemas["RandomizationRecorded"]["properties"]) == {
        "event_id",
        "event_ids",
        "site",
        "subject",
        "stream_sequence",
        "arm",
        "randomization_number",
        "stratum",
    }


async def test_a_data_manager_invalidates_a_randomization_with_a_reason_and_sites_cannot(
    client: httpx.AsyncClient, read_pool: asyncpg.Pool, subject_ids: SubjectIds
) -> None:
    site, subject, bearer = await eligible_subject(client, subject_ids)
    randomized = await client.post(
        f"/v1/sites/{site}/subjects/{subject}/randomization", json={}, headers=headers(bearer, new_key())
    )
    assert randomized.status_code == 201
    path = f"/v1/sites/{site}/subjects/{subject}/randomization/invalidation"
    reason = {"reason": "randomized the wrong subject at the site"}
    assert (await client.post(path, json=reason, headers=headers(bearer, new_key()))).status_code == 403
    too_short = await client.post(path, json={"reason": "oops"}, headers=headers(token(Role.DATA_MANAGER), new_key()))
    assert too_short.status_code == 422 and too_short.json()["field"] == "body.reason"
    invalidated = await client.post(path, json=reason, headers=headers(token(Role.DATA_MANAGER), new_key()))
    assert invalidated.status_code == 201
    await wait_for_checkpoint(read_pool, "randomizations", invalidated.json()["stream_sequence"])
    row = await read_pool.fetchrow(
        "SELECT invalidated, invalidation_reason FROM randomizations WHERE subject_id = $1", subject
    )
    assert row is not None and (row["invalidated"], row["invalidation_reason"]) == (True, reason["reason"])
    again = await client.post(
        f"/v1/sites/{site}/subjects/{subject}/randomization", json={}, headers=headers(bearer, new_key())
    )
    assert again.status_code == 409 and again.json()["rule"] == "randomization.once"


def test_a_statistician_verifies_the_export_against_the_commitment_with_one_command(
    system: System, tmp_path: Path
) -> None:
    exported = httpx.get(
        f"{system.url}/v1/randomization/allocation-list.csv", headers=headers(token(Role.STATISTICIAN)), timeout=10
    ).content
    env = env_with(NATS_URL=system.processes.env["NATS_URL"])
    listed = tmp_path / "allocation-list.csv"
    listed.write_bytes(exported)
    verify = [sys.executable, "-m", "services.randomization", "verify", str(listed)]
    ok = subprocess.run(verify, env=env, capture_output=True, text=True, timeout=60)
    assert ok.returncode == 0 and ok.stdout.startswith("OK"), ok.stderr
    listed.write_bytes(exported.replace(b",FG_HT\n", b",HT\n", 1))
    tampered = subprocess.run(verify, env=env, capture_output=True, text=True, timeout=60)
    assert tampered.returncode == 1 and tampered.stdout.startswith("MISMATCH")
