"""The trial as the sites live it, through the gateway: each site's own date, refusals of consent, the end of
participation, consistent safety data, the screening window and the deviations report.

The system runs with two sites at the far ends of the day (KIR, UTC+14; PPG, UTC-11: `FAR_SITES`), where a
date taken from UTC instead of the site's zone is wrong most hours of the day.
"""

import csv
import io
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from devstack.examples import serious_adverse_event
from services.gateway.auth import Role
from shared.contracts.events import (
    ProtocolDeviationRecorded,
    SubjectScreened,
)
from shared.contracts.forms import ScreeningForm
from shared.runtime.eventstore import EventStore, subject_history
from shared.runtime.projections import wait_for_checkpoint
from tests.conftest import SubjectIds
from tests.e2e.api import (
    CONSENT,
    ELIGIBLE,
    ENTERED,
    System,
    allocation,
    append,
    consent_on,
    consented,
    headers,
    new_key,
    token,
)
from tests.e2e.test_visits import assessments, surgery

pytestmark = pytest.mark.e2e


async def on_the_sites_today(
    system: System, site: str, post: Callable[[date], Awaitable[httpx.Response]]
) -> tuple[date, httpx.Response]:
    """Post dated the site's today; once more if the site's day turned over meanwhile (a second's window)."""
    for _ in range(2):
        today = system.protocol.local_date(site, datetime.now(UTC))
        response = await post(today)
        if system.protocol.local_date(site, datetime.now(UTC)) == today:
            return today, response
    raise AssertionError("the site's day turned over twice during one request")


@pytest.mark.parametrize("site", ["KIR", "PPG"])
async def test_a_form_dated_the_sites_today_is_taken_and_the_sites_tomorrow_is_the_future(
    system: System, client: httpx.AsyncClient, subject_ids: SubjectIds, site: str
) -> None:
    _, subject = await subject_ids.fresh(site)
    bearer = token(Role.INVESTIGATOR, site)
    path = f"/v1/sites/{site}/subjects/{subject}/consent"

    async def consent(day: date) -> httpx.Response:
        form = CONSENT | {"signed_on": day.isoformat()}
        return await client.post(path, json=form, headers=headers(bearer, new_key()))

    _, tomorrow = await on_the_sites_today(system, site, lambda today: consent(today + timedelta(days=1)))
    assert tomorrow.status_code == 422, tomorrow.text
    assert (tomorrow.json()["rule"], tomorrow.json()["field"]) == ("date.not_future", "signed_on")
    _, today = await on_the_sites_today(system, site, consent)
    assert today.status_code == 201, today.text

    async def adverse_event(day: date) -> httpx.Response:
        form = serious_adverse_event(onset_date=day.isoformat(), site_aware_at=datetime.now(UTC).isoformat())
        return await client.post(
            f"/v1/sites/{site}/subjects/{subject}/adverse-events", json=form, headers=headers(bearer, new_key())
        )

    _, onset_today = await on_the_sites_today(system, site, adverse_event)
    assert onset_today.status_code == 201, onset_today.text


async def test_randomized_on_is_the_sites_date_so_a_surgery_on_day_30_is_on_time(
    system: System, client: httpx.AsyncClient, store: EventStore, subject_ids: SubjectIds, read_pool: asyncpg.Pool
) -> None:
    site, subject = await subject_ids.fresh("KIR")
    # 12:00 UTC is 02:00 the next day in Kiritimati: the site randomized on the later date.
    at = datetime.combine(datetime.now(UTC).date() - timedelta(days=60), time(12), UTC)
    randomized_on = at.date() + timedelta(days=1)
    await append(store, site, subject, [(consent_on(at.date()), at), (allocation(site), at)])
    bearer = token(Role.INVESTIGATOR, site)
    day30 = randomized_on + timedelta(days=30)
    operated = await client.post(
        f"/v1/sites/{site}/subjects/{subject}/procedures",
        json=surgery(day30, fat_graft=True),
        headers=headers(bearer, new_key()),
    )
    assert operated.status_code == 201, operated.text
    events = (await store.load(subject_history(site, subject))).events
    assert not [e for e in events if isinstance(e.data, ProtocolDeviationRecorded)], "day 30 is within the window"
    await wait_for_checkpoint(read_pool, "subjects", operated.json()["stream_sequence"])
    read = (await client.get(f"/v1/sites/{site}/subjects/{subject}", headers=headers(bearer))).json()
    assert read["randomized_on"] == randomized_on.isoformat()


