"""People signed in at a real OpenID Connect provider, through the gateway: their role and site from the
provider's groups, revocation from the next request on, and a signature that needs a fresh sign-in."""

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
    for path, body in (("consent", CONSENT), ("screening", ELIGIBLE)):
        recorded = await client.post(f"{base}/{path}", json=body, headers=headers(coordinator, new_key()))
        assert recorded.status_code == 201, recorded.text
    statement = {"meaning": "I confirm eligibility"}
    async with httpx.AsyncClient(timeout=10) as browser:  # the investigator's browser: the provider's session
        signed_in = (await sign_in(system.identity_provider, "investigator.nfh", http=browser)).access_token
        signed = await client.post(
            f"{base}/signatures/eligibility", json=statement, headers=headers(signed_in, new_key())
        )
        assert signed.status_code == 201, signed.text
        assert signed.json()["printed_name"] == "Investigator NFH"

        current = await client.get(f"{base}/forms/screening", headers=headers(coordinator))
        corrected = await client.post(
            f"{base}/screening",
            json={**ELIGIBLE, "weight_kg": 57, "reason": "weighed again: 57 kg"},
            headers=headers(coordinator, new_key()) | {"If-Match": current.headers["ETag"]},
        )
        assert corrected.status_code == 201, corrected.text
        await wait_for_checkpoint(read_pool, "data_management", corrected.json()["stream_sequence"])
        view = (await client.get(base, headers=headers(coordinator))).json()
        assert [s["status"] for s in view["signatures"]] == ["invalidated_by_change"]

        # The sign-in grows older than the protocol's window; a silent sign-in keeps its time, so it is refused.
        await asyncio.sleep(REAUTHENTICATION_SECONDS + 1)
        silent = (await sign_in(system.identity_provider, "investigator.nfh", http=browser)).access_token
        stale = await client.post(f"{base}/signatures/eligibility", json=statement, headers=headers(silent, new_key()))
        assert stale.status_code == 401 and stale.json()["rule"] == "signature.reauthentication", stale.text
        challenge = stale.headers["WWW-Authenticate"]
        assert f'max_age="{REAUTHENTICATION_SECONDS}"' in challenge, challenge

        # As RFC 9470 says: sign in again no older than max_age, repeat the request.
        fresh = (
            await sign_in(system.identity_provider, "investigator.nfh", http=browser, max_age=REAUTHENTICATION_SECONDS)
        ).access_token
        again = await client.post(f"{base}/signatures/eligibility", json=statement, headers=headers(fresh, new_key()))
    assert again.status_code == 201, again.text
    authenticated = datetime.fromisoformat(again.json()["authenticated_at"])
    assert (datetime.now(UTC) - authenticated).total_seconds() < REAUTHENTICATION_SECONDS
    await wait_for_checkpoint(read_pool, "data_management", again.json()["stream_sequence"])
    view = (await client.get(base, headers=headers(coordinator))).json()
    assert [s["status"] for s in view["signatures"]] == ["invalidated_by_change", "valid"]
    assert view["signatures"][1]["covers"]["screening"] == corrected.json()["event_id"]
