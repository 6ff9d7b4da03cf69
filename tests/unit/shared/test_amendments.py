"""Which version of the protocol governs what: the version in force at a site on a day, a correction's version, the
schedule's, the revised consent form; and the rules an amendment is deployed by."""

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
import yaml

from shared.contracts.amendments import (
    AmendmentDeployment,
    InvalidAmendment,
    ProtocolVersions,
    ReconsentRequired,
    WrongAmendment,
    load_amendment,
    require_consent,
    signed,
)
from shared.contracts.events import ConsentRecorded
from shared.contracts.protocol import InvalidProtocolDefinition, load_protocol
from shared.runtime.settings import DEFAULT_PROTOCOL_FILE
from tests.amendment import OLDEST_AFTER, OLDEST_BEFORE, amendment

FIRST = load_protocol(DEFAULT_PROTOCOL_FILE)
EVE, DAY, NEXT = date(2027, 3, 1), date(2027, 3, 2), date(2027, 3, 3)
TODAY = {site.code: date(2027, 2, 20) for site in FIRST.sites}
EFFECTIVE = {"NFH": DAY, "GZ2": NEXT, "SZ3": NEXT}


def deployed(body: dict[str, object] | None = None, versions: ProtocolVersions | None = None) -> ProtocolVersions:
    versions = versions or ProtocolVersions(FIRST)
    fact = versions.deploy(AmendmentDeployment.model_validate(body or amendment(EFFECTIVE)), today=TODAY)
    return ProtocolVersions(FIRST, (*versions.amendments, fact))


def oldest(versions: ProtocolVersions, site: str, day: date) -> int | None:
    return versions.in_force(site, day).eligibility.inclusion.IN07.max_age


def test_each_site_takes_the_new_version_on_its_own_day_and_the_old_one_governs_until_then() -> None:
    versions = deployed()
    assert [v.version for v in versions.all] == ["1.0", "2.0"] and versions.latest.version == "2.0"
    assert oldest(versions, "NFH", EVE) == OLDEST_BEFORE and oldest(versions, "NFH", DAY) == OLDEST_AFTER
    assert oldest(versions, "GZ2", DAY) == OLDEST_BEFORE and oldest(versions, "GZ2", NEXT) == OLDEST_AFTER
    assert versions.named("1.0") == FIRST, "the first version stays readable as it was"


def test_a_decision_about_the_whole_trial_is_made_under_the_latest_version_in_force_at_any_site() -> None:
    versions = deployed()
    assert versions.in_force_somewhere(datetime(2027, 2, 28, 12, tzinfo=UTC)).version == "1.0", "deployed, not begun"
    assert versions.in_force_somewhere(datetime(2027, 3, 1, 16, 30, tzinfo=UTC)).version == "2.0", "NFH's 2 March"


def test_the_revised_consent_form_is_required_from_each_sites_day_and_only_once_signed() -> None:
    versions = deployed()
    assert versions.consent_required("NFH", EVE) is None and versions.consent_required("NFH", DAY) == "2.0"
    assert versions.consent_required("GZ2", DAY) is None
    first, second = uuid4(), uuid4()
    consents = signed({}, consent("1.0"), first)
    with pytest.raises(ReconsentRequired, match=r"version 2\.0") as refused:
        require_consent("2.0", frozenset(consents.values()), "NFH-001")
    assert refused.value.field == "consent_form_version"
    consents = signed(consents, consent("2.0"), second)
    require_consent("2.0", frozenset(consents.values()), "NFH-001")
    corrected = signed(consents, consent("1.0", supersedes=second), uuid4())
    assert set(corrected.values()) == {"1.0"}, "a correction replaces its record's version"


def consent(version: str, supersedes: object = None) -> ConsentRecorded:
    return ConsentRecorded(
        consent_form_version=version,
        signed_on=EVE,
        obtained_by="inv-01",
        signed_by_subject=True,
        signed_by_representative=False,
        supersedes=supersedes,
    )