async def test_a_refusal_of_consent_is_recorded_and_closes_the_door_to_screening(
    client: httpx.AsyncClient, subject_ids: SubjectIds, read_pool: asyncpg.Pool
) -> None:
    site, subject = await subject_ids.fresh()
    bearer = token(Role.SITE_COORDINATOR, site)
    base = f"/v1/sites/{site}/subjects/{subject}"
    refusal = {"declined_on": "2026-11-20", "recorded_by": "crc-01", "reason": "concerns_about_surgery"}
    declined = await client.post(f"{base}/consent/refusal", json=refusal, headers=headers(bearer, new_key()))
    assert declined.status_code == 201, declined.text
    again = await client.post(f"{base}/consent", json=CONSENT, headers=headers(bearer, new_key()))
    assert again.status_code == 409 and again.json()["rule"] == "consent.declined"
    screened = await client.post(f"{base}/screening", json=ENTERED, headers=headers(bearer, new_key()))
    assert screened.status_code == 409 and screened.json()["rule"] == "consent.declined"
    await wait_for_checkpoint(read_pool, "subjects", declined.json()["stream_sequence"])
    read = (await client.get(base, headers=headers(bearer))).json()
    assert (read["state"], read["consent_declined_on"]) == ("consent_declined", "2026-11-20")


@pytest.mark.parametrize("first", ["subject", "consent"])
async def test_consent_and_study_withdrawal_are_recorded_in_either_order(
    client: httpx.AsyncClient, store: EventStore, subject_ids: SubjectIds, first: str
) -> None:
    site, subject = await subject_ids.fresh()
    at = datetime.now(UTC) - timedelta(days=20)
    await append(store, site, subject, [(consent_on(at.date()), at), (allocation(site), at)])
    bearer = token(Role.INVESTIGATOR, site)
    base = f"/v1/sites/{site}/subjects/{subject}"
    yesterday = (datetime.now(UTC) - timedelta(days=1)).date().isoformat()
    forms: dict[str, tuple[str, dict[str, Any]]] = {
        "subject": (
            f"{base}/withdrawal",
            {"withdrawn_on": yesterday, "reason_category": "subject_decision", "decided_by": "subject"},
        ),
        "consent": (f"{base}/consent/withdrawal", {"withdrawn_on": yesterday, "recorded_by": "inv-01"}),
    }
    for kind in (first, *(k for k in forms if k != first)):
        path, form = forms[kind]
        response = await client.post(path, json=form, headers=headers(bearer, new_key()))
        assert response.status_code == 201, (kind, response.text)


