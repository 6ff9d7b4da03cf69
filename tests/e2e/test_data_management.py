"""Data management through the gateway: queries, a correction with its reason and re-evaluation, source data
verification, the audit trail's old → new, and an edit check that opens a query and closes it on correction."""

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import pytest

from devstack.examples import serious_adverse_event
from services.gateway.auth import Role, issue_token
from shared.contracts.events import QueryClosed, QueryOpened, RecordedEvent
from shared.contracts.protocol import ProtocolDefinition
from shared.runtime.eventstore import EventStore, subject_history
from shared.runtime.projections import wait_for_checkpoint
from tests.conftest import SubjectIds
from tests.e2e.api import (
    CONSENT,
    ELIGIBLE,
    ENTERED,
    ISSUER,
    REAUTHENTICATION_SECONDS,
    SECRET,
    allocation,
    append,
    consent_on,
    headers,
    new_key,
    token,
)

pytestmark = pytest.mark.e2e


async def recorded(
    store: EventStore, site: str, subject: str, found: Callable[[RecordedEvent], bool], timeout: float = 30
) -> RecordedEvent:
    """The first event of the subject's history that `found` accepts, once a reaction has recorded it."""
    deadline = time.monotonic() + timeout
    while True:
        events = (await store.load(subject_history(site, subject))).events
        match = next((e for e in events if found(e)), None)
        if match is not None:
            return match
        assert time.monotonic() < deadline, f"nothing recorded on {subject} in {timeout:.0f}s"
        await asyncio.sleep(0.1)


async def form(client: httpx.AsyncClient, base: str, name: str, bearer: str) -> httpx.Response:
    response = await client.get(f"{base}/forms/{name}", headers=headers(bearer))
    assert response.status_code == 200, response.text
    return response


