"""A protocol amendment deployed through the gateway, from the files a sponsor writes: `trial amendment` makes the
body, a data manager posts it, and the running system takes it without a restart. It takes effect at each site
from a day long after every date this suite writes, so nothing else here is judged under it. (How each version
governs the forms is `tests/integration/test_amendment.py`, on a record of its own, across the sites' days.)"""

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from shared.contracts.access import Role
from shared.contracts.protocol import ProtocolDefinition
from tests.amendment import OLDEST_AFTER, amendment
from tests.e2e.api import System, headers, new_key, token
from tests.integration.test_trial_command import trial

pytestmark = pytest.mark.e2e


def body_from_files(folder: Path, effective: dict[str, Any], first: ProtocolDefinition) -> dict[str, Any]:
    """The amendment as a sponsor writes it (its header, and the new definition in a file beside it), made into
    the body by the operator's command."""
    written = amendment(effective, first=first)
    # In the order the sponsor wrote them: a form's items are shown in their order.
    definition = yaml.safe_dump(written.pop("definition"), allow_unicode=True, sort_keys=False)
    (folder / "protocol-2.0.yaml").write_text(definition)
    (folder / "amendment-2.0.yaml").write_text(yaml.safe_dump(written | {"protocol": "protocol-2.0.yaml"}))
    made = trial("amendment", str(folder / "amendment-2.0.yaml"), data=folder)
    assert made.returncode == 0, made.stderr
    body: dict[str, Any] = json.loads(made.stdout)
    return body


async def test_a_data_manager_deploys_an_amendment_that_every_reader_then_finds_whole(
    client: httpx.AsyncClient, system: System, tmp_path: Path
) -> None:
    later = {site.code: system.today(site.code) + timedelta(days=400) for site in system.protocol.sites}
    body = body_from_files(tmp_path, later, system.protocol)
    manager = token(Role.DATA_MANAGER)

    refused = await client.post("/v1/protocol/amendments", json=body, headers=headers(token(Role.MONITOR), new_key()))
    assert refused.status_code == 403
    today = {site: str(day) for site, day in later.items()} | {"NFH": str(system.today("NFH"))}
    backdated = await client.post(
        "/v1/protocol/amendments", json=body | {"effective": today}, headers=headers(manager, new_key())
    )
    assert backdated.status_code == 422 and backdated.json()["field"] == "effective.NFH", backdated.text
    invalid = json.loads(json.dumps(body))
    invalid["definition"]["eligibility"]["inclusion"]["IN07"]["max_age"] = 200
    named = await client.post("/v1/protocol/amendments", json=invalid, headers=headers(manager, new_key()))
    assert named.status_code == 422 and "max_age" in named.text, named.text

    deployed = await client.post("/v1/protocol/amendments", json=body, headers=headers(manager, new_key()))
    assert deployed.status_code == 201, deployed.text
    seen = {"Read-After": str(deployed.json()["stream_sequence"])}
    again = await client.post("/v1/protocol/amendments", json=body, headers=headers(manager, new_key()))
    assert again.status_code == 409 and again.json()["rule"] == "amendment.follows_the_latest_version"

    listed = await client.get("/v1/protocol/amendments", headers=headers(token(Role.MONITOR)) | seen)
    assert listed.status_code == 200, listed.text
    [found] = listed.json()
    assert (found["version"], found["amends"], found["consent_form_version"]) == ("2.0", "1.0", "2.0")
    assert {s["site"]: s["effective_on"] for s in found["sites"]} == {k: str(v) for k, v in later.items()}
    assert all(s["in_force_at"] is None for s in found["sites"]), "not in force anywhere yet"

    investigator = headers(token(Role.INVESTIGATOR, "NFH")) | seen
    second = await client.get("/v1/protocol/versions/2.0", headers=investigator)
    assert second.status_code == 200 and second.json()["eligibility"]["inclusion"]["IN07"]["max_age"] == OLDEST_AFTER
    first = await client.get("/v1/protocol/versions/1.0", headers=investigator)
    assert first.status_code == 200 and first.json()["eligibility"]["inclusion"]["IN07"]["max_age"] == 59
    assert (await client.get("/v1/protocol/versions/9.9", headers=investigator)).status_code == 404
    waiting = await client.get("/v1/sites/NFH/reconsent", headers=investigator)
    assert waiting.status_code == 200 and waiting.json() == [], "nobody re-consents before the amendment's day"

    trail = await client.get("/v1/reports/audit-trail.json", headers=headers(token(Role.MONITOR)) | seen)
    [entry] = [e for e in trail.json() if e["event_type"] == "ProtocolAmendmentDeployed"]
    assert entry["actor_role"] == "data_manager", entry
