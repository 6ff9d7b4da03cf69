"""A collected form's rules, for a questionnaire added to a copy of the dictionary: given the subject's history,
when the site posts it at a visit, then its fact or the named refusal."""

from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID, uuid4

import pytest

from services.visits import collected, domain
from shared.contracts import rules
from shared.contracts.collected import CollectedForm
from shared.contracts.events import (
    AdverseEventReported,
    ConsentRecorded,
    ConsentWithdrawn,
    DomainEvent,
    FormRecorded,
    GraftProcedurePerformed,
    RecordedEvent,
)
from shared.contracts.protocol import ProtocolDefinition
from tests.questionnaire import NAME, questionnaire_protocol
from tests.unit.history import recorded
from tests.unit.visits.test_domain import PROCEDURE, PROTOCOL, SURGERY, TODAY, randomized

ENTRY = UUID("00000000-0000-4000-8000-00000000e001")


@pytest.fixture(scope="module")
def protocol(tmp_path_factory: pytest.TempPathFactory) -> ProtocolDefinition:
    return questionnaire_protocol(tmp_path_factory.mktemp("protocol"))


def operated(arm: str = "FG_HT") -> list[RecordedEvent]:
    fat_graft = PROCEDURE.fat_graft if arm == "FG_HT" else None
    surgery = GraftProcedurePerformed(**PROCEDURE.model_dump(exclude={"reason", "fat_graft"}), fat_graft=fat_graft)
    return [randomized(arm), recorded(surgery, on=SURGERY)]


def post(
    protocol: ProtocolDefinition, history: list[RecordedEvent], visit: str = "M1", **answers: Any
) -> list[DomainEvent]:
    correction = {k: answers.pop(k) for k in ("supersedes", "reason") if k in answers}
    form = CollectedForm(
        form=NAME, visit=visit, answers={"assessed_on": "2026-02-20", "itch": 3} | answers, **correction
    )
    return collected.record_form(
        domain.replay(history), form, protocol=protocol, site="NFH", subject="NFH-001", today=TODAY, entry_id=ENTRY
    )


@pytest.fixture
def clean_rules() -> Iterator[None]:
    yield
    collected.FORM_RULES.pop(NAME, None)


def test_a_questionnaire_at_one_of_its_visits_is_recorded_with_the_dictionary_version(
    protocol: ProtocolDefinition,
) -> None:
    [fact] = post(protocol, operated(), tightness="mild", donor_fat_site_sore=True)
    assert fact == FormRecorded(
        form=NAME,
        visit="M1",
        answers={"assessed_on": "2026-02-20", "itch": 3, "tightness": "mild", "donor_fat_site_sore": True},
        dictionary_version=protocol.forms.version,
    )


@pytest.mark.parametrize(
    ("answers", "rule", "field"),
    [
        ({"itch": 11}, "form.answer", "itch"),
        ({"tightness": "unbearable"}, "form.answer", "tightness"),
        ({"itch": None}, "form.answer", "itch"),
        ({"mood": 3}, "form.answer", "mood"),
        ({"assessed_on": "2027-06-02"}, "date.not_future", "assessed_on"),
    ],
)
def test_an_answer_the_dictionary_does_not_take_is_refused_naming_its_item(
    protocol: ProtocolDefinition, answers: dict[str, Any], rule: str, field: str
) -> None:
    with pytest.raises(rules.RuleViolation) as refused:
        post(protocol, operated(), **answers)
    assert (refused.value.rule, refused.value.field) == (rule, field)


def test_an_item_of_the_fat_graft_arm_is_refused_in_the_other_arm(protocol: ProtocolDefinition) -> None:
    assert post(protocol, operated("HT"))  # not asked: taken without it
    with pytest.raises(collected.NotCollected) as refused:
        post(protocol, operated("HT"), donor_fat_site_sore=False)
    assert refused.value.field == "donor_fat_site_sore"


def test_a_visit_the_form_is_not_entered_at_is_refused(protocol: ProtocolDefinition) -> None:
    with pytest.raises(domain.UnknownVisit) as refused:
        post(protocol, operated(), visit="M3")
    assert "M1, M6" in refused.value.detail


def test_it_waits_for_the_surgery_and_a_randomization(protocol: ProtocolDefinition) -> None:
    with pytest.raises(domain.VisitBeforeSurgery):
        post(protocol, [randomized()])
    with pytest.raises(rules.NotRandomized):
        post(protocol, [])


def test_a_second_record_at_the_same_visit_is_a_correction_naming_the_first(protocol: ProtocolDefinition) -> None:
    history = operated()
    first = recorded(post(protocol, history)[0])
    with pytest.raises(collected.FormAlreadyRecorded):
        post(protocol, [*history, first], itch=4)
    [corrected] = post(protocol, [*history, first], itch=4, supersedes=first.envelope.id, reason="Misread the scale")
    assert isinstance(corrected, FormRecorded) and corrected.supersedes == first.envelope.id
    assert post(protocol, [*history, first], visit="M6")  # another visit's record is its own