async def test_a_query_on_a_screening_weight_is_answered_corrected_reverified_and_closed(
    client: httpx.AsyncClient, subject_ids: SubjectIds, read_pool: asyncpg.Pool
) -> None:
    site, subject = await subject_ids.fresh()
    base = f"/v1/sites/{site}/subjects/{subject}"
    coordinator, monitor, data_manager = (
        token(Role.SITE_COORDINATOR, site),
        token(Role.MONITOR),
        token(Role.DATA_MANAGER),
    )
    for path, body, by in (("consent", CONSENT, coordinator), ("screening", ELIGIBLE, token(Role.INVESTIGATOR, site))):
        answer = await client.post(f"{base}/{path}", json=body, headers=headers(by, new_key()))
        assert answer.status_code == 201, answer.text
    await wait_for_checkpoint(read_pool, "data_management", answer.json()["stream_sequence"])

    first = await form(client, base, "screening", monitor)
    first_version = first.json()["version"]
    assert first.headers["ETag"] == f'"{first_version}"' and first.json()["sdv"] == "not_verified"
    verified = await client.post(
        f"{base}/forms/screening/verification", json={"version": first_version}, headers=headers(monitor, new_key())
    )
    assert verified.status_code == 201, verified.text
    opened = await client.post(
        f"{base}/queries",
        json={"form": "screening", "field": "weight_kg", "text": "Source says 43 kg, not 55."},
        headers=headers(monitor, new_key()),
    )
    assert opened.status_code == 201, opened.text
    query = opened.json()["query_id"]

    # Who may do what: the site answers, never closes; a monitor cannot answer; only the opener closes.
    refused = {
        "site closes": await client.post(
            f"{base}/queries/{query}/close", json={}, headers=headers(coordinator, new_key())
        ),
        "monitor answers": await client.post(
            f"{base}/queries/{query}/answer", json={"text": "fine"}, headers=headers(monitor, new_key())
        ),
        "another monitor closes": await client.post(
            f"{base}/queries/{query}/close", json={}, headers=headers(token(Role.MONITOR), new_key())
        ),
        "another site answers": await client.post(
            f"{base}/queries/{query}/answer",
            json={"text": "not ours"},
            headers=headers(token(Role.SITE_COORDINATOR, "SZ3" if site != "SZ3" else "GZ2"), new_key()),
        ),
    }
    assert {what: r.status_code for what, r in refused.items()} == dict.fromkeys(refused, 403)
    assert refused["another monitor closes"].json()["rule"] == "query.opener"
    unknown_field = await client.post(
        f"{base}/queries",
        json={"form": "screening", "field": "weight", "text": "?"},
        headers=headers(monitor, new_key()),
    )
    assert unknown_field.status_code == 422 and unknown_field.json()["rule"] == "query.field"

    answered = await client.post(
        f"{base}/queries/{query}/answer",
        json={"text": "Transcription error; corrected."},
        headers=headers(coordinator, new_key()),
    )
    assert answered.status_code == 201, answered.text
    correction = {**ENTERED, "weight_kg": 43, "reason": "transcription error: the scale read 43 kg"}
    corrected = await client.post(
        f"{base}/screening",
        json=correction,
        headers=headers(coordinator, new_key()) | {"If-Match": first.headers["ETag"]},
    )
    assert corrected.status_code == 201, corrected.text
    # Re-evaluated on the corrected form: BMI 16.8 fails IN06 and EX05.
    assert corrected.json()["eligible"] is False and corrected.json()["screening_number"] == 1
    stale = await client.post(
        f"{base}/screening",
        json=correction,
        headers=headers(coordinator, new_key()) | {"If-Match": first.headers["ETag"]},
    )
    assert stale.status_code == 412 and stale.json()["rule"] == "correction.current_version"
    assert stale.json()["current_version"] == corrected.json()["event_id"]
    assert stale.headers["ETag"] == f'"{corrected.json()["event_id"]}"'
    await wait_for_checkpoint(read_pool, "data_management", corrected.json()["stream_sequence"])

    second = await form(client, base, "screening", monitor)
    assert second.json()["sdv"] == "changed_since_verification" and second.json()["version"] != first_version
    worklist = (
        await client.get("/v1/reports/sdv-worklist.json", params={"site": site}, headers=headers(monitor))
    ).json()
    assert {"subject_id": subject, "form": "screening", "sdv": "changed_since_verification"}.items() <= next(
        item for item in worklist if item["subject_id"] == subject and item["form"] == "screening"
    ).items()
    reverified = await client.post(
        f"{base}/forms/screening/verification",
        json={"version": second.json()["version"]},
        headers=headers(monitor, new_key()),
    )
    closed = await client.post(
        f"{base}/queries/{query}/close", json={"text": "Matches source."}, headers=headers(monitor, new_key())
    )
    assert reverified.status_code == 201 and closed.status_code == 201, closed.text
    await wait_for_checkpoint(read_pool, "data_management", closed.json()["stream_sequence"])
    await wait_for_checkpoint(read_pool, "audit_trail", closed.json()["stream_sequence"])
    await wait_for_checkpoint(read_pool, "subjects", closed.json()["stream_sequence"])

    view = (await client.get(base, headers=headers(coordinator))).json()
    assert view["state"] == "screen_failed" and view["screen_failure_reasons"] == ["IN06", "EX05"]
    [thread] = view["queries"]
    assert thread["state"] == "closed" and thread["field"] == "weight_kg"
    assert [m["step"] for m in thread["messages"]] == ["opened", "answered", "closed"]
    assert {f["form"]: f["sdv"] for f in view["forms"]} == {"consent": "not_verified", "screening": "verified"}
    assert (view["sdv"]["forms"], view["sdv"]["verified"], view["sdv"]["verified_pct"]) == (2, 1, 50.0)

    trail = (
        await client.get("/v1/reports/audit-trail.json", params={"subject": subject}, headers=headers(data_manager))
    ).json()
    steps = [(e["event_type"], e["actor_role"]) for e in trail]
    assert steps == [
        ("ConsentRecorded", "site_coordinator"),
        ("SubjectScreened", "investigator"),
        ("FormVerified", "monitor"),
        ("QueryOpened", "monitor"),
        ("QueryAnswered", "site_coordinator"),
        ("SubjectScreened", "site_coordinator"),
        ("FormVerified", "monitor"),
        ("QueryClosed", "monitor"),
    ]
    correction_entry = trail[5]
    assert correction_entry["reason"] == correction["reason"]
    changes = {c["field"]: (c["old"], c["new"]) for c in correction_entry["changes"]}
    assert changes["form.weight_kg"] == ("55", "43") and changes["eligible"] == (True, False)
    assert changes["bmi"] == ("21.5", "16.8")
    # Each change names its question where a form asks it (a derived value, like the BMI, has none).
    labels = {c["field"]: c["label"] for c in correction_entry["changes"]}
    assert labels["form.weight_kg"] == {"en": "Weight", "zh": "体重"} and labels["bmi"] is None