async def test_after_a_withdrawal_and_after_a_death_the_later_visits_are_not_expected(
    client: httpx.AsyncClient, store: EventStore, subject_ids: SubjectIds, read_pool: asyncpg.Pool
) -> None:
    for ending in ("withdrawal", "death"):
        site, subject = await subject_ids.fresh()
        at = datetime.now(UTC) - timedelta(days=60)
        await append(store, site, subject, [(consent_on(at.date()), at), (allocation(site), at)])
        bearer = token(Role.INVESTIGATOR, site)
        base = f"/v1/sites/{site}/subjects/{subject}"
        day0 = at.date() + timedelta(days=5)  # today is day 55: W1 and M1 closed, M3 ahead
        operated = await client.post(
            f"{base}/procedures", json=surgery(day0, fat_graft=True), headers=headers(bearer, new_key())
        )
        assert operated.status_code == 201, operated.text
        w1 = await client.post(
            f"{base}/visits/W1", json=assessments(day0 + timedelta(days=7)), headers=headers(bearer, new_key())
        )
        assert w1.status_code == 201, w1.text
        today = (datetime.now(UTC) - timedelta(hours=12)).date().isoformat()
        if ending == "withdrawal":
            form = {"withdrawn_on": today, "reason_category": "subject_decision", "decided_by": "subject"}
            ended = await client.post(f"{base}/withdrawal", json=form, headers=headers(bearer, new_key()))
        else:
            form = serious_adverse_event(grade=5, seriousness=["death"], outcome="fatal", onset_date=today)
            ended = await client.post(f"{base}/adverse-events", json=form, headers=headers(bearer, new_key()))
        assert ended.status_code == 201, ended.text
        await wait_for_checkpoint(read_pool, "visits", ended.json()["stream_sequence"])
        visits = (await client.get(base, headers=headers(bearer))).json()["visits"]
        statuses = {v["visit"]: v["status"] for v in visits}
        # M1's window closed before the end: it was missed (so recorded by the next missed-visit check).
        assert statuses.pop("M1") in ("scheduled", "missed")
        assert statuses == {"W1": "completed", "M3": "not_expected", "M6": "not_expected", "M12": "not_expected"}
        reasons = {v["not_expected_reason"].split(" on ")[0] for v in visits if v["status"] == "not_expected"}
        assert reasons == {"withdrawn" if ending == "withdrawal" else "died"}


@pytest.mark.parametrize(
    ("changes", "status", "rule", "field"),
    [
        ({"grade": 3, "outcome": "fatal", "seriousness": []}, 422, "ae.death_consistent", "grade"),
        ({"grade": 1, "outcome": "recovered", "seriousness": ["death"]}, 422, "ae.death_consistent", "outcome"),
        ({"action_taken": "hospitalized", "seriousness": []}, 201, None, None),
    ],
)
async def test_seriousness_agrees_with_what_the_form_says(
    client: httpx.AsyncClient,
    subject_ids: SubjectIds,
    changes: dict[str, Any],
    status: int,
    rule: str | None,
    field: str | None,
) -> None:
    site, subject, bearer = await consented(client, subject_ids)
    path = f"/v1/sites/{site}/subjects/{subject}/adverse-events"
    response = await client.post(path, json=serious_adverse_event(**changes), headers=headers(bearer, new_key()))
    assert response.status_code == status, response.text
    if rule:
        assert (response.json()["rule"], response.json()["field"]) == (rule, field)
    else:
        body = response.json()
        assert body["serious"] and body["derived_seriousness"] == ["hospitalization_or_prolongation"]


async def test_a_follow_up_aware_before_the_onset_is_refused_as_the_report_would_be(
    client: httpx.AsyncClient, subject_ids: SubjectIds
) -> None:
    site, subject, bearer = await consented(client, subject_ids)
    base = f"/v1/sites/{site}/subjects/{subject}/adverse-events"
    reported = await client.post(
        base, json=serious_adverse_event(grade=2, seriousness=[]), headers=headers(bearer, new_key())
    )
    assert reported.status_code == 201, reported.text
    follow_up = {
        "ae_id": reported.json()["ae_id"],
        "site_aware_at": (datetime.now(UTC) - timedelta(days=39)).isoformat(),
        "grade": 3,
    }
    refused = await client.post(f"{base}/follow-up", json=follow_up, headers=headers(bearer, new_key()))
    assert refused.status_code == 422 and refused.json()["rule"] == "ae.aware_after_onset", refused.text


async def test_a_suspended_sites_adverse_events_are_taken_while_its_enrolment_is_refused(
    client: httpx.AsyncClient, store: EventStore, subject_ids: SubjectIds
) -> None:
    site, subject = await subject_ids.fresh("XSP")
    at = datetime.now(UTC) - timedelta(days=20)
    await append(store, site, subject, [(consent_on(at.date()), at)])
    bearer = token(Role.INVESTIGATOR, site)
    base = f"/v1/sites/{site}/subjects/{subject}"
    reported = await client.post(
        f"{base}/adverse-events", json=serious_adverse_event(), headers=headers(bearer, new_key())
    )
    assert reported.status_code == 201, reported.text
    assert reported.json()["site_status"] == "suspended"
    _, other = await subject_ids.fresh("XSP")
    refused = await client.post(
        f"/v1/sites/{site}/subjects/{other}/consent", json=CONSENT, headers=headers(bearer, new_key())
    )
    assert refused.status_code == 409 and refused.json()["rule"] == "site.active"