def test_a_correction_keeps_its_records_version_unless_an_amendment_in_force_migrates_the_form() -> None:
    kept = deployed()
    assert kept.for_correction("screening", "1.0", "NFH", NEXT).version == "1.0"
    migrated = deployed(amendment(EFFECTIVE, migrates=["screening"]))
    assert migrated.for_correction("screening", "1.0", "NFH", EVE).version == "1.0", "not in force yet"
    assert migrated.for_correction("screening", "1.0", "NFH", DAY).version == "2.0"
    assert migrated.for_correction("visit", "1.0", "NFH", DAY).version == "1.0", "only the forms it names"
    assert migrated.for_correction("screening", "2.0", "NFH", DAY).version == "2.0"


def test_the_schedule_keeps_its_version_unless_an_amendment_in_force_reschedules() -> None:
    def w1_window(versions: ProtocolVersions, day: date) -> int:
        [w1] = [v for v in versions.scheduled_under("1.0", "NFH", day).schedule.follow_up if v.code == "W1"]
        return w1.window_days

    assert w1_window(deployed(), NEXT) == 2
    rescheduled = deployed(amendment(EFFECTIVE, reschedules=True))
    assert w1_window(rescheduled, EVE) == 2 and w1_window(rescheduled, DAY) == 3


@pytest.mark.parametrize(
    ("change", "refusal", "field"),
    [
        ({"amends": "0.9"}, WrongAmendment, "amends"),
        ({"effective": {"NFH": "2027-02-20", "GZ2": "2027-03-03", "SZ3": "2027-03-03"}}, InvalidAmendment,
         "effective.NFH"),
        ({"effective": {"NFH": "2027-03-02", "GZ2": "2027-03-03"}}, InvalidAmendment, "effective"),
        ({"effective": {"NFH": "2027-03-02", "GZ2": "2027-03-03", "SZ3": "2027-03-03", "XX9": "2027-03-03"}},
         InvalidAmendment, "effective"),
        ({"consent_form_version": "1.0"}, InvalidAmendment, "consent_form_version"),
        ({"consent_form_version": "3.0"}, InvalidAmendment, "consent_form_version"),
        ({"migrates": ["no-such-form"]}, InvalidAmendment, "migrates"),
    ],
)  # fmt: skip
def test_an_amendment_that_cannot_follow_is_refused_naming_its_field(
    change: dict[str, object], refusal: type[Exception], field: str
) -> None:
    with pytest.raises(refusal) as refused:
        deployed(amendment(EFFECTIVE) | change)
    assert getattr(refused.value, "field", None) == field


def test_versions_follow_one_another_each_site_later_than_the_last() -> None:
    versions = deployed()
    with pytest.raises(WrongAmendment) as again:
        deployed(amendment(EFFECTIVE), versions)
    assert again.value.field == "amends" and "latest version is 2.0" in str(again.value)
    with pytest.raises(InvalidAmendment, match="exists already"):
        deployed(amendment({s: date(2027, 4, 1) for s in EFFECTIVE}, amends="2.0"), versions)
    third = amendment(EFFECTIVE | {"GZ2": DAY}, version="3.0", amends="2.0")
    with pytest.raises(InvalidAmendment) as earlier:
        deployed(third, versions)
    assert earlier.value.field == "effective.GZ2" and "comes after" in str(earlier.value)
    later = deployed(amendment({s: date(2027, 4, 1) for s in EFFECTIVE}, version="3.0", amends="2.0"), versions)
    assert [v.version for v in later.all] == ["1.0", "2.0", "3.0"]
    assert later.in_force("GZ2", date(2027, 3, 31)).version == "2.0"


