"""People signed in at a real OpenID Connect provider, through the gateway: their role and site from the
provider's groups, revocation from the next request on, a signature that needs a fresh sign-in, and the
protocol's delegation (the investigator's judgements are the investigator's)."""

import asyncio
from datetime import UTC, datetime

import asyncpg
import httpx

from devstack.identity import sign_in
from services.gateway.auth import Role
from shared.runtime.projections import wait_for_checkpoint
from tests.conftest import SubjectIds
from tests.e2e.api import (
    CONSENT,
    ELIGIBLE,
    ENTERED,
    LEAVER,
    REAUTHENTICATION_SECONDS,
    System,
    headers,
    new_key,
    token,
)


async def test_a_coordinator_signed_in_at_the_provider_records_for_their_site_only(
    client: httpx.AsyncClient, system: System, subject_ids: SubjectIds
) -> None:
    site, subject = await subject_ids.fresh("GZ2")
    coordinator = (await sign_in(system.identity_provider, "site-coordinator.gz2")).access_token
    recorded = await client.post(
        f"/v1/sites/{site}/subjects/{subject}/consent", json=CONSENT, headers=headers(coordinator, new_key())
    )
    assert recorded.status_code == 201, recorded.text
    assert (await client.get("/v1/sites/NFH/subjects", headers=headers(coordinator))).status_code == 403
    monitor = (await sign_in(system.identity_provider, "monitor")).access_token
    refused = await client.post(
        f"/v1/sites/{site}/subjects/{subject}/screening", json=ELIGIBLE, headers=headers(monitor, new_key())
    )
    assert refused.status_code == 403, refused.text


async def test_an_account_the_provider_gives_no_trial_role_is_403_and_a_forged_token_401(
    client: httpx.AsyncClient, system: System
) -> None:
    unknown = (await sign_in(system.identity_provider, "visitor.without.groups")).access_token
    answer = await client.get("/v1/sites/NFH/subjects", headers=headers(unknown))
    assert answer.status_code == 403 and "no trial role" in answer.json()["detail"], answer.text
    forged = unknown.rsplit(".", 1)[0] + ".c2lnbmF0dXJl"
    assert (await client.get("/v1/sites/NFH/subjects", headers=headers(forged))).status_code == 401


async def test_a_revoked_provider_account_is_refused_from_the_next_request_and_works_again_once_restored(
    client: httpx.AsyncClient, system: System, subject_ids: SubjectIds
) -> None:
    leaver = (await sign_in(system.identity_provider, LEAVER.login)).access_token
    assert (await client.get("/v1/sites/NFH/subjects", headers=headers(leaver))).status_code == 200
    change = {"user": LEAVER.login, "reason": "left the study team"}
    data_manager = (await sign_in(system.identity_provider, "data-manager")).access_token
    revoked = await client.post("/v1/access/revocations", json=change, headers=headers(data_manager, new_key()))
    assert revoked.status_code == 201, revoked.text
    try:
        refused = await client.get("/v1/sites/NFH/subjects", headers=headers(leaver))
        assert refused.status_code == 401 and refused.json()["detail"] == "access revoked"
        signed_in_again = (await sign_in(system.identity_provider, LEAVER.login)).access_token
        assert (await client.get("/v1/sites/NFH/subjects", headers=headers(signed_in_again))).status_code == 401
    finally:
        restored = await client.post("/v1/access/restorations", json=change, headers=headers(data_manager, new_key()))
    assert restored.status_code == 201, restored.text
    assert (await client.get("/v1/sites/NFH/subjects", headers=headers(leaver))).status_code == 200


