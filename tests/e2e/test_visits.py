"""From surgery to the end of study through the real gateway; withdrawal; the missed-visit job run twice.

A subject randomized long ago is set up by appending its consent and randomization directly: the
gateway (rightly) only records what happens now, and a follow-up spans a year.
"""

import asyncio
import sys
from datetime import UTC, date, datetime, timedelta

import asyncpg
import httpx
import pytest

from devstack.examples import assessments as assessments  # re-exported: the forms other tests post
from devstack.examples import surgery as surgery
from devstack.servers import env_with
from services.gateway.auth import Role
from shared.contracts.events import (
    ProtocolDeviationRecorded,
    VisitMissed,
)
from shared.contracts.protocol import ProtocolDefinition
from shared.runtime.eventstore import EventStore, subject_history
from shared.runtime.projections import wait_for_checkpoint
from tests.conftest import SubjectIds
from tests.e2e.api import System, allocation, append, consent_on, headers, new_key, token

pytestmark = pytest.mark.e2e

TARGET_DAYS = {"W1": 7, "M1": 30, "M3": 90, "M6": 180, "M12": 365}


async def randomized_days_ago(
    store: EventStore, subject_ids: SubjectIds, protocol: ProtocolDefinition, days: int, arm: str
) -> tuple[str, str, date]:
    site, subject = await subject_ids.fresh()
    when = datetime.now(UTC) - timedelta(days=days)
    await append(store, site, subject, [(consent_on(when.date()), when), (allocation(site, arm), when)])
    return site, subject, protocol.local_date(site, when)


async def test_a_subject_goes_from_surgery_through_all_five_visits_to_completion(
    client: httpx.AsyncClient,
    store: EventStore,
    subject_ids: SubjectIds,
    protocol: ProtocolDefinition,
    read_pool: asyncpg.Pool,
) -> None:
    site, subject, randomized_on = await randomized_days_ago(store, subject_ids, protocol, 400, "FG_HT")
    bearer = token(Role.INVESTIGATOR, site)
    base = f"/v1/sites/{site}/subjects/{subject}"
    day0 = randomized_on + timedelta(days=10)
    operated = await client.post(
        f"{base}/procedures", json=surgery(day0, fat_graft=True), headers=headers(bearer, new_key())
    )
    assert operated.status_code == 201, operated.text
    last = operated
    for code, target in TARGET_DAYS.items():
        last = await client.post(
            f"{base}/visits/{code}", json=assessments(day0 + timedelta(days=target)), headers=headers(bearer, new_key())
        )
        assert last.status_code == 201, last.text
    after_end = await client.post(
        f"{base}/visits/M12", json=assessments(day0 + timedelta(days=366)), headers=headers(bearer, new_key())
    )
    assert after_end.status_code == 409 and after_end.json()["rule"] == "visit.once"
    unknown = await client.post(
        f"{base}/visits/M9", json=assessments(day0 + timedelta(days=270)), headers=headers(bearer, new_key())
    )
    assert unknown.status_code == 422 and unknown.json()["rule"] == "visit.code"
    await wait_for_checkpoint(read_pool, "subjects", last.json()["stream_sequence"])
    await wait_for_checkpoint(read_pool, "visits", last.json()["stream_sequence"])
    read = (await client.get(base, headers=headers(bearer))).json()
    assert read["state"] == "completed" and read["completed_on"] == (day0 + timedelta(days=365)).isoformat()
    assert [(v["visit"], v["status"], v["in_window"]) for v in read["visits"]] == [
        (code, "completed", True) for code in TARGET_DAYS
    ]
    assert {v["follicle_survival_pct"] for v in read["visits"]} == {"80.0"}
    events = (await store.load(subject_history(site, subject))).events
    assert not [e for e in events if isinstance(e.data, ProtocolDeviationRecorded)], "all on time, all per protocol"


async def test_the_wrong_arms_procedure_and_a_late_visit_are_recorded_with_deviations(
    client: httpx.AsyncClient, store: EventStore, subject_ids: SubjectIds, protocol: ProtocolDefinition
) -> None:
    site, subject, randomized_on = await randomized_days_ago(store, subject_ids, protocol, 120, "HT")
    bearer = token(Role.SITE_COORDINATOR, site)
    base = f"/v1/sites/{site}/subjects/{subject}"
    day0 = randomized_on + timedelta(days=45)
    assert (
        await client.post(f"{base}/procedures", json=surgery(day0, fat_graft=True), headers=headers(bearer, new_key()))
    ).status_code == 201
    late = await client.post(
        f"{base}/visits/W1", json=assessments(day0 + timedelta(days=12)), headers=headers(bearer, new_key())
    )
    assert late.status_code == 201
    events = (await store.load(subject_history(site, subject))).events
    deviations = sorted(e.data.code for e in events if isinstance(e.data, ProtocolDeviationRecorded))
    assert deviations == ["FAT_GRAFT_IN_HT_ARM", "SURGERY_AFTER_WINDOW", "VISIT_OUT_OF_WINDOW_W1"]


