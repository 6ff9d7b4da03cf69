"""Through the running gateway and a bus with the generated permissions: what a leaked credential, a hostile
input or a stale token can no longer do."""

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import jwt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nats.js import JetStreamContext

from devstack.examples import serious_adverse_event
from services.gateway.auth import Role
from shared.contracts.attestation import CommandSigner, new_key_pair
from shared.contracts.commands import EXPORT_ALLOCATION_LIST, ExportRequest
from shared.runtime import bus
from shared.runtime.deadletters import dead_letters
from shared.runtime.projections import wait_for_checkpoint
from tests.conftest import Servers, SubjectIds
from tests.e2e.api import CONSENT, ELIGIBLE, ISSUER, SECRET, System, consented, headers, new_key, token

pytestmark = pytest.mark.e2e


def minted(**changes: Any) -> str:
    """A token signed with the gateway's real key, with whatever claims a careless issuer might put in it."""
    now = datetime.now(UTC)
    claims = {"iss": ISSUER, "sub": "sc-1", "jti": uuid.uuid4().hex, "role": "site_coordinator", "site": "NFH"}
    claims |= {"iat": now, "exp": now + timedelta(hours=1)} | changes
    return jwt.encode(claims, SECRET, algorithm="HS256", headers={"kid": "e2e"})


# --- A bus credential alone acts as nobody --------------------------------------------------------------


async def ask_for_the_allocation_list(servers: Servers, headers_: dict[str, str] | None) -> bytes:
    """As the gateway's bus user, without the gateway: the allocation list, claiming to be a statistician."""
    nc = await bus.connect(servers.nats_urls["gateway"], name="probe")
    try:
        request = ExportRequest(actor="probe", role="statistician", correlation_id="probe")
        reply = await nc.request(
            EXPORT_ALLOCATION_LIST, request.model_dump_json().encode(), timeout=3, headers=headers_
        )
        return bytes(reply.data)
    finally:
        await nc.close()


async def test_the_gateways_bus_credential_alone_gets_no_allocation_list(system: System, servers: Servers) -> None:
    assert await ask_for_the_allocation_list(servers, None) == b""
    forger = CommandSigner(new_key_pair("tests")[0])  # the right key id, not the gateway's key
    forged = forger.headers(
        EXPORT_ALLOCATION_LIST, b"x", actor="probe", role=Role.STATISTICIAN, actor_site=None, target_site=None
    )
    assert await ask_for_the_allocation_list(servers, forged) == b""


async def test_the_allocation_list_still_reaches_a_statistician_through_the_gateway(
    client: httpx.AsyncClient,
) -> None:
    listed = await client.get("/v1/randomization/allocation-list.csv", headers=headers(token(Role.STATISTICIAN)))
    assert listed.status_code == 200 and listed.text.count("\n") > 40
    refused = await client.get("/v1/randomization/allocation-list.csv", headers=headers(token(Role.MONITOR)))
    assert refused.status_code == 403


# --- Rights before the body; bounded claims; bounded query parameters ----------------------------------


async def test_a_malformed_body_without_a_token_is_401_and_for_another_site_403(client: httpx.AsyncClient) -> None:
    path = "/v1/sites/NFH/subjects/NFH-950/consent"
    json_headers = {"Content-Type": "application/json", "Idempotency-Key": new_key()}
    assert (await client.post(path, content=b"{", headers=json_headers)).status_code == 401
    other_site = headers(token(Role.SITE_COORDINATOR, "GZ2"), new_key()) | {"Content-Type": "application/json"}
    assert (await client.post(path, content=b"{", headers=other_site)).status_code == 403
    own_site = headers(token(Role.SITE_COORDINATOR, "NFH"), new_key()) | {"Content-Type": "application/json"}
    assert (await client.post(path, content=b"{", headers=own_site)).status_code == 422


@pytest.mark.parametrize("claim", ["sub", "jti"])
async def test_an_oversized_claim_is_401_and_leaves_no_key_in_flight(client: httpx.AsyncClient, claim: str) -> None:
    path, key = "/v1/sites/NFH/subjects/NFH-951/consent", new_key()
    oversized = await client.post(path, json=CONSENT, headers=headers(minted(**{claim: "x" * 150}), key))
    assert oversized.status_code == 401 and oversized.headers["content-type"] == "application/problem+json"
    again = await client.post(path, json=CONSENT, headers=headers(minted(**{claim: "x" * 150}), key))
    assert again.status_code == 401, "the key was never claimed: no 409 'in flight'"


async def test_a_token_living_ten_years_is_refused_and_one_naming_an_unknown_site_reaches_nothing(
    client: httpx.AsyncClient,
) -> None:
    now = datetime.now(UTC)
    decade = minted(role="monitor", site=None, iat=now, exp=now + timedelta(days=3650))
    assert (await client.get("/v1/sites/NFH/subjects", headers=headers(decade))).status_code == 401
    nowhere = minted(site="XYZ")
    assert (await client.get("/v1/sites/XYZ/subjects", headers=headers(nowhere))).status_code == 404
    assert (await client.get("/v1/sites/NFH/subjects", headers=headers(nowhere))).status_code == 403
    monitor = headers(token(Role.MONITOR))
    missing = await client.get("/v1/sites/XYZ/subjects", headers=monitor)
    assert missing.status_code == 404 and missing.json()["rule"] == "site.known"


