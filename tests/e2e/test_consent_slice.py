"""The consent slice through the real gateway, with every service running as its own process."""

import json

import asyncpg
import httpx
import pytest
from nats.js import JetStreamContext

from devstack.servers import env_with
from devstack.stack import SERVICES, ServiceProcesses
from services.gateway.auth import Role, issue_token
from services.reporting.projections import SubjectsProjection
from shared.runtime.eventstore import EventStore, subject_history
from shared.runtime.projections import rebuild, wait_for_checkpoint
from tests.conftest import COMMAND_KEYS, Servers, SubjectIds
from tests.e2e.api import CONSENT as FORM
from tests.e2e.api import ISSUER, System, headers, new_key, token

pytestmark = pytest.mark.e2e


async def test_consent_is_recorded_and_read_back(
    client: httpx.AsyncClient, read_pool: asyncpg.Pool, subject_ids: SubjectIds
) -> None:
    site, subject = await subject_ids.fresh()
    bearer = token(Role.SITE_COORDINATOR, site)
    posted = await client.post(
        f"/v1/sites/{site}/subjects/{subject}/consent", json=FORM, headers=headers(bearer, new_key())
    )
    assert posted.status_code == 201, posted.text
    for read_model in ("subjects", "data_management"):
        await wait_for_checkpoint(read_pool, read_model, posted.json()["stream_sequence"])
    read = await client.get(f"/v1/sites/{site}/subjects/{subject}", headers=headers(bearer))
    assert read.status_code == 200
    [consent_form] = read.json()["forms"]
    assert consent_form.pop("recorded_at") == read.json()["last_event_at"]
    assert read.json() | {"last_event_at": None, "forms": [consent_form]} == {
        "subject_id": subject,
        "site": site,
        "state": "consented",
        "consent_form_version": "1.0",
        "consented_on": "2026-11-20",
        "consents": [{"version": "1.0", "signed_on": "2026-11-20"}],
        "consent_withdrawn_on": None,
        "consent_declined_on": None,
        "eligible": None,
        "screenings": 0,
        "last_screened_on": None,
        "screen_failure_reasons": [],
        "arm": None,
        "randomization_number": None,
        "randomization_invalidated": False,
        "randomized_on": None,
        "died_on": None,
        "surgery_date": None,
        "withdrawn_on": None,
        "withdrawal_reason": None,
        "completed_on": None,
        "casebook_locked_at": None,
        "last_event_type": "ConsentRecorded",
        "last_event_at": None,
        "visits": [],
        "adverse_events": [],
        "forms": [
            {
                "form": "consent",
                "version": posted.json()["event_id"],
                "sdv": "not_verified",
                "open_queries": 0,
                "protocol_version": "1.0",
                "entry": None,
            }
        ],
        "sdv": {
            "site": site,
            "subject_id": subject,
            "forms": 1,
            "verified": 0,
            "changed_since_verification": 0,
            "not_verified": 1,
            "verified_pct": 0.0,
        },
        "queries": [],
        "signatures": [],
        "photographs": [],
    }


async def test_a_retry_with_the_same_key_returns_the_first_answer_and_records_one_event(
    client: httpx.AsyncClient, store: EventStore, subject_ids: SubjectIds
) -> None:
    site, subject = await subject_ids.fresh()
    bearer, key = token(Role.INVESTIGATOR, site), new_key()
    path = f"/v1/sites/{site}/subjects/{subject}/consent"
    first = await client.post(path, json=FORM, headers=headers(bearer, key))
    again = await client.post(path, json=FORM, headers=headers(bearer, key))
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    history = await store.load(subject_history(site, subject))
    assert [str(e.envelope.id) for e in history.events] == [first.json()["event_id"]]
    assert history.events[0].envelope.actor == history.events[0].envelope.actor != ""


async def test_the_same_key_with_another_body_is_422(client: httpx.AsyncClient, subject_ids: SubjectIds) -> None:
    site, subject = await subject_ids.fresh()
    bearer, key = token(Role.SITE_COORDINATOR, site), new_key()
    path = f"/v1/sites/{site}/subjects/{subject}/consent"
    assert (await client.post(path, json=FORM, headers=headers(bearer, key))).status_code == 201
    reused = await client.post(path, json=FORM | {"obtained_by": "inv-02"}, headers=headers(bearer, key))
    assert reused.status_code == 422
    assert reused.json()["field"] == "Idempotency-Key"