def pruritus(onset: date, aware: datetime) -> dict[str, Any]:
    return {
        "term": "Scalp pruritus",
        "onset_date": onset.isoformat(),
        "site_aware_at": aware.isoformat(),
        "grade": 1,
        "seriousness": [],
        "action_taken": "none",
        "outcome": "recovering",
    }


async def test_an_adverse_event_corrected_to_serious_raises_its_sae_alert_then(
    client: httpx.AsyncClient, subject_ids: SubjectIds, read_pool: asyncpg.Pool, protocol: ProtocolDefinition
) -> None:
    site, subject = await subject_ids.fresh()
    base = f"/v1/sites/{site}/subjects/{subject}"
    coordinator = token(Role.SITE_COORDINATOR, site)
    consented = await client.post(f"{base}/consent", json=CONSENT, headers=headers(coordinator, new_key()))
    assert consented.status_code == 201, consented.text
    aware = datetime.now(UTC) - timedelta(hours=1)
    minor = pruritus(protocol.local_date(site, aware), aware)
    reported = await client.post(f"{base}/adverse-events", json=minor, headers=headers(coordinator, new_key()))
    assert reported.status_code == 201 and reported.json()["serious"] is False, reported.text
    await wait_for_checkpoint(read_pool, "data_management", reported.json()["stream_sequence"])
    current = await form(client, base, f"ae-{reported.json()['ae_id']}", coordinator)
    serious = {
        **minor,
        "grade": 3,
        "seriousness": ["hospitalization_or_prolongation"],
        "action_taken": "hospitalized",
        "reason": "the subject was admitted; left out of the first report",
    }
    corrected = await client.post(
        f"{base}/adverse-events",
        json=serious,
        headers=headers(coordinator, new_key()) | {"If-Match": current.headers["ETag"]},
    )
    assert corrected.status_code == 201 and corrected.json()["serious"] is True, corrected.text
    assert corrected.json()["ae_id"] == reported.json()["ae_id"]
    officer = token(Role.SAFETY_OFFICER)
    deadline = time.monotonic() + 30
    while not (
        alerts := [
            a
            for a in (await client.get("/v1/safety/alerts", headers=headers(officer))).json()
            if a["ae_id"] == reported.json()["ae_id"]
        ]
    ):
        assert time.monotonic() < deadline, "no SAE alert for the corrected adverse event"
        await asyncio.sleep(0.1)
    [alert] = alerts
    assert alert["subject_id"] == subject and alert["grade"] == 3 and not alert["late"]


async def test_an_edit_check_opens_a_query_on_an_adverse_event_and_closes_it_when_the_onset_is_corrected(
    client: httpx.AsyncClient, store: EventStore, subject_ids: SubjectIds, read_pool: asyncpg.Pool
) -> None:
    site, subject = await subject_ids.fresh()
    base = f"/v1/sites/{site}/subjects/{subject}"
    coordinator = token(Role.SITE_COORDINATOR, site)
    consent = await client.post(f"{base}/consent", json=CONSENT, headers=headers(coordinator, new_key()))
    assert consent.status_code == 201, consent.text
    signed_on = date.fromisoformat(CONSENT["signed_on"])
    adverse_event = pruritus(signed_on - timedelta(days=2), datetime.fromisoformat(f"{signed_on}T10:00:00+08:00"))
    reported = await client.post(f"{base}/adverse-events", json=adverse_event, headers=headers(coordinator, new_key()))
    assert reported.status_code == 201, reported.text
    ae_form = f"ae-{reported.json()['ae_id']}"

    raised = await recorded(store, site, subject, lambda e: isinstance(e.data, QueryOpened))
    assert isinstance(raised.data, QueryOpened)
    assert (raised.data.check, raised.data.form, raised.data.field) == (
        "AE_ONSET_BEFORE_CONSENT",
        ae_form,
        "onset_date",
    )
    assert raised.envelope.actor == "service:datamanagement"
    await wait_for_checkpoint(read_pool, "data_management", raised.sequence)
    report = await client.get("/v1/reports/queries.json", params={"site": site}, headers=headers(token(Role.MONITOR)))
    assert str(raised.data.query_id) in {q["query_id"] for q in report.json()["open"]}

    current = await form(client, base, ae_form, coordinator)
    fixed = {**adverse_event, "onset_date": signed_on.isoformat(), "reason": "onset misread from the source notes"}
    corrected = await client.post(
        f"{base}/adverse-events",
        json=fixed,
        headers=headers(coordinator, new_key()) | {"If-Match": current.headers["ETag"]},
    )
    assert corrected.status_code == 201, corrected.text
    assert corrected.json()["ae_id"] == reported.json()["ae_id"]
    resolved = await recorded(store, site, subject, lambda e: isinstance(e.data, QueryClosed))
    assert isinstance(resolved.data, QueryClosed) and resolved.data.query_id == raised.data.query_id
    assert resolved.envelope.actor == "service:datamanagement"