@pytest.mark.parametrize(
    "query", ["since=0001-01-01T00:00:00%2B14:00", "until=9999-12-31T23:59:59-14:00", "since=2026-01-01T00:00:00"]
)
async def test_audit_trail_bounds_out_of_range_are_422(client: httpx.AsyncClient, query: str) -> None:
    answer = await client.get(f"/v1/reports/audit-trail.json?{query}", headers=headers(token(Role.DATA_MANAGER)))
    assert answer.status_code == 422 and answer.headers["content-type"] == "application/problem+json"


async def test_a_huge_exponent_is_refused_at_once_and_the_gateway_stays_responsive(
    client: httpx.AsyncClient, subject_ids: SubjectIds
) -> None:
    site, subject, bearer = await consented(client, subject_ids)
    started = time.monotonic()
    posted = client.post(
        f"/v1/sites/{site}/subjects/{subject}/screening",
        json=ELIGIBLE | {"hair_loss_area_fraction": "1e-6000000", "weight_kg": "1e-5000"},
        headers=headers(bearer, new_key()),
    )
    answer, health = await asyncio.gather(posted, client.get("/healthz"))
    assert answer.status_code == 422 and health.status_code == 200
    assert {e["field"] for e in answer.json()["errors"]} == {"body.hair_loss_area_fraction", "body.weight_kg"}
    assert time.monotonic() - started < 5, "parsing never runs away (a loose bound: the machine may be loaded)"


async def test_the_same_staff_code_at_two_sites_may_use_the_same_key(
    client: httpx.AsyncClient, subject_ids: SubjectIds
) -> None:
    key, answers = new_key(), []
    for site in ("NFH", "GZ2"):
        _, subject = await subject_ids.fresh(site)
        bearer = minted(sub="shared-code-7", site=site)
        path = f"/v1/sites/{site}/subjects/{subject}/consent"
        answers.append(await client.post(path, json=CONSENT, headers=headers(bearer, key)))
    assert [a.status_code for a in answers] == [201, 201], [a.text for a in answers]
    assert answers[0].json()["event_id"] != answers[1].json()["event_id"], "two people, two facts"


# --- Every fact accepted reaches every reader --------------------------------------------------------------

NASTY = st.one_of(
    st.text(max_size=40),
    st.dates().map(lambda d: d.isoformat()),
    st.builds(
        lambda d, hours: f"{d.isoformat()}T10:00:00{'+' if hours >= 0 else '-'}{abs(hours):02d}:00",
        st.dates(),
        st.integers(-14, 14),
    ),
    st.builds(lambda exponent: f"1e{exponent}", st.integers(-(10**7), 10**7)),
    st.integers(-(10**30), 10**30),
    st.none(),
)
FORMS: dict[str, tuple[str, dict[str, Any]]] = {
    "consent": ("consent", CONSENT),
    "screening": ("screening", ELIGIBLE),
    "adverse-event": ("adverse-events", serious_adverse_event()),
}


@settings(max_examples=45, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.sampled_from(sorted(FORMS)), data=st.data())
async def test_every_201_reaches_the_read_models_and_nothing_is_dead_lettered(
    client: httpx.AsyncClient,
    subject_ids: SubjectIds,
    read_pool: asyncpg.Pool,
    js: JetStreamContext,
    kind: str,
    data: st.DataObject,
) -> None:
    path, form = FORMS[kind]
    changed = data.draw(st.sampled_from(sorted(form)), label="field")
    posted = form | {changed: data.draw(NASTY, label="value")}
    if kind == "consent":
        site, subject = await subject_ids.fresh()
        bearer = token(Role.INVESTIGATOR, site)
    else:
        site, subject, bearer = await consented(client, subject_ids)
    answer = await client.post(
        f"/v1/sites/{site}/subjects/{subject}/{path}", json=posted, headers=headers(bearer, new_key())
    )
    assert answer.status_code in (201, 409, 422), answer.text
    if answer.status_code == 201:
        sequence = answer.json()["stream_sequence"]
        for read_model in ("audit_trail", "subjects", "safety", "screening_log"):
            await wait_for_checkpoint(read_pool, read_model, sequence, timeout=20)
        event_ids = [uuid.UUID(e) for e in answer.json()["event_ids"]]
        shown = await read_pool.fetchval("SELECT count(*) FROM audit_trail WHERE event_id = ANY($1)", event_ids)
        assert shown == len(event_ids), f"{changed}={posted[changed]!r}: accepted but not in the audit trail"
        view = await client.get(f"/v1/sites/{site}/subjects/{subject}", headers=headers(bearer))
        assert view.status_code == 200
    letters = await dead_letters(js)
    assert letters == [], f"{changed}={posted[changed]!r}: {letters}"
