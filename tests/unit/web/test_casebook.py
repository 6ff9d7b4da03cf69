"""Which form a casebook offers next, and which operation corrects which record."""

import re
from datetime import date
from pathlib import Path
from typing import Any

import pytest

import shared.contracts.events.catalogue  # noqa: F401  (registers every event type)
from services.web.casebook import (
    casebook_forms,
    correcting,
    due_forms,
    event_title,
    form_title,
    item_changes,
    next_step,
    query_targets,
    shown_values,
)
from services.web.gateway import GatewayProblem
from services.web.i18n import TEXT, translator
from services.web.versions import side_by_side, versions_of
from shared.contracts.amendments import AmendmentDeployment
from shared.contracts.events.envelope import registered_types
from shared.contracts.protocol import cached_protocol
from shared.readmodels.states import SubjectState
from shared.runtime.settings import DEFAULT_PROTOCOL_FILE
from tests.amendment import amendment
from tests.questionnaire import NAME, questionnaire_protocol
from tests.unit.gateway.test_openapi import DOCUMENT

FORMS = cached_protocol(DEFAULT_PROTOCOL_FILE).forms
TAKEN = casebook_forms(DOCUMENT, FORMS)


def view(**state: Any) -> dict[str, Any]:
    empty = {
        "state": "consented",
        "arm": None,
        "surgery_date": None,
        "withdrawn_on": None,
        "completed_on": None,
        "consent_withdrawn_on": None,
    }
    return empty | {"consented_on": "2026-11-20", "visits": [], "adverse_events": []} | state


def test_screening_until_randomized_then_the_surgery_then_the_next_scheduled_visit() -> None:
    assert [f for f, _ in due_forms(view())] == ["screen_subject", "report_adverse_event"]
    randomized = view(state="randomized", arm="HT")
    assert [f for f, _ in due_forms(randomized)] == ["record_procedure", "report_adverse_event", "withdraw_subject"]
    visits = [{"visit": "W1", "status": "completed"}, {"visit": "M1", "status": "scheduled"}]
    operated = view(state="in_follow_up", arm="HT", surgery_date="2026-11-25", visits=visits)
    assert ("record_visit", {"visit": "M1"}) in due_forms(operated)
    assert not any(f == "record_visit" for f, _ in due_forms(operated | {"withdrawn_on": "2026-11-28"}))


def test_a_logs_new_entry_is_offered_from_consent_while_the_subject_takes_part() -> None:
    logs = ["record_concomitant_medication", "record_medical_history"]
    assert [f for f, _ in due_forms(view(), TAKEN) if f in logs or f.startswith("correct_")] == logs
    for ended in ({"withdrawn_on": "2026-11-28"}, {"consent_withdrawn_on": "2026-11-28"}, {"consented_on": None}):
        assert not set(logs) & {f for f, _ in due_forms(view(**ended), TAKEN)}, ended


def test_a_log_entry_is_named_by_its_first_answer_where_it_is_at_hand_else_by_its_id() -> None:
    name = "concomitant-medication-0f8fad5b-d9cb-469f-a165-70867728950e"
    assert form_title(FORMS, name, "zh", {"medication": "Methotrexate", "route": "oral"}) == "合并用药: Methotrexate"
    assert form_title(FORMS, name, "en") == "Concomitant medication 0f8fad5b"


def test_each_adverse_event_has_its_follow_up() -> None:
    events = [{"ae_id": "a1"}, {"ae_id": "a2"}]
    follow_ups = [extra for form, extra in due_forms(view(adverse_events=events)) if form == "follow_up_adverse_event"]
    assert follow_ups == [{"ae_id": "a1"}, {"ae_id": "a2"}]