async def test_a_locked_casebook_refuses_a_visit_takes_an_sae_flagged_and_opens_again_only_with_a_reason(
    client: httpx.AsyncClient, store: EventStore, subject_ids: SubjectIds, read_pool: asyncpg.Pool
) -> None:
    site, subject = await subject_ids.fresh()
    randomized_at = datetime.now(UTC) - timedelta(days=20)
    await append(
        store, site, subject, [(consent_on(randomized_at.date()), randomized_at), (allocation(site), randomized_at)]
    )
    base = f"/v1/sites/{site}/subjects/{subject}"
    coordinator, data_manager = token(Role.SITE_COORDINATOR, site), token(Role.DATA_MANAGER)
    day0 = randomized_at.date() + timedelta(days=5)
    surgery = {
        "procedure_date": day0.isoformat(),
        "surgeon": "sur-01",
        "anaesthesia": "local",
        "recipient_area_cm2": 30,
        "follicular_units": 1500,
        "donor_site": "occipital",
        "fat_graft": {"fat_harvest_site": "abdomen", "harvested_fat_ml": 80, "ecm_svf_gel_ml": 10},
    }
    operated = await client.post(f"{base}/procedures", json=surgery, headers=headers(coordinator, new_key()))
    assert operated.status_code == 201, operated.text
    lock = await client.post(f"{base}/casebook/lock", json={}, headers=headers(data_manager, new_key()))
    assert lock.status_code == 201, lock.text

    visit = {
        "visit_date": (day0 + timedelta(days=7)).isoformat(),
        "hair_density_per_cm2": 40,
        "grafts_surviving": 1200,
        "satisfaction": 8,
        "mlossi": 1,
        "losdi": 2,
    }
    refused = await client.post(f"{base}/visits/W1", json=visit, headers=headers(coordinator, new_key()))
    assert refused.status_code == 423 and refused.json()["rule"] == "casebook.locked", refused.text
    query = {"form": "procedure", "text": "Recipient area in the notes is 32 cm²."}
    assert (
        await client.post(f"{base}/queries", json=query, headers=headers(token(Role.MONITOR), new_key()))
    ).status_code == 423
    sae = await client.post(
        f"{base}/adverse-events",
        json=serious_adverse_event(relationship=None),  # the causality is the investigator's, later
        headers=headers(coordinator, new_key()),
    )
    assert sae.status_code == 201 and sae.json()["casebook_locked"] is True, sae.text
    await wait_for_checkpoint(read_pool, "subjects", sae.json()["stream_sequence"])
    assert (await client.get(base, headers=headers(coordinator))).json()["casebook_locked_at"] is not None

    no_reason = await client.post(f"{base}/casebook/unlock", json={}, headers=headers(data_manager, new_key()))
    assert no_reason.status_code == 422 and no_reason.json()["field"] == "body.reason"
    unlocked = await client.post(
        f"{base}/casebook/unlock",
        json={"reason": "the W1 visit arrived after the lock"},
        headers=headers(data_manager, new_key()),
    )
    assert unlocked.status_code == 201, unlocked.text
    accepted = await client.post(f"{base}/visits/W1", json=visit, headers=headers(coordinator, new_key()))
    assert accepted.status_code == 201, accepted.text
    await wait_for_checkpoint(read_pool, "subjects", accepted.json()["stream_sequence"])
    assert (await client.get(base, headers=headers(coordinator))).json()["casebook_locked_at"] is None
    await wait_for_checkpoint(read_pool, "audit_trail", accepted.json()["stream_sequence"])
    trail = (
        await client.get("/v1/reports/audit-trail.json", params={"subject": subject}, headers=headers(data_manager))
    ).json()
    [unlock_entry] = [e for e in trail if e["event_type"] == "CasebookUnlocked"]
    assert (
        unlock_entry["reason"] == "the W1 visit arrived after the lock" and unlock_entry["actor_role"] == "data_manager"
    )