async def test_a_signature_invalidated_by_a_correction_is_signed_again_only_after_a_fresh_sign_in(
    client: httpx.AsyncClient, system: System, subject_ids: SubjectIds, read_pool: asyncpg.Pool
) -> None:
    site, subject = await subject_ids.fresh("NFH")
    base = f"/v1/sites/{site}/subjects/{subject}"
    coordinator = token(Role.SITE_COORDINATOR, site)
    statement = {"meaning": "I confirm eligibility"}
    async with httpx.AsyncClient(timeout=10) as browser:  # the investigator's browser: the provider's session
        signed_in = (await sign_in(system.identity_provider, "investigator.nfh", http=browser)).access_token
        # The coordinator enters consent and screening; EX11 is the investigator's, who screens.
        for path, body, by in (("consent", CONSENT, coordinator), ("screening", ELIGIBLE, signed_in)):
            recorded = await client.post(f"{base}/{path}", json=body, headers=headers(by, new_key()))
            assert recorded.status_code == 201, recorded.text
        signed = await client.post(
            f"{base}/signatures/eligibility", json=statement, headers=headers(signed_in, new_key())
        )
        assert signed.status_code == 201, signed.text
        assert signed.json()["printed_name"] == "Investigator NFH"

        # Read models trail the record: the read says to wait for the signature.
        after = {"Read-After": str(signed.json()["stream_sequence"])}
        current = await client.get(f"{base}/forms/screening", headers=headers(coordinator) | after)
        assert current.status_code == 200, current.text
        corrected = await client.post(
            f"{base}/screening",
            json={**ENTERED, "weight_kg": 57, "reason": "weighed again: 57 kg"},
            headers=headers(coordinator, new_key()) | {"If-Match": current.headers["ETag"]},
        )
        assert corrected.status_code == 201, corrected.text
        await wait_for_checkpoint(read_pool, "data_management", corrected.json()["stream_sequence"])
        view = (await client.get(base, headers=headers(coordinator))).json()
        assert [s["status"] for s in view["signatures"]] == ["invalidated_by_change"]

        # The sign-in grows older than the protocol's window; a silent sign-in keeps its time, so it is refused.
        await asyncio.sleep(REAUTHENTICATION_SECONDS + 1)
        silent = (await sign_in(system.identity_provider, "investigator.nfh", http=browser)).access_token
        key = new_key()  # the page repeats the same request, under the same key, after the fresh sign-in
        stale = await client.post(f"{base}/signatures/eligibility", json=statement, headers=headers(silent, key))
        assert stale.status_code == 401 and stale.json()["rule"] == "signature.reauthentication", stale.text
        challenge = stale.headers["WWW-Authenticate"]
        assert f'max_age="{REAUTHENTICATION_SECONDS}"' in challenge, challenge

        # As RFC 9470 says: sign in again no older than max_age, repeat the request.
        fresh = (
            await sign_in(system.identity_provider, "investigator.nfh", http=browser, max_age=REAUTHENTICATION_SECONDS)
        ).access_token
        again = await client.post(f"{base}/signatures/eligibility", json=statement, headers=headers(fresh, key))
    assert again.status_code == 201, again.text
    authenticated = datetime.fromisoformat(again.json()["authenticated_at"])
    assert (datetime.now(UTC) - authenticated).total_seconds() < REAUTHENTICATION_SECONDS
    await wait_for_checkpoint(read_pool, "data_management", again.json()["stream_sequence"])
    view = (await client.get(base, headers=headers(coordinator))).json()
    assert [s["status"] for s in view["signatures"]] == ["invalidated_by_change", "valid"]
    assert view["signatures"][1]["covers"]["screening"] == corrected.json()["event_id"]


async def test_the_investigators_judgements_are_the_investigators_coordinators_enter_the_data(
    client: httpx.AsyncClient, system: System, subject_ids: SubjectIds, read_pool: asyncpg.Pool
) -> None:
    site, subject = await subject_ids.fresh("SZ3")
    base = f"/v1/sites/{site}/subjects/{subject}"
    coordinator = (await sign_in(system.identity_provider, "site-coordinator.sz3")).access_token
    investigator = (await sign_in(system.identity_provider, "investigator.sz3")).access_token
    assert (await client.post(f"{base}/consent", json=CONSENT, headers=headers(coordinator, new_key()))).is_success

    judged = await client.post(f"{base}/screening", json=ELIGIBLE, headers=headers(coordinator, new_key()))
    assert judged.status_code == 403, judged.text
    assert (judged.json()["rule"], judged.json()["field"]) == (
        "delegation.investigator_judgement",
        "investigator_judges_unsuitable",
    )
    entered = await client.post(f"{base}/screening", json=ENTERED, headers=headers(coordinator, new_key()))
    assert entered.status_code == 201 and not entered.json()["eligible"], entered.text
    assert {c["code"]: c["outcome"] for c in entered.json()["criteria"]}["EX11"] == "missing"
    confirmed = await client.post(
        f"{base}/screening",
        json=ELIGIBLE | {"reason": "EX11 judged by the investigator"},
        headers=headers(investigator, new_key()) | {"If-Match": f'"{entered.json()["event_id"]}"'},
    )
    assert confirmed.status_code == 201 and confirmed.json()["eligible"], confirmed.text

    aware = datetime.now(UTC)
    adverse_event = {
        "term": "Scalp pruritus",
        "onset_date": system.protocol.local_date(site, aware).isoformat(),
        "site_aware_at": aware.isoformat(),
        "grade": 1,
        "action_taken": "none",
        "outcome": "recovering",
    }
    causality = {"fat_graft": "unlikely", "hair_transplantation": "possible"}
    assessed_by_coordinator = await client.post(
        f"{base}/adverse-events",
        json=adverse_event | {"relationship": causality},
        headers=headers(coordinator, new_key()),
    )
    assert assessed_by_coordinator.status_code == 403, assessed_by_coordinator.text
    assert assessed_by_coordinator.json()["rule"] == "delegation.causality"
    reported = await client.post(f"{base}/adverse-events", json=adverse_event, headers=headers(coordinator, new_key()))
    assert reported.status_code == 201, reported.text
    await wait_for_checkpoint(read_pool, "safety", reported.json()["stream_sequence"])
    summary = await client.get("/v1/reports/adverse-events.json", headers=headers(token(Role.DATA_MANAGER)))
    assert summary.status_code == 200, summary.text
    assert any(count["related"] is None for count in summary.json()["adverse_events"]), "unassessed: unknown"
    follow_up = {"ae_id": reported.json()["ae_id"], "site_aware_at": aware.isoformat(), "relationship": causality}
    assessed = await client.post(
        f"{base}/adverse-events/follow-up", json=follow_up, headers=headers(investigator, new_key())
    )
    assert assessed.status_code == 201, assessed.text