async def test_a_surgery_on_the_screening_day_is_a_deviation_listed_in_the_report_and_the_dv_export(
    system: System, client: httpx.AsyncClient, store: EventStore, subject_ids: SubjectIds, read_pool: asyncpg.Pool
) -> None:
    site, subject = await subject_ids.fresh()
    at = datetime.now(UTC) - timedelta(days=10)
    day = system.protocol.local_date(site, at)  # screened, randomized and operated on the same day
    form = ScreeningForm.model_validate(ELIGIBLE | {"screening_date": day})
    screening = SubjectScreened(screening_number=1, screening_date=day, eligible=True, bmi=None, criteria=(), form=form)
    await append(store, site, subject, [(consent_on(day), at), (screening, at), (allocation(site, "HT"), at)])
    bearer = token(Role.INVESTIGATOR, site)
    operated = await client.post(
        f"/v1/sites/{site}/subjects/{subject}/procedures",
        json=surgery(day, fat_graft=False),
        headers=headers(bearer, new_key()),
    )
    assert operated.status_code == 201, operated.text
    await wait_for_checkpoint(read_pool, "safety", operated.json()["stream_sequence"])
    reader = headers(token(Role.DATA_MANAGER))
    report = (await client.get("/v1/reports/deviations.json", headers=reader)).json()
    mine = [(d["kind"], d["occurred_on"], d["recorded_on"]) for d in report["deviations"] if d["subject_id"] == subject]
    today = system.protocol.local_date(site, datetime.now(UTC)).isoformat()
    # It happened on the surgery's day, ten days before it was entered.
    assert mine == [("SCREENING_OUTSIDE_DAYS_BEFORE_SURGERY", day.isoformat(), today)]
    exported = (await client.get("/v1/reports/exports/DV.csv", headers=reader)).text
    [row] = [r for r in csv.DictReader(io.StringIO(exported)) if r["USUBJID"].endswith(f"-{subject}")]
    assert (row["DVDECOD"], row["DVSTDTC"], row["DVSTDY"]) == ("SCREENING_OUTSIDE_DAYS_BEFORE_SURGERY", str(day), "1")


async def test_consort_counts_a_screen_failure_once_by_its_first_failed_criterion_and_every_criterion_beside(
    client: httpx.AsyncClient, subject_ids: SubjectIds, read_pool: asyncpg.Pool
) -> None:
    reader = headers(token(Role.DATA_MANAGER))
    before = (await client.get("/v1/reports/consort.json", headers=reader)).json()
    site, subject, bearer = await consented(client, subject_ids)
    failing = ELIGIBLE | {"age_years": 61, "pregnant": True}  # IN07 and EX04: inclusion comes first
    screened = await client.post(
        f"/v1/sites/{site}/subjects/{subject}/screening", json=failing, headers=headers(bearer, new_key())
    )
    assert screened.status_code == 201 and not screened.json()["eligible"], screened.text
    await wait_for_checkpoint(read_pool, "screening_log", screened.json()["stream_sequence"])
    await wait_for_checkpoint(read_pool, "subjects", screened.json()["stream_sequence"])
    after = (await client.get("/v1/reports/consort.json", headers=reader)).json()

    def grew(box: str, code: str) -> int:
        return int(after[box].get(code, 0)) - int(before[box].get(code, 0))

    assert (grew("excluded_by_criterion", "IN07"), grew("excluded_by_criterion", "EX04")) == (1, 0)
    assert (grew("failed_criteria", "IN07"), grew("failed_criteria", "EX04")) == (1, 1)
    assert after["not_meeting_criteria"] - before["not_meeting_criteria"] == 1
    assert sum(after["excluded_by_criterion"].values()) == after["not_meeting_criteria"]
    assert after["assessed_for_eligibility"] == after["excluded"] + after["randomized"]