async def test_the_database_is_not_locked_while_a_casebook_is_open(client: httpx.AsyncClient) -> None:
    refused = await client.post(
        "/v1/trial/database-lock", json={}, headers=headers(token(Role.DATA_MANAGER), new_key())
    )
    assert refused.status_code == 409 and refused.json()["rule"] == "database.casebooks_locked", refused.text
    assert (
        await client.post("/v1/trial/database-lock", json={}, headers=headers(token(Role.MONITOR), new_key()))
    ).status_code == 403


def investigator(site: str, *, authenticated_minutes_ago: float = 0) -> str:
    """An investigator's token as the identity provider issues it after a sign-in that long ago."""
    return issue_token(
        {"e2e": SECRET},
        issuer=ISSUER,
        role=Role.INVESTIGATOR,
        site=site,
        hours=1,
        actor="inv-007",
        name="Dr Li Wei",
        authenticated_at=datetime.now(UTC) - timedelta(minutes=authenticated_minutes_ago),
    )


async def test_an_eligibility_signature_is_invalidated_by_a_correction_and_signed_again_after_a_fresh_sign_in(
    client: httpx.AsyncClient, subject_ids: SubjectIds, read_pool: asyncpg.Pool
) -> None:
    site, subject = await subject_ids.fresh()
    base = f"/v1/sites/{site}/subjects/{subject}"
    coordinator = token(Role.SITE_COORDINATOR, site)
    for path, body, by in (("consent", CONSENT, coordinator), ("screening", ELIGIBLE, investigator(site))):
        recorded = await client.post(f"{base}/{path}", json=body, headers=headers(by, new_key()))
        assert recorded.status_code == 201, recorded.text
    statement = {"meaning": "I confirm eligibility"}

    stale = await client.post(
        f"{base}/signatures/eligibility",
        json=statement,
        headers=headers(investigator(site, authenticated_minutes_ago=10), new_key()),
    )
    assert stale.status_code == 401 and stale.json()["rule"] == "signature.reauthentication", stale.text
    challenge = stale.headers["WWW-Authenticate"]
    assert (
        'error="insufficient_user_authentication"' in challenge and f'max_age="{REAUTHENTICATION_SECONDS}"' in challenge
    )
    unstated = await client.post(
        f"{base}/signatures/eligibility", json={"meaning": "ok"}, headers=headers(investigator(site), new_key())
    )
    assert unstated.status_code == 422 and unstated.json()["rule"] == "signature.meaning"
    by_coordinator = await client.post(
        f"{base}/signatures/eligibility", json=statement, headers=headers(coordinator, new_key())
    )
    assert by_coordinator.status_code == 403

    signed = await client.post(
        f"{base}/signatures/eligibility", json=statement, headers=headers(investigator(site), new_key())
    )
    assert signed.status_code == 201, signed.text
    assert signed.json()["printed_name"] == "Dr Li Wei" and signed.json()["signed_at_site"].endswith("+08:00")
    await wait_for_checkpoint(read_pool, "data_management", signed.json()["stream_sequence"])
    listed = await client.get(f"/v1/sites/{site}/signatures/to-sign", headers=headers(investigator(site)))
    assert subject not in {item["subject_id"] for item in listed.json()}

    current = await form(client, base, "screening", coordinator)
    correction = {**ENTERED, "weight_kg": 57, "reason": "weighed again: 57 kg, not 55"}
    corrected = await client.post(
        f"{base}/screening",
        json=correction,
        headers=headers(coordinator, new_key()) | {"If-Match": current.headers["ETag"]},
    )
    assert corrected.status_code == 201 and corrected.json()["eligible"], corrected.text
    await wait_for_checkpoint(read_pool, "data_management", corrected.json()["stream_sequence"])
    view = (await client.get(base, headers=headers(coordinator))).json()
    assert [s["status"] for s in view["signatures"]] == ["invalidated_by_change"]
    listed = await client.get(f"/v1/sites/{site}/signatures/to-sign", headers=headers(investigator(site)))
    assert {"subject_id": subject, "kind": "eligibility", "why": "changed_since_signed"} in (listed.json())

    again = await client.post(
        f"{base}/signatures/eligibility", json=statement, headers=headers(investigator(site), new_key())
    )
    assert again.status_code == 201 and again.json()["signature_id"] != signed.json()["signature_id"], again.text
    await wait_for_checkpoint(read_pool, "data_management", again.json()["stream_sequence"])
    view = (await client.get(base, headers=headers(coordinator))).json()
    assert [s["status"] for s in view["signatures"]] == ["invalidated_by_change", "valid"]
    assert view["signatures"][1]["covers"]["screening"] == corrected.json()["event_id"]


