"""Who may do what, cell by cell; the same key from fifty clients at once; who did it, recorded."""

import asyncio
import uuid

import asyncpg
import httpx
import pytest

from services.gateway.auth import Role, issue_token
from shared.runtime.eventstore import EventStore, subject_history
from shared.runtime.projections import wait_for_checkpoint
from tests.conftest import SubjectIds
from tests.e2e.api import CONSENT, ISSUER, SECRET, headers, new_key, token

pytestmark = pytest.mark.e2e

SITE_STAFF = {Role.SITE_COORDINATOR, Role.INVESTIGATOR}
READERS = {Role.MONITOR, Role.DATA_MANAGER, Role.STATISTICIAN}
SUBJECT = "/v1/sites/{site}/subjects/{site}-999"
ALERT = f"/v1/safety/alerts/{uuid.uuid4()}"
QUERY = f"{SUBJECT}/queries/{uuid.uuid4()}"
# Site staff read their own site's casebooks; monitors and data managers every site's.
CASEBOOK_READERS = SITE_STAFF | {Role.MONITOR, Role.DATA_MANAGER}

# The contract's access table, written out here independently of the gateway's own RIGHTS table.
# (method, path, who may, whether site roles are limited to their own site)
ACCESS: list[tuple[str, str, set[Role], bool]] = [
    *[
        ("POST", SUBJECT + form, SITE_STAFF, True)
        for form in (
            "/consent",
            "/consent/withdrawal",
            "/consent/refusal",
            "/screening",
            "/randomization",
            "/adverse-events",
            "/adverse-events/follow-up",
        )
    ],
    ("POST", SUBJECT + "/randomization/invalidation", {Role.DATA_MANAGER}, True),
    ("GET", "/v1/sites/{site}/subjects", CASEBOOK_READERS, True),
    ("GET", SUBJECT, CASEBOOK_READERS, True),
    ("GET", SUBJECT + "/forms/consent", CASEBOOK_READERS, True),
    ("POST", SUBJECT + "/forms/consent/verification", {Role.MONITOR}, True),
    ("POST", SUBJECT + "/queries", {Role.MONITOR, Role.DATA_MANAGER}, True),
    ("POST", QUERY + "/answer", SITE_STAFF, True),
    ("POST", QUERY + "/close", {Role.MONITOR, Role.DATA_MANAGER}, True),
    ("POST", QUERY + "/reopen", {Role.MONITOR, Role.DATA_MANAGER}, True),
    ("POST", SUBJECT + "/casebook/lock", {Role.DATA_MANAGER}, True),
    ("POST", SUBJECT + "/signatures/eligibility", {Role.INVESTIGATOR}, True),
    ("GET", "/v1/sites/{site}/signatures/to-sign", {Role.INVESTIGATOR}, True),
    ("POST", SUBJECT + "/casebook/unlock", {Role.DATA_MANAGER}, True),
    ("POST", "/v1/trial/database-lock", {Role.DATA_MANAGER}, False),
    ("POST", "/v1/access/revocations", {Role.DATA_MANAGER}, False),
    ("POST", "/v1/access/restorations", {Role.DATA_MANAGER}, False),
    ("GET", "/v1/safety/alerts", {Role.SAFETY_OFFICER}, False),
    ("GET", ALERT, {Role.SAFETY_OFFICER}, False),
    ("POST", ALERT + "/acknowledgement", {Role.SAFETY_OFFICER}, False),
    ("GET", "/v1/randomization/allocation-list.csv", {Role.STATISTICIAN}, False),
    *[
        ("GET", f"/v1/reports{report}", READERS, False)
        for report in (
            "",
            "/consort.json",
            "/consort.svg",
            "/enrollment.json",
            "/visit-compliance.json",
            "/deviations.json",
            "/primary-endpoint.json",
            "/endpoints.json",
            "/endpoints.svg",
            "/queries.json",
            "/sdv.json",
            "/sdv-worklist.json",
            "/signatures.json",
        )
    ],
    ("GET", "/v1/reports/adverse-events.json", READERS, False),
    ("GET", "/v1/reports/audit-trail.json", READERS, False),
    ("GET", "/v1/reports/exports/DM.csv", {Role.DATA_MANAGER, Role.STATISTICIAN}, False),
    ("GET", "/v1/reports/exports/ADSL.csv", {Role.DATA_MANAGER, Role.STATISTICIAN}, False),
    ("GET", "/v1/reports/exports/define.json", {Role.DATA_MANAGER, Role.STATISTICIAN}, False),
    ("GET", "/v1/reports/exports/odm.xml", {Role.DATA_MANAGER, Role.STATISTICIAN}, False),
    ("GET", "/v1/reports/exports/database-lock.json", {Role.DATA_MANAGER, Role.STATISTICIAN}, False),
]


