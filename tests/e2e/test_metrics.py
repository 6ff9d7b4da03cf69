"""Every service's /metrics, scraped as Prometheus would, after a consent and an SAE through the gateway."""

import asyncio
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bench.safety import server_timing
from devstack.examples import CONSENT, serious_adverse_event
from devstack.stack import SERVICES
from services.gateway.auth import Role
from tests.conftest import SubjectIds
from tests.e2e.api import System, consented, headers, new_key, token

pytestmark = pytest.mark.e2e

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(system: System, service: str) -> Samples:
    async with httpx.AsyncClient(timeout=5) as http:
        response = await http.get(system.processes.metrics_url(service))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum over every series of `name` carrying these labels (0 if none)."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


async def eventually(system: System, service: str, check: Any, timeout: float = 15) -> Samples:
    async with asyncio.timeout(timeout):
        while not check(samples := await scrape(system, service)):
            await asyncio.sleep(0.1)
    return samples


async def test_every_service_exposes_what_operations_watch(
    system: System, client: httpx.AsyncClient, subject_ids: SubjectIds
) -> None:
    site, subject, bearer = await consented(client, subject_ids)
    reported = await client.post(
        f"/v1/sites/{site}/subjects/{subject}/adverse-events",
        json=serious_adverse_event(),
        headers=headers(bearer, new_key()),
    )
    assert reported.status_code == 201, reported.text

    gateway = await scrape(system, "gateway")
    consent_route = "/v1/sites/{site}/subjects/{subject}/consent"
    assert value(gateway, "trial_http_requests_total", route=consent_route, status="201") >= 1
    assert value(gateway, "trial_http_request_duration_seconds_count", route=consent_route) >= 1
    assert not any(subject in str(labels) for _, labels in gateway), "route templates, never subject ids"

    screening = await scrape(system, "screening")
    assert value(screening, "trial_events_appended_total", type="ConsentRecorded") >= 1
    assert value(screening, "trial_commands_total", outcome="accepted") >= 1
    assert value(screening, "faststream_received_messages_total", app_name="trial-screening") >= 1

    safety = await eventually(
        system, "safety", lambda s: value(s, "trial_events_appended_total", type="SeriousAdverseEventAlertRaised") >= 1
    )
    assert ("trial_consumer_lag_events", frozenset({("consumer", "reaction-sae-alerts")})) in safety

    reporting = await eventually(system, "reporting", lambda s: value(s, "trial_open_sae_alerts") >= 1)
    assert ("trial_consumer_lag_events", frozenset({("consumer", "projection-read-models")})) in reporting

    for service in SERVICES:  # and each process's own: memory, CPU, open files
        assert value(await scrape(system, service), "process_resident_memory_bytes") > 0, service


async def test_a_form_answers_with_where_its_time_went_and_a_retry_with_its_shorter_path(
    client: httpx.AsyncClient, subject_ids: SubjectIds
) -> None:
    site, subject = await subject_ids.fresh()
    sent = headers(token(Role.SITE_COORDINATOR, site), new_key())
    path = f"/v1/sites/{site}/subjects/{subject}/consent"
    first = await client.post(path, json=CONSENT, headers=sent)
    assert first.status_code == 201, first.text
    hops = server_timing(first.headers["server-timing"])
    assert list(hops) == ["auth", "claim", "command", "service", "complete", "total"]
    assert all(ms > 0 for ms in hops.values()), hops
    assert hops["service"] < hops["command"]
    assert hops["auth"] + hops["claim"] + hops["command"] + hops["complete"] < hops["total"]

    again = await client.post(path, json=CONSENT, headers=sent)
    assert again.status_code == 201 and again.json() == first.json()
    assert list(server_timing(again.headers["server-timing"])) == ["auth", "claim", "total"]