async def test_a_second_consent_on_the_same_form_is_409_naming_the_rule(
    client: httpx.AsyncClient, subject_ids: SubjectIds
) -> None:
    site, subject = await subject_ids.fresh()
    bearer = token(Role.SITE_COORDINATOR, site)
    path = f"/v1/sites/{site}/subjects/{subject}/consent"
    assert (await client.post(path, json=FORM, headers=headers(bearer, new_key()))).status_code == 201
    second = await client.post(path, json=FORM, headers=headers(bearer, new_key()))
    assert second.status_code == 409
    assert second.headers["content-type"] == "application/problem+json"
    assert second.json()["rule"] == "consent.once_per_form_version"


async def test_no_token_is_401(client: httpx.AsyncClient) -> None:
    response = await client.post("/v1/sites/NFH/subjects/NFH-001/consent", json=FORM, headers=headers(None, new_key()))
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"


async def test_a_forged_token_is_401(client: httpx.AsyncClient) -> None:
    forged = issue_token({"e2e": "x" * 40}, issuer=ISSUER, role=Role.MONITOR, site=None, hours=1)
    assert (await client.get("/v1/sites/NFH/subjects/NFH-001", headers=headers(forged))).status_code == 401


async def test_another_sites_token_is_403(client: httpx.AsyncClient) -> None:
    bearer = token(Role.SITE_COORDINATOR, "GZ2")
    response = await client.post(
        "/v1/sites/NFH/subjects/NFH-001/consent", json=FORM, headers=headers(bearer, new_key())
    )
    assert response.status_code == 403
    assert (await client.get("/v1/sites/NFH/subjects/NFH-001", headers=headers(bearer))).status_code == 403


async def test_a_monitor_cannot_post_forms(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/v1/sites/NFH/subjects/NFH-001/consent", json=FORM, headers=headers(token(Role.MONITOR), new_key())
    )
    assert response.status_code == 403