@pytest.mark.parametrize(
    ("form", "operation", "extra"),
    [
        ("consent", "record_consent", {}),
        ("screening", "screen_subject", {}),
        ("procedure", "record_procedure", {}),
        ("visit-M6", "record_visit", {"visit": "M6"}),
        ("ae-0f8fad5b-d9cb-469f-a165-70867728950e", "report_adverse_event", {}),
        ("withdrawal", "withdraw_subject", {}),
        (
            "concomitant-medication-0f8fad5b-d9cb-469f-a165-70867728950e",
            "correct_concomitant_medication",
            {"entry": "0f8fad5b-d9cb-469f-a165-70867728950e"},
        ),
    ],
)
def test_a_record_is_corrected_by_the_form_that_made_it(form: str, operation: str, extra: dict[str, str]) -> None:
    found, filled = correcting(TAKEN, FORMS, form)
    assert (found.operation, filled) == (operation, extra)


def test_a_form_this_app_does_not_correct_is_not_found() -> None:
    with pytest.raises(GatewayProblem):
        correcting(TAKEN, FORMS, "consent-refusal")


def test_the_casebooks_forms_are_the_gateways_operations_whose_body_is_a_dictionary_form() -> None:
    assert {name: (f.path, f.form) for name, f in TAKEN.items()} == {
        "record_consent": ("consent", "consent"),
        "withdraw_consent": ("consent/withdrawal", "consent-withdrawal"),
        "decline_consent": ("consent/refusal", "consent-refusal"),
        "screen_subject": ("screening", "screening"),
        "record_procedure": ("procedures", "procedure"),
        "record_visit": ("visits/{visit}", "visit"),
        "report_adverse_event": ("adverse-events", "adverse-event"),
        "follow_up_adverse_event": ("adverse-events/follow-up", "adverse-event-follow-up"),
        "withdraw_subject": ("withdrawal", "withdrawal"),
        "record_concomitant_medication": ("logs/concomitant-medication", "concomitant-medication"),
        "correct_concomitant_medication": ("logs/concomitant-medication/{entry}", "concomitant-medication"),
        "record_medical_history": ("logs/medical-history", "medical-history"),
        "correct_medical_history": ("logs/medical-history/{entry}", "medical-history"),
        "assess_endpoint": ("visits/{visit}/assessment", "endpoint-assessment"),
    }


def test_a_query_is_raised_on_a_form_or_one_of_its_items_picked_by_its_question() -> None:
    ae = "ae-0b7e1f4e-9a0c-4f43-9d36-4c4a0a3f5e21"
    targets = dict(query_targets(FORMS, ["screening", "visit-M1", ae, "consent-refusal"], "zh"))
    screening = dict(targets["screening"])
    assert screening["screening|"] == "筛选", "the whole form, by its title"
    assert screening["screening|serology.hiv"] == "血清学检查（EX08） › HIV"
    assert "screening|serology" not in screening, "a group is no item of its own"
    assert dict(targets["visit-M1"])["visit-M1|satisfaction"] == "患者满意度"
    assert dict(targets[ae])[f"{ae}|relationship.fat_graft"].endswith("与脂肪移植的相关性")
    assert dict(query_targets(FORMS, ["screening"], "en")[0][1])["screening|weight_kg"] == "Weight"


