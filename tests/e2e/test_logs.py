"""Logs name ids, codes and outcomes only: a value entered on any form is found in no process's log."""

from datetime import timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from devstack.examples import serious_adverse_event
from services.gateway.auth import Role
from shared.contracts.protocol import ProtocolDefinition
from shared.readmodels.catalogue import ReadModel
from shared.runtime.eventstore import EventStore
from shared.runtime.projections import wait_for_checkpoint
from tests.conftest import SubjectIds
from tests.e2e.api import CONSENT, ENTERED, System, headers, new_key, token
from tests.e2e.test_visits import assessments, randomized_days_ago, surgery

pytestmark = pytest.mark.e2e

# Text no log line has a reason to hold. (Numbers are no marker: durations and sequences spell any of them.)
MARK = "Qzv7marker"


async def test_no_value_entered_on_any_form_reaches_any_processs_log(
    system: System,
    client: httpx.AsyncClient,
    store: EventStore,
    subject_ids: SubjectIds,
    protocol: ProtocolDefinition,
    read_pool: asyncpg.Pool,
) -> None:
    last = 0

    async def post(path: str, body: dict[str, Any], bearer: str) -> dict[str, Any]:
        nonlocal last
        answer = await client.post(path, json=body, headers=headers(bearer, new_key()))
        assert answer.status_code == 201, answer.text
        recorded: dict[str, Any] = answer.json()
        last = max(last, recorded["stream_sequence"])
        return recorded

    # Consent and screening, as the coordinator enters them.
    site, subject = await subject_ids.fresh()
    coordinator = token(Role.SITE_COORDINATOR, site)
    base = f"/v1/sites/{site}/subjects/{subject}"
    await post(f"{base}/consent", CONSENT, coordinator)
    screened = await post(f"{base}/screening", ENTERED | {"height_cm": 171.3, "weight_kg": 58.9}, coordinator)
    # What the system derived from them too: each criterion's value as the answer states it ("BMI 20.1", ...).
    derived = {c["value"] for c in screened["criteria"] if c["value"]}
    assert derived

    # Surgery, a visit, a serious adverse event, a query and its answer, a withdrawal.
    site, subject, randomized_on = await randomized_days_ago(store, subject_ids, protocol, 120, "FG_HT")
    investigator = token(Role.INVESTIGATOR, site)
    base = f"/v1/sites/{site}/subjects/{subject}"
    operation = surgery(randomized_on + timedelta(days=10), fat_graft=True)
    await post(f"{base}/procedures", operation | {"recipient_area_cm2": 37.9}, investigator)
    visit = assessments(randomized_on + timedelta(days=17))
    await post(f"{base}/visits/W1", visit | {"hair_density_per_cm2": 43.7, "photo_reference": MARK}, investigator)
    await post(f"{base}/adverse-events", serious_adverse_event(term=f"Scalp {MARK} necrosis"), investigator)
    await wait_for_checkpoint(read_pool, ReadModel.DATA_MANAGEMENT, last)  # a query is on a form the monitor sees
    query = await post(f"{base}/queries", {"form": "procedure", "text": f"Source says {MARK}"}, token(Role.MONITOR))
    await post(f"{base}/queries/{query['query_id']}/answer", {"text": f"Corrected from {MARK}"}, investigator)
    withdrawal = {"withdrawn_on": str(randomized_on + timedelta(days=20)), "reason_category": "subject_decision"}
    await post(f"{base}/withdrawal", withdrawal | {"decided_by": "subject"}, investigator)

    # Every read model and reaction has seen all of it.
    for model in ReadModel:
        await wait_for_checkpoint(read_pool, model, last)

    assert system.processes.log_dir is not None
    logs = {path.name: path.read_text(errors="replace") for path in system.processes.log_dir.glob("*.log")}
    assert {"gateway.log", "screening.log", "safety.log", "reporting.log"} <= set(logs)
    leaks = {(name, value) for name, text in logs.items() for value in (MARK, *derived) if value in text}
    assert leaks == set()