async def test_a_withdrawn_subjects_later_visit_is_409_but_safety_information_still_comes_in(
    client: httpx.AsyncClient, store: EventStore, subject_ids: SubjectIds, protocol: ProtocolDefinition
) -> None:
    site, subject, randomized_on = await randomized_days_ago(store, subject_ids, protocol, 60, "FG_HT")
    bearer = token(Role.INVESTIGATOR, site)
    base = f"/v1/sites/{site}/subjects/{subject}"
    day0 = randomized_on + timedelta(days=5)
    assert (
        await client.post(f"{base}/procedures", json=surgery(day0, fat_graft=True), headers=headers(bearer, new_key()))
    ).status_code == 201
    withdrawal = {
        "withdrawn_on": protocol.local_date(site, datetime.now(UTC)).isoformat(),
        "reason_category": "subject_decision",
        "decided_by": "subject",
    }
    assert (
        await client.post(f"{base}/withdrawal", json=withdrawal, headers=headers(bearer, new_key()))
    ).status_code == 201
    visit = await client.post(
        f"{base}/visits/M1", json=assessments(day0 + timedelta(days=30)), headers=headers(bearer, new_key())
    )
    assert visit.status_code == 409 and visit.json()["rule"] == "subject.withdrawn"
    adverse_event = {
        "term": "Donor site pain",
        "onset_date": protocol.local_date(site, datetime.now(UTC)).isoformat(),
        "site_aware_at": datetime.now(UTC).isoformat(),
        "grade": 1,
        "seriousness": [],
        "relationship": {"fat_graft": "possible", "hair_transplantation": "unlikely"},
        "action_taken": "none",
        "outcome": "recovering",
    }
    reported = await client.post(f"{base}/adverse-events", json=adverse_event, headers=headers(bearer, new_key()))
    assert reported.status_code == 201


async def test_the_missed_visit_job_run_twice_records_each_missed_visit_once(
    system: System, client: httpx.AsyncClient, store: EventStore, subject_ids: SubjectIds, protocol: ProtocolDefinition
) -> None:
    site, subject, randomized_on = await randomized_days_ago(store, subject_ids, protocol, 200, "FG_HT")
    bearer = token(Role.INVESTIGATOR, site)
    day0 = randomized_on + timedelta(days=10)  # today is day 190: W1, M1 and M3 closed; M6 still open
    operated = await client.post(
        f"/v1/sites/{site}/subjects/{subject}/procedures",
        json=surgery(day0, fat_graft=True),
        headers=headers(bearer, new_key()),
    )
    assert operated.status_code == 201
    job = [sys.executable, "-m", "services.visits", "missed-visits"]
    nats_url = system.processes.nats_urls.get("visits", system.processes.env["NATS_URL"])
    env = env_with(NATS_URL=nats_url, LOG_LEVEL="WARNING", PROTOCOL_FILE=system.processes.env["PROTOCOL_FILE"])
    for _ in range(2):
        run = await asyncio.create_subprocess_exec(*job, env=env, stdout=asyncio.subprocess.PIPE)
        out, _ = await asyncio.wait_for(run.communicate(), 120)
        assert run.returncode == 0, out
    events = (await store.load(subject_history(site, subject))).events
    missed = sorted(e.data.visit for e in events if isinstance(e.data, VisitMissed))
    assert missed == ["M1", "M3", "W1"]


async def test_a_corrected_withdrawal_date_moves_which_visits_are_no_longer_expected(
    client: httpx.AsyncClient,
    store: EventStore,
    subject_ids: SubjectIds,
    protocol: ProtocolDefinition,
    read_pool: asyncpg.Pool,
) -> None:
    site, subject, randomized_on = await randomized_days_ago(store, subject_ids, protocol, 60, "HT")
    bearer = token(Role.INVESTIGATOR, site)
    base = f"/v1/sites/{site}/subjects/{subject}"
    day0 = randomized_on + timedelta(days=5)
    assert (
        await client.post(f"{base}/procedures", json=surgery(day0, fat_graft=False), headers=headers(bearer, new_key()))
    ).status_code == 201
    withdrawal = {
        "withdrawn_on": (day0 + timedelta(days=20)).isoformat(),
        "reason_category": "subject_decision",
        "decided_by": "subject",
    }
    first = await client.post(f"{base}/withdrawal", json=withdrawal, headers=headers(bearer, new_key()))
    assert first.status_code == 201, first.text
    later = {
        **withdrawal,
        "withdrawn_on": (day0 + timedelta(days=40)).isoformat(),
        "reason": "the letter is dated later",
    }
    corrected = await client.post(
        f"{base}/withdrawal",
        json=later,
        headers=headers(bearer, new_key()) | {"If-Match": f'"{first.json()["event_id"]}"'},
    )
    assert corrected.status_code == 201, corrected.text
    await wait_for_checkpoint(read_pool, "visits", corrected.json()["stream_sequence"])
    await wait_for_checkpoint(read_pool, "subjects", corrected.json()["stream_sequence"])
    read = (await client.get(base, headers=headers(bearer))).json()
    assert read["withdrawn_on"] == later["withdrawn_on"]
    status = {v["visit"]: (v["status"], v["not_expected_reason"]) for v in read["visits"]}
    # M1's window (days 23 to 37) closed before the corrected withdrawal on day 40: expected, so missed, not excused.
    assert status["M1"][0] in ("scheduled", "missed")
    reason = f"withdrawn on {later['withdrawn_on']} (subject_decision)"
    assert [status[v] for v in ("M3", "M6", "M12")] == [("not_expected", reason)] * 3