def cells() -> list[tuple[str, str, Role, str, bool]]:
    """Every role on every endpoint, for its own site and for another."""
    out = []
    for method, path, allowed, per_site in ACCESS:
        for role in Role:
            for relation in ("own", "other") if role in SITE_STAFF else ("none",):
                may = role in allowed and not (per_site and relation == "other")
                out.append((method, path, role, relation, may))
    return out


@pytest.mark.parametrize(("method", "path", "role", "relation", "may"), cells())
async def test_access_matrix(
    client: httpx.AsyncClient, method: str, path: str, role: Role, relation: str, may: bool
) -> None:
    token_site = {"own": "NFH", "other": "GZ2", "none": None}[relation]
    url = path.format(site="NFH")
    response = await client.request(
        method, url, headers=headers(token(role, token_site), new_key()), json={} if method == "POST" else None
    )
    if may:
        assert response.status_code not in (401, 403), response.text
    else:
        assert response.status_code == 403, response.text
    assert response.status_code < 500
    anonymous = await client.request(method, url, headers={"Idempotency-Key": new_key()})
    assert anonymous.status_code == 401


async def test_an_expired_token_is_401(client: httpx.AsyncClient) -> None:
    expired = issue_token({"e2e": SECRET}, issuer=ISSUER, role=Role.MONITOR, site=None, hours=1e-9)
    await asyncio.sleep(0.01)
    response = await client.get("/v1/sites/NFH/subjects", headers=headers(expired))
    assert response.status_code == 401 and response.json()["detail"] == "token expired"


async def test_fifty_simultaneous_identical_posts_with_one_key_make_one_fact_and_fifty_identical_answers(
    client: httpx.AsyncClient, subject_ids: SubjectIds, store: EventStore
) -> None:
    site, subject = await subject_ids.fresh()
    bearer, key = token(Role.SITE_COORDINATOR, site), new_key()
    path = f"/v1/sites/{site}/subjects/{subject}/consent"
    responses = await asyncio.gather(
        *(client.post(path, json=CONSENT, headers=headers(bearer, key)) for _ in range(50))
    )
    assert {r.status_code for r in responses} == {201}
    assert len({r.content for r in responses}) == 1
    assert len((await store.load(subject_history(site, subject))).events) == 1


async def test_every_write_records_who_did_it_from_the_token_and_the_client_cannot_say_otherwise(
    client: httpx.AsyncClient, subject_ids: SubjectIds, store: EventStore
) -> None:
    site, subject = await subject_ids.fresh()
    signed = issue_token({"e2e": SECRET}, issuer=ISSUER, role=Role.INVESTIGATOR, site=site, hours=1, actor="inv-042")
    path = f"/v1/sites/{site}/subjects/{subject}/consent"
    impostor = await client.post(path, json=CONSENT | {"actor": "someone-else"}, headers=headers(signed, new_key()))
    assert impostor.status_code == 422 and impostor.json()["field"] == "body.actor"
    assert (await client.post(path, json=CONSENT, headers=headers(signed, new_key()))).status_code == 201
    [recorded] = (await store.load(subject_history(site, subject))).events
    envelope = recorded.envelope
    assert (envelope.actor, envelope.actorrole, envelope.actorsite) == ("inv-042", "investigator", site)
    assert envelope.actortoken and envelope.actortoken not in signed.split(".")[2]


async def test_subjects_are_listed_a_page_at_a_time_and_filtered_by_state(
    client: httpx.AsyncClient, subject_ids: SubjectIds, read_pool: asyncpg.Pool
) -> None:
    mine = set()
    for _ in range(3):
        site, subject = await subject_ids.fresh("SZ3")
        posted = await client.post(
            f"/v1/sites/{site}/subjects/{subject}/consent",
            json=CONSENT,
            headers=headers(token(Role.SITE_COORDINATOR, site), new_key()),
        )
        mine.add(subject)
    await wait_for_checkpoint(read_pool, "subjects", posted.json()["stream_sequence"])
    bearer, seen, after, pages = token(Role.MONITOR), [], "", 0
    while after is not None:
        page = (
            await client.get(f"/v1/sites/SZ3/subjects?limit=2{after and f'&after={after}'}", headers=headers(bearer))
        ).json()
        assert len(page["items"]) <= 2
        seen += [s["subject_id"] for s in page["items"]]
        after, pages = page["next_after"], pages + 1
    assert seen == sorted(set(seen)), "every subject once, in order"
    assert pages >= 2
    assert mine <= set(seen)
    consented = await client.get("/v1/sites/SZ3/subjects?state=consented&limit=200", headers=headers(bearer))
    assert mine <= {s["subject_id"] for s in consented.json()["items"]}
    assert all(s["state"] == "consented" for s in consented.json()["items"])
    bad = await client.get("/v1/sites/SZ3/subjects?state=sleeping", headers=headers(bearer))
    assert bad.status_code == 422 and bad.json()["field"] == "query.state"