def test_the_forms_own_rule_decides_after_the_dictionarys(protocol: ProtocolDefinition, clean_rules: None) -> None:
    class ItchAfterGraft(rules.RuleViolation):
        rule = "scalp-symptoms.itch"

    def no_itch_of_ten(_: domain.FollowUpState, answers: Any) -> None:
        if answers.itch == 10:
            raise ItchAfterGraft("an itch of 10 is reported as an adverse event", field="itch")

    collected.FORM_RULES[NAME] = no_itch_of_ten
    assert post(protocol, operated(), itch=9)
    with pytest.raises(ItchAfterGraft):
        post(protocol, operated(), itch=10)


def test_a_condition_or_rule_without_its_counterpart_stops_the_service(
    protocol: ProtocolDefinition, clean_rules: None
) -> None:
    assert collected.unruled(protocol.forms) == []
    collected.FORM_RULES["no-such-form"] = lambda state, answers: None
    try:
        assert collected.unruled(protocol.forms) == ["no-such-form"]
    finally:
        collected.FORM_RULES.pop("no-such-form")


def test_the_casebook_knows_each_visits_record_as_its_own_form(protocol: ProtocolDefinition) -> None:
    assert protocol.forms.casebook_form(f"{NAME}-M6") == NAME
    assert protocol.forms.casebook_form(f"{NAME}-M3") is None
    assert protocol.forms.label_of("FormRecorded", "answers.itch", {"form": NAME}) is not None


CONSENTED = ConsentRecorded(
    consent_form_version="1.0",
    signed_on=date(2026, 1, 5),
    obtained_by="inv-01",
    signed_by_subject=True,
    signed_by_representative=False,
)
MEDICATION = {"medication": "Cefalexin", "route": "oral", "indication": "Prophylaxis", "start_date": "2026-01-20"}


def log_entry(history: list[RecordedEvent], entry: UUID | None = None, **answers: Any) -> list[DomainEvent]:
    correction = {k: answers.pop(k) for k in ("supersedes", "reason") if k in answers}
    form = CollectedForm(
        form="concomitant-medication", entry=entry, answers=MEDICATION | {"ongoing": True} | answers, **correction
    )
    return collected.record_form(
        domain.replay(history), form, protocol=PROTOCOL, site="NFH", subject="NFH-001", today=TODAY, entry_id=ENTRY
    )


def test_a_log_takes_entries_from_consent_each_with_its_own_id_and_no_visit() -> None:
    with pytest.raises(rules.NotConsented):
        log_entry([])
    [fact] = log_entry([recorded(CONSENTED)])
    assert isinstance(fact, FormRecorded) and (fact.entry, fact.visit) == (ENTRY, None)
    assert fact.casebook_name == f"concomitant-medication-{ENTRY}"
    assert collected.entry_of((recorded(fact),)) == {"entry": str(ENTRY)}
    withdrawn = [recorded(CONSENTED), recorded(ConsentWithdrawn(withdrawn_on=date(2026, 1, 6), recorded_by="crc"))]
    with pytest.raises(rules.ConsentWasWithdrawn):
        log_entry(withdrawn)


def test_a_log_entry_is_corrected_by_its_id_and_only_an_entry_the_subject_has() -> None:
    first = recorded(log_entry([recorded(CONSENTED)])[0])
    history = [recorded(CONSENTED), first]
    [corrected] = log_entry(history, ENTRY, route="topical", supersedes=first.envelope.id, reason="route mistyped")
    assert isinstance(corrected, FormRecorded) and corrected.entry == ENTRY and corrected.answers["route"] == "topical"
    with pytest.raises(rules.NothingToCorrect):
        log_entry(history, uuid4(), supersedes=first.envelope.id, reason="no such entry")
    with pytest.raises(collected.FormAlreadyRecorded):
        log_entry(history, ENTRY)


@pytest.mark.parametrize(
    ("answers", "refusal"),
    [
        ({"ongoing": False, "end_date": "2026-01-19"}, collected.EndBeforeStart),
        ({"ongoing": True, "end_date": "2026-01-25"}, collected.EndOfOngoing),
        ({"adverse_event": "0f8fad5b-d9cb-469f-a165-70867728950e"}, collected.UnknownRecord),
        ({"start_date": "2027-06-02"}, rules.DateInFuture),
        ({"visit": "M1"}, None),
    ],
)
def test_an_entry_that_cannot_be_is_refused_naming_its_item(
    answers: dict[str, Any], refusal: type[rules.RuleViolation] | None
) -> None:
    if refusal is None:  # a log's entry at a visit is no log entry at all
        with pytest.raises(ValueError):
            CollectedForm(form="concomitant-medication", entry=ENTRY, visit="M1", answers=MEDICATION)
        return
    with pytest.raises(refusal) as refused:
        log_entry([recorded(CONSENTED)], **answers)
    assert refused.value.field in answers


def test_an_entry_names_an_adverse_event_the_subject_has() -> None:
    ae_id = uuid4()
    reported = AdverseEventReported(
        ae_id=ae_id,
        term="Wound infection",
        onset_date=date(2026, 1, 25),
        site_aware_at=datetime(2026, 1, 25, 9, tzinfo=UTC),
        grade=2,
        seriousness=(),
        serious=False,
        relationship={"fat_graft": "not_related", "hair_transplantation": "possible"},
        action_taken="treatment_given",
        outcome="recovering",
    )
    [fact] = log_entry([recorded(CONSENTED), recorded(reported)], adverse_event=str(ae_id))
    assert isinstance(fact, FormRecorded) and fact.answers["adverse_event"] == str(ae_id)