async def test_a_malformed_form_is_422_naming_the_field(client: httpx.AsyncClient) -> None:
    bearer = token(Role.SITE_COORDINATOR, "NFH")
    response = await client.post(
        "/v1/sites/NFH/subjects/NFH-001/consent",
        json=FORM | {"signed_on": "yesterday"},
        headers=headers(bearer, new_key()),
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["field"] == "body.signed_on"
    assert problem["errors"][0]["rule"].startswith("date")


async def test_a_post_without_an_idempotency_key_is_422_naming_the_header(client: httpx.AsyncClient) -> None:
    bearer = token(Role.SITE_COORDINATOR, "NFH")
    response = await client.post("/v1/sites/NFH/subjects/NFH-001/consent", json=FORM, headers=headers(bearer))
    assert response.status_code == 422
    assert response.json()["field"] == "header.Idempotency-Key"


async def test_a_malformed_subject_id_is_422(client: httpx.AsyncClient) -> None:
    bearer = token(Role.SITE_COORDINATOR, "NFH")
    response = await client.post(
        "/v1/sites/NFH/subjects/john-smith/consent", json=FORM, headers=headers(bearer, new_key())
    )
    assert response.status_code == 422
    assert response.json()["field"] == "path.subject"


async def test_a_site_the_protocol_does_not_list_is_404(client: httpx.AsyncClient) -> None:
    bearer = token(Role.SITE_COORDINATOR, "ZZZ")
    response = await client.post(
        "/v1/sites/ZZZ/subjects/ZZZ-001/consent", json=FORM, headers=headers(bearer, new_key())
    )
    assert response.status_code == 404
    assert response.json()["rule"] == "site.known"


async def test_a_body_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    bearer = token(Role.SITE_COORDINATOR, "NFH")
    huge = json.dumps(FORM | {"obtained_by": "x" * 100_000})
    response = await client.post(
        "/v1/sites/NFH/subjects/NFH-001/consent",
        content=huge,
        headers=headers(bearer, new_key()) | {"Content-Type": "application/json"},
    )
    assert response.status_code == 413


async def test_openapi_describes_the_consent_endpoint_and_its_security(client: httpx.AsyncClient) -> None:
    document = (await client.get("/openapi.json")).json()
    operation = document["paths"]["/v1/sites/{site}/subjects/{subject}/consent"]["post"]
    assert {"201", "401", "403", "409", "422", "503"} <= set(operation["responses"])
    assert document["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


async def test_while_screening_is_down_the_gateway_answers_503_and_the_retry_succeeds_after(
    system: System, client: httpx.AsyncClient, store: EventStore, subject_ids: SubjectIds
) -> None:
    site, subject = await subject_ids.fresh()
    bearer, key = token(Role.SITE_COORDINATOR, site), new_key()
    path = f"/v1/sites/{site}/subjects/{subject}/consent"
    assert system.processes.stop("screening") == {"screening": 0}, "SIGTERM drains and exits cleanly"
    try:
        down = await client.post(path, json=FORM, headers=headers(bearer, key))
        assert down.status_code == 503
        assert down.headers["retry-after"]
        assert (await store.load(subject_history(site, subject))).events == ()
    finally:
        system.processes.start("screening")  # returns once the service says it is ready
    retried = await client.post(path, json=FORM, headers=headers(bearer, key))
    assert retried.status_code == 201, "ready means its handlers answer: the first retry after readiness lands"
    assert len((await store.load(subject_history(site, subject))).events) == 1


async def test_readiness_checks_nats_and_postgres(client: httpx.AsyncClient) -> None:
    assert (await client.get("/readyz")).json() == {"status": "ready"}
    assert (await client.get("/healthz")).status_code == 200


async def test_reporting_killed_mid_stream_catches_up_to_exactly_what_a_rebuild_gives(
    system: System, client: httpx.AsyncClient, read_pool: asyncpg.Pool, js: JetStreamContext, subject_ids: SubjectIds
) -> None:
    posted: list[httpx.Response] = []
    for i in range(8):
        if i == 4:
            system.processes.kill("reporting")  # SIGKILL: no draining, no goodbye
        site, subject = await subject_ids.fresh()
        path = f"/v1/sites/{site}/subjects/{subject}/consent"
        posted.append(
            await client.post(path, json=FORM, headers=headers(token(Role.SITE_COORDINATOR, site), new_key()))
        )
    assert [p.status_code for p in posted] == [201] * 8
    system.processes.start("reporting")
    await wait_for_checkpoint(read_pool, "subjects", max(p.json()["stream_sequence"] for p in posted), timeout=30)
    live = await read_pool.fetch("SELECT * FROM subjects ORDER BY subject_id")
    assert {p.json()["subject"] for p in posted} <= {r["subject_id"] for r in live}

    await rebuild([SubjectsProjection(system.protocol)], js, read_pool)
    assert await read_pool.fetch("SELECT * FROM subjects ORDER BY subject_id") == live


async def test_every_service_drains_and_exits_cleanly_on_sigterm(system: System) -> None:
    running = list(system.processes.processes)  # every service, and the web app beside them
    codes = system.processes.stop()
    system.processes.start(*running)
    assert codes == dict.fromkeys(running, 0) and set(SERVICES) < set(running)
    system.processes.wait_ready(system.url)


async def test_services_that_speak_only_nats_answer_health_probes(servers: Servers) -> None:
    env = env_with(NATS_URL=servers.nats_url, LOG_LEVEL="WARNING", **COMMAND_KEYS)
    processes = ServiceProcesses(env, nats_urls=servers.nats_urls)
    processes.start("screening")  # on a health port of its own; returns once /readyz answers 200
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{processes.health_ports['screening']}") as http:
            ready = await http.get("/readyz")
            assert ready.json() == {"status": "ready", "checks": {"nats": True, "handlers": True}}
            assert (await http.get("/healthz")).json() == {"status": "ok"}
            assert (await http.get("/elsewhere")).status_code == 404
    finally:
        assert processes.stop() == {"screening": 0}


async def test_a_read_after_ones_own_write_includes_it_and_one_beyond_the_record_is_refused(
    client: httpx.AsyncClient, subject_ids: SubjectIds
) -> None:
    site, subject = await subject_ids.fresh()
    bearer = token(Role.SITE_COORDINATOR, site)
    path = f"/v1/sites/{site}/subjects/{subject}"
    recorded = await client.post(f"{path}/consent", json=FORM, headers=headers(bearer, new_key()))
    assert recorded.status_code == 201, recorded.text
    sequence = recorded.json()["stream_sequence"]
    # Right after the answer, with its sequence: the read models have it (without, it may not be there yet).
    read = await client.get(path, headers=headers(bearer) | {"Read-After": str(sequence)})
    assert read.status_code == 200 and read.json()["state"] == "consented", read.text
    beyond = await client.get(path, headers=headers(bearer) | {"Read-After": str(sequence + 10**9)})
    assert beyond.status_code == 409 and beyond.json()["rule"] == "read_after.recorded", beyond.text
    # A report reads one's own writes too; and without a token, Read-After tells nothing of the record.
    after = {"Read-After": str(sequence)}
    trail = await client.get(
        "/v1/reports/audit-trail.json", params={"subject": subject}, headers=headers(token(Role.MONITOR)) | after
    )
    assert [e["event_type"] for e in trail.json()][-1:] == ["ConsentRecorded"], trail.text
    anonymous = await client.get(path, headers={"Read-After": str(sequence + 10**9)})
    assert anonymous.status_code == 401, anonymous.text
