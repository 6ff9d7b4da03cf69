"""A site app built the way site apps are built: a Python client generated from the gateway's own OpenAPI
document (openapi-python-client, no configuration, warnings fail it), taking a subject from consent through screening,
randomization, surgery, an adverse event and its follow-up to withdrawal, and reading the subject back."""

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import asyncpg
import httpx
import pytest

from devstack.examples import CONSENT, ELIGIBLE, serious_adverse_event
from services.gateway.auth import Role
from shared.runtime.projections import wait_for_checkpoint
from tests.conftest import SubjectIds
from tests.e2e.api import System, new_key, token

pytestmark = pytest.mark.e2e

# The package the generator names from the document's title, with no configuration at all.
PACKAGE = "nct06646146_trial_gateway_client"


@pytest.fixture(scope="module")
def generated(system: System, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The client package generated from the running gateway's /openapi.json, importable."""
    folder = tmp_path_factory.mktemp("client")
    document = folder / "openapi.json"
    document.write_bytes(httpx.get(f"{system.url}/openapi.json", timeout=10).content)
    # The generator formats its output with ruff, from the same environment.
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    done = subprocess.run(
        [Path(sys.executable).parent / "openapi-python-client", "generate", "--path", str(document),
         "--output-path", str(folder / "out"), "--fail-on-warning"],
        capture_output=True, text=True, timeout=120, env={**os.environ, "PATH": path}, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "warning" not in done.stdout.lower(), done.stdout
    sys.path.insert(0, str(folder / "out"))
    try:
        yield PACKAGE
    finally:
        sys.path.remove(str(folder / "out"))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def module(name: str) -> ModuleType:
    return importlib.import_module(f"{PACKAGE}.{name}")


def model(name: str, data: dict[str, Any]) -> Any:
    return getattr(module("models"), name).from_dict(data)


async def test_a_generated_client_takes_a_subject_from_consent_to_withdrawal(
    generated: str, system: System, subject_ids: SubjectIds, read_pool: asyncpg.Pool
) -> None:
    site, subject = await subject_ids.fresh("NFH")
    today = system.today(site)
    client = module("client").AuthenticatedClient(base_url=system.url, token=token(Role.INVESTIGATOR, site))
    problem = module("models").Problem

    async def post(operation: str, form: str, data: dict[str, Any]) -> Any:
        call = module(f"api.{operation}")
        answer = await call.asyncio(site, subject, client=client, body=model(form, data), idempotency_key=new_key())
        assert answer is not None and not isinstance(answer, problem), answer
        assert answer.subject == subject and answer.stream_sequence > 0
        return answer

    await post("screening.record_consent", "ConsentForm", CONSENT | {"signed_on": str(today - timedelta(days=2))})
    await post(
        "screening.screen_subject", "ScreeningForm", ELIGIBLE | {"screening_date": str(today - timedelta(days=1))}
    )
    allocated = await post("randomization.randomize_subject", "RandomizationRequest", {})
    procedure = {
        "procedure_date": str(today), "surgeon": "srg-01", "anaesthesia": "local", "recipient_area_cm2": 24.5,
        "follicular_units": 1200, "donor_site": "occipital",
    }  # fmt: skip
    if allocated.arm == "FG_HT":
        procedure["fat_graft"] = {"fat_harvest_site": "abdomen", "harvested_fat_ml": 60, "ecm_svf_gel_ml": 12.5}
    await post("visits.record_procedure", "ProcedureForm", procedure)
    mild = {
        "term": "Scalp pruritus",
        "onset_date": str(today),
        "site_aware_at": datetime.now(UTC).isoformat(),
        "grade": 1,
        "seriousness": [],
        "action_taken": "none",
    }
    reported = await post("safety.report_adverse_event", "AdverseEventForm", serious_adverse_event(**mild))
    follow_up = {"ae_id": reported.ae_id, "site_aware_at": datetime.now(UTC).isoformat(), "outcome": "recovered"}
    await post("safety.follow_up_adverse_event", "AdverseEventFollowUp", follow_up)
    withdrawal = {"withdrawn_on": str(today), "reason_category": "subject_decision", "decided_by": "subject"}
    last = await post("visits.withdraw_subject", "WithdrawalForm", withdrawal)

    await wait_for_checkpoint(read_pool, "subjects", last.stream_sequence)
    await wait_for_checkpoint(read_pool, "safety", last.stream_sequence)
    view = await module("api.subjects.get_subject").asyncio(site, subject, client=client)
    assert view.state == "withdrawn" and view.arm == allocated.arm, view
    assert str(view.surgery_date) == str(today) and str(view.withdrawn_on) == str(today)
    [event] = view.adverse_events
    assert (event.term, event.grade, event.outcome) == ("Scalp pruritus", 1, "recovered")
    # A refusal reaches the site app as the documented problem, with the rule named.
    again = await module("api.randomization.randomize_subject").asyncio(
        site, subject, client=client, body=model("RandomizationRequest", {}), idempotency_key=new_key()
    )
    assert isinstance(again, problem) and again.status == 409 and again.rule, again


async def test_a_generated_client_reads_the_pictures_and_the_odm_export_as_bytes(
    generated: str, system: System
) -> None:
    reader = module("client").AuthenticatedClient(base_url=system.url, token=token(Role.DATA_MANAGER))
    diagram = await module("api.reports.consort_diagram").asyncio(client=reader)
    assert diagram.payload.read().lstrip().startswith(b"<svg"), diagram
    odm = await module("api.reports.export_odm").asyncio(client=reader)
    assert b"<ODM" in odm.payload.read(), odm


async def test_the_documents_bytes_are_served_as_such_to_a_client_that_asks_for_them(system: System) -> None:
    bearer = {"Authorization": f"Bearer {token(Role.DATA_MANAGER)}"}
    async with httpx.AsyncClient(base_url=system.url, headers=bearer, timeout=30) as http:
        as_picture = await http.get("/v1/reports/consort.svg")
        as_bytes = await http.get("/v1/reports/consort.svg", headers={"Accept": "application/octet-stream"})
    assert as_picture.headers["content-type"].startswith("image/svg+xml")
    assert as_bytes.headers["content-type"] == "application/octet-stream"
    assert as_bytes.content == as_picture.content
