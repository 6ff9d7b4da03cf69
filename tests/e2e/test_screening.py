"""Screening through the real gateway: consent first, every criterion explained, reasons in the read model."""

from typing import Any

import asyncpg
import httpx
import pytest

from services.gateway.auth import Role
from shared.runtime.projections import wait_for_checkpoint
from tests.conftest import SubjectIds
from tests.e2e.api import ELIGIBLE, ENTERED, consented, eligible_subject, headers, new_key, token

pytestmark = pytest.mark.e2e


async def test_a_consented_subject_meeting_every_criterion_is_eligible(
    client: httpx.AsyncClient, read_pool: asyncpg.Pool, subject_ids: SubjectIds
) -> None:
    site, subject, bearer = await consented(client, subject_ids)
    response = await client.post(
        f"/v1/sites/{site}/subjects/{subject}/screening", json=ELIGIBLE, headers=headers(bearer, new_key())
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["eligible"] is True and body["screening_number"] == 1 and body["bmi"] == "21.5"
    assert len(body["criteria"]) == 20
    assert {c["code"]: c["outcome"] for c in body["criteria"]}["IN09"] == "met"
    await wait_for_checkpoint(read_pool, "subjects", body["stream_sequence"])
    read = (await client.get(f"/v1/sites/{site}/subjects/{subject}", headers=headers(bearer))).json()
    assert (read["state"], read["eligible"], read["screen_failure_reasons"]) == ("eligible", True, [])


async def test_screening_before_consent_is_409_under_in09(client: httpx.AsyncClient, subject_ids: SubjectIds) -> None:
    site, subject = await subject_ids.fresh()
    response = await client.post(
        f"/v1/sites/{site}/subjects/{subject}/screening",
        json=ENTERED,
        headers=headers(token(Role.SITE_COORDINATOR, site), new_key()),
    )
    assert response.status_code == 409
    assert response.json()["rule"] == "IN09"


async def test_a_screen_failures_reasons_appear_in_the_read_model(
    client: httpx.AsyncClient, read_pool: asyncpg.Pool, subject_ids: SubjectIds
) -> None:
    site, subject, bearer = await consented(client, subject_ids)
    failing = ELIGIBLE | {"age_years": 17, "prednisolone_mg_per_day": "10.5", "scalp_infection": None}
    response = await client.post(
        f"/v1/sites/{site}/subjects/{subject}/screening", json=failing, headers=headers(bearer, new_key())
    )
    assert response.status_code == 201
    body = response.json()
    assert body["eligible"] is False
    outcomes = {c["code"]: (c["outcome"], c["value"]) for c in body["criteria"]}
    assert outcomes["IN07"] == ("not_met", "age 17")
    assert outcomes["EX10"] == ("met", "prednisolone 10.5 mg/day")
    assert outcomes["EX02"][0] == "missing"
    await wait_for_checkpoint(read_pool, "screening_log", body["stream_sequence"])
    await wait_for_checkpoint(read_pool, "subjects", body["stream_sequence"])
    subject_row = await read_pool.fetchrow(
        "SELECT state, screen_failure_reasons FROM subjects WHERE subject_id = $1", subject
    )
    assert subject_row is not None
    assert (subject_row["state"], sorted(subject_row["screen_failure_reasons"])) == (
        "screen_failed",
        ["EX02", "EX10", "IN07"],
    )
    blocking = await read_pool.fetch(
        "SELECT code, value FROM screening_criteria WHERE subject_id = $1 AND blocks ORDER BY code", subject
    )
    assert [(r["code"], r["value"]) for r in blocking] == [
        ("EX02", None),
        ("EX10", "prednisolone 10.5 mg/day"),
        ("IN07", "age 17"),
    ]


async def test_a_rescreen_supersedes_the_last_and_is_counted(
    client: httpx.AsyncClient, read_pool: asyncpg.Pool, subject_ids: SubjectIds
) -> None:
    site, subject, bearer = await consented(client, subject_ids)
    path = f"/v1/sites/{site}/subjects/{subject}/screening"
    first = await client.post(path, json=ELIGIBLE | {"scalp_infection": True}, headers=headers(bearer, new_key()))
    second = await client.post(path, json=ELIGIBLE, headers=headers(bearer, new_key()))
    assert (first.json()["eligible"], second.json()["eligible"]) == (False, True)
    assert second.json()["screening_number"] == 2
    await wait_for_checkpoint(read_pool, "subjects", second.json()["stream_sequence"])
    read = (await client.get(f"/v1/sites/{site}/subjects/{subject}", headers=headers(bearer))).json()
    assert (read["state"], read["screenings"]) == ("eligible", 2)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"height_cm": 30}, "body.height_cm"),
        ({"weight_kg": 900}, "body.weight_kg"),
        ({"age_years": 240}, "body.age_years"),
        ({"hair_loss_area_fraction": "3/2"}, "body.hair_loss_area_fraction"),
        ({"serology": {"hiv": "maybe"}}, "body.serology.hiv"),
    ],
)
async def test_impossible_values_are_422_naming_the_field_and_rule(
    client: httpx.AsyncClient, change: dict[str, Any], field: str
) -> None:
    response = await client.post(
        "/v1/sites/NFH/subjects/NFH-999/screening",
        json=ELIGIBLE | change,
        headers=headers(token(Role.SITE_COORDINATOR, "NFH"), new_key()),
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["field"] == field and problem["rule"]


async def test_a_date_after_the_screening_date_is_422_naming_the_field(
    client: httpx.AsyncClient, subject_ids: SubjectIds
) -> None:
    site, subject, bearer = await consented(client, subject_ids)
    response = await client.post(
        f"/v1/sites/{site}/subjects/{subject}/screening",
        json=ELIGIBLE | {"hair_loss_onset_date": "2026-11-25"},
        headers=headers(bearer, new_key()),
    )
    assert response.status_code == 422
    assert (response.json()["field"], response.json()["rule"]) == ("hair_loss_onset_date", "date.not_after_screening")


async def test_a_withdrawn_subject_cannot_be_screened(client: httpx.AsyncClient, subject_ids: SubjectIds) -> None:
    site, subject, bearer = await consented(client, subject_ids)
    withdrawal = {"withdrawn_on": "2026-11-21", "recorded_by": "inv-01"}
    withdrawn = await client.post(
        f"/v1/sites/{site}/subjects/{subject}/consent/withdrawal", json=withdrawal, headers=headers(bearer, new_key())
    )
    assert withdrawn.status_code == 201
    response = await client.post(
        f"/v1/sites/{site}/subjects/{subject}/screening", json=ELIGIBLE, headers=headers(bearer, new_key())
    )
    assert response.status_code == 409 and response.json()["rule"] == "consent.withdrawn"


async def test_a_correction_without_the_forms_version_is_asked_for_it(
    client: httpx.AsyncClient, subject_ids: SubjectIds
) -> None:
    site, subject, bearer = await eligible_subject(client, subject_ids)
    corrected = ELIGIBLE | {"weight_kg": 57, "reason": "weighed again: 57 kg"}
    response = await client.post(
        f"/v1/sites/{site}/subjects/{subject}/screening", json=corrected, headers=headers(bearer, new_key())
    )
    assert response.status_code == 428, response.text
    problem = response.json()
    assert (problem["rule"], problem["field"]) == ("correction.version", "If-Match"), problem
    assert "If-Match" in problem["detail"] and "forms/screening" in problem["detail"]