def test_a_record_is_shown_by_its_questions_with_codes_decoded_and_units() -> None:
    words = {"yes": "是", "no": "否"}
    surgery = {
        "procedure_date": "2026-12-01",
        "surgeon": "sur-01",
        "anaesthesia": "local_with_sedation",
        "recipient_area_cm2": "30.0",
        "follicular_units": 1500,
        "donor_site": "occipital",
        "fat_graft": {"fat_harvest_site": "abdomen", "harvested_fat_ml": "80.0", "ecm_svf_gel_ml": "10.0"},
    }
    shown = shown_values(FORMS, "procedure", surgery, "zh", lambda key: words.get(key, key))
    rows = {label: value for _, label, value in shown}
    assert ("fat_graft.harvested_fat_ml", "ECM/SVF-gel脂肪移植 › 采集脂肪量", "80.0 mL") in shown
    assert rows["麻醉方式"] == "局部麻醉加镇静"
    assert rows["受区面积"] == "30.0 cm²"
    assert rows["ECM/SVF-gel脂肪移植 › 采集脂肪量"] == "80.0 mL"
    screening = {
        label: value
        for _, label, value in shown_values(
            FORMS, "screening", {"pregnant": False, "contraindications": []}, "zh", words.__getitem__
        )
    }
    assert (screening["妊娠（EX04）"], screening["手术禁忌（EX03）"], screening["性别"]) == ("否", "—", "—")
    never_said = {"never": "从未"}.__getitem__
    never = {q: v for _, q, v in shown_values(FORMS, "screening", {"last_tumour_diagnosis": "never"}, "zh", never_said)}
    assert never["最近一次肿瘤诊断日期（EX09）"] == "从未"
    assert form_title(FORMS, "visit-M1", "zh") == "随访 M1" and form_title(FORMS, "screening", "en") == "Screening"


def test_a_collected_forms_record_is_titled_with_its_visit(tmp_path: Path) -> None:
    forms = questionnaire_protocol(tmp_path).forms
    assert form_title(forms, f"{NAME}-M6", "zh") == "头皮症状 M6"
    assert form_title(forms, "ae-0f8fad5b-d9cb-469f-a165-70867728950e", "en") == "Adverse event 0f8fad5b"


def test_an_items_changes_are_read_from_each_correction_as_staff_read_values() -> None:
    first = {"version": "a", "actor": "crc", "reason": None, "changes": None}
    corrected = {
        "version": "b",
        "actor": "crc",
        "reason": "typo",
        "changes": [
            {"field": "form.weight_kg", "old": "70.0", "new": "72.0"},
            {"field": "form.sex", "old": "female", "new": "male"},
            {"field": "bmi", "old": "24.1", "new": "24.9"},  # derived, no item: left out
        ],
    }
    changes = item_changes(FORMS, "screening", [first, corrected], "en", str)
    assert set(changes) == {"weight_kg", "sex"}
    (weight,) = changes["weight_kg"]
    assert (weight["old"], weight["new"], weight["record"]["reason"]) == ("70.0 kg", "72.0 kg", "typo")
    assert changes["sex"][0]["new"] == "Male"


def test_what_comes_next_says_a_screening_waits_for_the_investigator_and_an_eligible_subject_is_randomized() -> None:
    waiting = next_step(SubjectState.SCREEN_FAILED, arm=None, awaiting=["EX11"], surgery_done=False, next_visit=None)
    assert waiting == ("awaiting_judgement", {"codes": "EX11"})
    ready = next_step(SubjectState.ELIGIBLE, arm=None, awaiting=[], surgery_done=False, next_visit=None)
    assert ready == ("to_randomize", {})
    failed = next_step(SubjectState.SCREEN_FAILED, arm=None, awaiting=[], surgery_done=False, next_visit=None)
    assert failed == ("rescreen", {})
    treated = next_step(SubjectState.TREATED, arm="HT", awaiting=[], surgery_done=True, next_visit="M1")
    assert treated == ("visit_due", {"visit": "M1"})
    ended = next_step(SubjectState.WITHDRAWN, arm="HT", awaiting=[], surgery_done=True, next_visit="M1")
    assert ended == ("ended", {})


def test_a_screening_is_offered_once_consented_and_after_a_failure_but_not_while_it_waits_or_once_eligible() -> None:
    view: dict[str, Any] = {
        "state": SubjectState.SCREEN_FAILED, "arm": None, "surgery_date": None, "visits": [], "withdrawn_on": None,
        "consented_on": "2026-12-01", "adverse_events": [], "completed_on": None, "consent_withdrawn_on": None,
    }  # fmt: skip
    assert ("screen_subject", {}) in due_forms(view)
    assert ("screen_subject", {}) not in due_forms(view, awaiting=["EX11"])
    assert ("screen_subject", {}) not in due_forms(view | {"state": SubjectState.ELIGIBLE})
    assert ("screen_subject", {}) in due_forms(view | {"state": SubjectState.CONSENTED})


