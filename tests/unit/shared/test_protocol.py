from pathlib import Path

import pytest
import yaml

from shared.contracts.protocol import InvalidProtocolDefinition, SiteStatus, load_protocol, protocol_document
from shared.runtime.settings import DEFAULT_PROTOCOL_FILE


def test_the_default_definition_runs_the_registered_trial() -> None:
    protocol = load_protocol(DEFAULT_PROTOCOL_FILE)
    assert protocol.trial_id == "NCT06646146"
    assert protocol.enrollment_cap == 40
    assert [a.code for a in protocol.arms] == ["FG_HT", "HT"]
    assert [s.code for s in protocol.sites] == ["NFH", "GZ2", "SZ3"]
    site = protocol.site("NFH")
    assert site is not None and site.status is SiteStatus.ACTIVE


def test_an_invalid_definition_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(protocol_document(DEFAULT_PROTOCOL_FILE) | {"enrollment_cap": -1}))
    with pytest.raises(InvalidProtocolDefinition, match="enrollment_cap"):
        load_protocol(path)


def test_duplicate_site_codes_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "dup.yaml"
    document = protocol_document(DEFAULT_PROTOCOL_FILE)
    document["sites"][1]["code"] = "NFH"
    path.write_text(yaml.safe_dump(document))
    with pytest.raises(InvalidProtocolDefinition, match="sites: codes must be unique"):
        load_protocol(path)


def test_the_protocol_names_the_arm_that_receives_the_fat_graft_and_the_primary_endpoint_visit() -> None:
    protocol = load_protocol(DEFAULT_PROTOCOL_FILE)
    assert protocol.fat_graft_arms == ("FG_HT",)
    assert protocol.receives_fat_graft("FG_HT") and not protocol.receives_fat_graft("HT")
    assert protocol.arm_treated_as(fat_graft=False) == "HT"
    assert protocol.schedule.primary_endpoint.code == "M6"