async def test_a_revoked_users_tokens_are_refused_from_the_answer_on_and_work_again_once_restored(
    client: httpx.AsyncClient, subject_ids: SubjectIds
) -> None:
    site, subject = await subject_ids.fresh()
    user = f"crc-{uuid4().hex[:8]}"
    started = datetime.now(UTC) - timedelta(seconds=5)
    leaver = issue_token({"e2e": SECRET}, issuer=ISSUER, role=Role.SITE_COORDINATOR, site=site, hours=1, actor=user)
    data_manager = token(Role.DATA_MANAGER)
    assert (await client.get(f"/v1/sites/{site}/subjects", headers=headers(leaver))).status_code == 200
    change = {"user": user, "reason": "left the study team today"}
    revoked = await client.post("/v1/access/revocations", json=change, headers=headers(data_manager, new_key()))
    assert revoked.status_code == 201, revoked.text
    refused = await client.post(
        f"/v1/sites/{site}/subjects/{subject}/consent", json=CONSENT, headers=headers(leaver, new_key())
    )
    assert refused.status_code == 401 and refused.json()["detail"] == "access revoked"
    assert (await client.get(f"/v1/sites/{site}/subjects", headers=headers(leaver))).status_code == 401
    restored = await client.post("/v1/access/restorations", json=change, headers=headers(data_manager, new_key()))
    assert restored.status_code == 201, restored.text
    assert (await client.get(f"/v1/sites/{site}/subjects", headers=headers(leaver))).status_code == 200
    since: dict[str, str | int] = {"since": started.isoformat(), "limit": 1000}
    # The audit trail is a read model of its own: read it once it includes the restoration.
    after = headers(data_manager) | {"Read-After": str(restored.json()["stream_sequence"])}
    trail = (await client.get("/v1/reports/audit-trail.json", params=since, headers=after)).json()
    changes = [(e["event_type"], e["reason"]) for e in trail if e["data"].get("user") == user]
    assert changes == [("UserAccessRevoked", change["reason"]), ("UserAccessRestored", change["reason"])]


@pytest.mark.parametrize(
    ("path", "body", "role"),
    [
        ("signatures/eligibility", {"meaning": "I confirm eligibility"}, Role.INVESTIGATOR),
        ("queries", {"form": "screening", "text": "Source?"}, Role.MONITOR),
        ("forms/screening/verification", {"version": "00000000-0000-0000-0000-000000000000"}, Role.MONITOR),
        ("casebook/lock", {}, Role.DATA_MANAGER),
    ],
)
async def test_an_unknown_subjects_records_are_404_whatever_is_asked_of_them(
    client: httpx.AsyncClient, subject_ids: SubjectIds, path: str, body: dict[str, str], role: Role
) -> None:
    site, subject = await subject_ids.fresh()
    bearer = token(role, site if role is Role.INVESTIGATOR else None)
    response = await client.post(
        f"/v1/sites/{site}/subjects/{subject}/{path}", json=body, headers=headers(bearer, new_key())
    )
    assert response.status_code == 404, response.text
    assert response.json()["rule"] == "subject.known", response.text