def test_every_fact_the_record_keeps_is_named_by_its_form_or_its_own_words_never_its_class() -> None:
    # The trial's own facts (tests may register others of their own).
    facts = {name for (name, _), model in registered_types().items() if model.__module__.startswith("shared.")}
    for lang in ("en", "zh"):
        for event_type in facts:
            assert event_title(FORMS, event_type, lang, translator(lang)) != event_type, f"{event_type} has no words"
    assert {f"event_{t}" for t in facts if FORMS.form_recorded_by(t) is None} <= set(TEXT)


def test_every_word_a_page_asks_for_by_name_is_in_both_languages() -> None:
    web = Path(__file__).resolve().parents[3] / "services" / "web"
    asked = {
        key
        for source in (*web.glob("templates/*.html"), *web.rglob("*.py"))
        for key in re.findall(r"""\bt\(\s*['"]([a-z_]+)['"]\s*[,)]""", source.read_text())
    }
    assert len(asked) > 80
    assert not asked - set(TEXT), sorted(asked - set(TEXT))


def test_a_revised_consent_form_comes_first_and_the_schedules_forms_wait_for_it() -> None:
    visits = [{"visit": "W1", "status": "completed"}, {"visit": "M1", "status": "scheduled"}]
    operated = view(state="treated", arm="HT", surgery_date="2026-11-25", visits=visits)
    waiting = [f for f, _ in due_forms(operated, TAKEN, reconsent="2.0")]
    assert waiting[0] == "record_consent"
    assert not {"record_visit", "record_procedure", "screen_subject"} & set(waiting)
    assert {"report_adverse_event", "withdraw_subject", "record_concomitant_medication"} <= set(waiting), (
        "safety, withdrawal and the logs never wait"
    )
    assert not any(TAKEN[f].visits for f in waiting if f in TAKEN), "no collected form of a visit"
    assert "record_visit" in [f for f, _ in due_forms(operated, TAKEN)]
    step = next_step(SubjectState.TREATED, arm="HT", awaiting=[], surgery_done=True, next_visit="M1", reconsent="2.0")
    assert step == ("reconsent", {"version": "2.0"})
    ended = next_step(
        SubjectState.WITHDRAWN, arm="HT", awaiting=[], surgery_done=True, next_visit=None, reconsent="2.0"
    )
    assert ended == ("ended", {})


def test_two_versions_a_subject_stands_under_are_set_side_by_side_where_they_differ() -> None:
    first = cached_protocol(DEFAULT_PROTOCOL_FILE)
    second = AmendmentDeployment.model_validate(amendment({s.code: date(2027, 3, 2) for s in first.sites})).definition
    records = {
        "forms": [
            {"form": "screening", "recorded_at": "2027-03-01T02:00:00Z", "protocol_version": "1.0"},
            {"form": "visit-W1", "recorded_at": "2027-03-02T02:00:00Z", "protocol_version": "2.0"},
        ]
    }
    assert versions_of(records, None) == ["1.0", "2.0"]
    for lang, age in (("en", "Age 18 to 65 (inclusive) at screening."), ("zh", "筛选时年龄18至65岁（含）。")):
        compared = side_by_side([first, second], records, lang, lambda form, lang, entry: form_title(FORMS, form, lang))
        differs = {d.what: d.said for d in compared.differences}
        assert compared.versions == ("1.0", "2.0") and set(differs) == {"IN07", "W1", "consent"}
        assert (
            differs["IN07"][1] == age and differs["W1"] == ("7 ± 2", "7 ± 3") and differs["consent"] == ("1.0", "2.0")
        )
        assert compared.forms["1.0"] == [form_title(FORMS, "screening", lang)]
        assert compared.forms["2.0"] == [form_title(FORMS, "visit-W1", lang)]