def test_an_amendment_file_is_read_whole_with_the_definition_it_names(tmp_path: Path) -> None:
    body = amendment(EFFECTIVE)
    (tmp_path / "protocol-2.0.yaml").write_text(yaml.safe_dump(body.pop("definition")), encoding="utf-8")
    (tmp_path / "amendment-2.0.yaml").write_text(yaml.safe_dump(body | {"protocol": "protocol-2.0.yaml"}))
    read = load_amendment(tmp_path / "amendment-2.0.yaml")
    assert read["definition"]["version"] == "2.0" and read["effective"]["NFH"] == "2027-03-02"
    assert AmendmentDeployment.model_validate(read).definition.eligibility.inclusion.IN07.max_age == OLDEST_AFTER
    (tmp_path / "broken.yaml").write_text(yaml.safe_dump(body | {"protocol": "nowhere.yaml"}))
    with pytest.raises(InvalidProtocolDefinition, match=r"broken\.yaml"):
        load_amendment(tmp_path / "broken.yaml")


def test_an_amendment_may_change_a_collected_form_but_only_reword_a_form_the_system_models() -> None:
    """A collected form or log is the data dictionary's alone, taken by version; a form with a model of its own
    (the screening, a visit, an adverse event) is read by the system's rules, so only its words may change."""
    changed = amendment(EFFECTIVE)
    forms = changed["definition"]["forms"]["forms"]
    medication = forms["concomitant-medication"]["items"]
    medication["batch"] = {"type": "text", "label": {"en": "Batch", "zh": "批号"}}
    medication["dose"]["required"] = not medication["dose"].get("required", False)
    del medication["route"]
    forms["visit"]["items"]["visit_date"]["label"] = {"en": "Date of the visit", "zh": "访视的日期"}
    latest = deployed(changed).latest.forms
    assert "batch" in latest.forms["concomitant-medication"].items
    assert "route" not in latest.forms["concomitant-medication"].items
    assert latest.item("visit.visit_date").label.en == "Date of the visit"

    def added(items: dict[str, Any]) -> None:
        items["scalp_photographed"] = {"type": "boolean", "label": {"en": "Photographed", "zh": "已拍照"}}

    def made_optional(items: dict[str, Any]) -> None:
        items["visit_date"]["required"] = not items["visit_date"].get("required", False)

    def removed(items: dict[str, Any]) -> None:
        del items["satisfaction"]

    for change in (added, made_optional, removed):
        refused_change = amendment(EFFECTIVE)
        change(refused_change["definition"]["forms"]["forms"]["visit"]["items"])
        with pytest.raises(InvalidAmendment, match="on visit differs") as refused:
            deployed(refused_change)
        assert refused.value.field == "definition.forms.forms.visit"


def test_an_export_holds_every_versions_forms_items_and_codes_in_the_latest_words() -> None:
    """A record entered under 1.0 keeps an item 2.0 removed; one entered under 2.0 has the item and code it added."""
    changed = amendment(EFFECTIVE)
    dictionary = changed["definition"]["forms"]
    items = dictionary["forms"]["concomitant-medication"]["items"]
    del items["route"]
    items["batch"] = {"type": "text", "label": {"en": "Batch", "zh": "批号"}}
    items["medication"]["label"] = {"en": "Medication (generic name)", "zh": "药物（通用名）"}
    route_list = FIRST.forms.forms["concomitant-medication"].items["route"].code_list or ""
    dictionary["code_lists"][route_list] = [{"code": "inhaled", "en": "Inhaled", "zh": "吸入"}]
    dictionary["code_lists"]["frequency_extra"] = [{"code": "hourly", "en": "Hourly", "zh": "每小时"}]
    versions = deployed(changed)

    exported = versions.exported_forms
    merged = exported.forms["concomitant-medication"].items
    assert list(merged)[: len(FIRST.forms.forms["concomitant-medication"].items)] == list(
        FIRST.forms.forms["concomitant-medication"].items
    ), "the first version's items first, in its order"
    assert list(merged)[-1] == "batch" and "route" in merged
    assert merged["medication"].label.en == "Medication (generic name)"
    codes = [c.code for c in exported.code_lists[route_list]]
    assert codes == [*(c.code for c in FIRST.forms.code_lists[route_list]), "inhaled"]
    assert "frequency_extra" in exported.code_lists and exported.version == versions.latest.forms.version
    assert ProtocolVersions(FIRST).exported_forms is FIRST.forms, "one version: its own dictionary"
