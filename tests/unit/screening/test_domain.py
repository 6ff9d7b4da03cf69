"""Given past events, when a consent form arrives, then these events or this rule's refusal."""

from datetime import date
from decimal import Decimal
from functools import partial
from uuid import uuid4

import pytest

from services.screening import domain
from shared.contracts import rules
from shared.contracts.events import (
    ConsentDeclined,
    ConsentRecorded,
    ConsentWithdrawn,
    DatabaseLocked,
    DomainEvent,
    ProtocolDeviationRecorded,
    SubjectRandomized,
    SubjectScreened,
    SubjectWithdrawn,
)
from shared.contracts.forms import ConsentForm, ConsentRefusalForm, ConsentWithdrawalForm, ScreeningForm
from shared.contracts.protocol import ProtocolDefinition, load_protocol
from shared.runtime.settings import DEFAULT_PROTOCOL_FILE
from tests.unit.history import given

PROTOCOL = load_protocol(DEFAULT_PROTOCOL_FILE)
TODAY = date(2026, 11, 25)
FORM = ConsentForm(
    consent_form_version="1.0", signed_on=date(2026, 11, 20), obtained_by="inv-01", signed_by_subject=True
)


def decide(
    form: ConsentForm = FORM,
    history: list[DomainEvent] | None = None,
    site: str = "NFH",
    subject: str = "NFH-001",
    protocol: ProtocolDefinition = PROTOCOL,
    database_lock: DatabaseLocked | None = None,
) -> list[DomainEvent]:
    state = domain.replay(given(list(history or [])))
    return list(
        domain.record_consent(
            state, form, protocol=protocol, site=site, subject=subject, today=TODAY, database_lock=database_lock
        )
    )


def test_consent_on_an_approved_form_is_recorded() -> None:
    assert decide() == [
        ConsentRecorded(
            consent_form_version="1.0",
            signed_on=date(2026, 11, 20),
            obtained_by="inv-01",
            signed_by_subject=True,
            signed_by_representative=False,
        )
    ]


def test_consent_signed_by_a_representative_alone_is_recorded() -> None:
    form = FORM.model_copy(update={"signed_by_subject": False, "signed_by_representative": True})
    assert len(decide(form)) == 1


def test_second_consent_on_the_same_form_version_is_refused() -> None:
    with pytest.raises(domain.ConsentAlreadyRecorded):
        decide(history=decide())


def test_consent_signed_after_today_is_refused_naming_the_field() -> None:
    with pytest.raises(rules.DateInFuture) as refused:
        decide(FORM.model_copy(update={"signed_on": date(2026, 11, 26)}))
    assert refused.value.field == "signed_on"


def test_consent_signed_today_is_recorded() -> None:
    assert len(decide(FORM.model_copy(update={"signed_on": TODAY}))) == 1


def test_unsigned_consent_is_refused() -> None:
    with pytest.raises(domain.ConsentNotSigned):
        decide(FORM.model_copy(update={"signed_by_subject": False}))


def test_unapproved_consent_form_version_is_refused() -> None:
    with pytest.raises(domain.UnknownConsentFormVersion) as refused:
        decide(FORM.model_copy(update={"consent_form_version": "0.9"}))
    assert refused.value.field == "consent_form_version"


def test_unknown_site_is_refused() -> None:
    with pytest.raises(rules.UnknownSite):
        decide(site="XYZ", subject="XYZ-001")


def test_subject_numbered_for_another_site_is_refused() -> None:
    with pytest.raises(rules.SubjectNotOfSite):
        decide(site="NFH", subject="GZ2-001")


def test_suspended_site_cannot_consent_subjects() -> None:
    suspended = PROTOCOL.model_copy(
        update={"sites": tuple(s.model_copy(update={"status": "suspended"}) for s in PROTOCOL.sites)}
    )
    with pytest.raises(rules.SiteNotActive):
        decide(protocol=suspended)


DEVIATION_ID = uuid4()
# At the site, today: what the screenings below share.
screen_at_nfh = partial(
    domain.screen, protocol=PROTOCOL, site="NFH", subject="NFH-001", today=TODAY, deviation_id=DEVIATION_ID
)
SCREENING_FORM = ScreeningForm(
    screening_date=date(2026, 11, 24), age_years=40, sex="male", height_cm=Decimal("175"), weight_kg=Decimal("70")
)


def screen(history: list[DomainEvent], form: ScreeningForm = SCREENING_FORM) -> list[DomainEvent]:
    state = domain.replay(given(history))
    return screen_at_nfh(state, form, judges=True)


def test_screening_without_consent_is_refused_under_in09() -> None:
    with pytest.raises(rules.NotConsented) as refused:
        screen([])
    assert refused.value.rule == "IN09"


def test_screening_after_consent_withdrawal_is_refused() -> None:
    withdrawn = ConsentWithdrawn(withdrawn_on=date(2026, 11, 22), recorded_by="inv-01")
    with pytest.raises(rules.ConsentWasWithdrawn):
        screen([*decide(), withdrawn])


def test_screening_dated_before_consent_is_refused() -> None:
    with pytest.raises(domain.ScreeningBeforeConsent):
        screen(decide(), SCREENING_FORM.model_copy(update={"screening_date": date(2026, 11, 19)}))


def test_a_form_date_after_the_screening_date_is_invalid_naming_the_field() -> None:
    form = ScreeningForm.model_validate(SCREENING_FORM.model_dump() | {"hair_loss_onset_date": date(2026, 11, 25)})
    with pytest.raises(domain.DateAfterScreening) as refused:
        screen(decide(), form)
    assert refused.value.field == "hair_loss_onset_date"


def test_a_screening_date_after_today_is_invalid() -> None:
    with pytest.raises(rules.DateInFuture) as refused:
        screen(decide(), SCREENING_FORM.model_copy(update={"screening_date": date(2026, 11, 26)}))
    assert refused.value.field == "screening_date"


def test_a_screening_records_every_criterion_and_a_rescreen_is_numbered() -> None:
    [first] = screen(decide())
    assert isinstance(first, SubjectScreened)
    assert first.screening_number == 1 and not first.eligible
    assert len(first.criteria) == 20
    assert "IN01" in first.reasons  # left blank on the form: missing, never met
    [second] = screen([*decide(), first])
    assert isinstance(second, SubjectScreened) and second.screening_number == 2


def test_consent_withdrawal_needs_consent_and_happens_once() -> None:
    withdrawal = ConsentWithdrawalForm(withdrawn_on=date(2026, 11, 24), recorded_by="inv-01")

    def withdraw(history: list[DomainEvent]) -> list[DomainEvent]:
        state = domain.replay(given(history))
        return domain.withdraw_consent(state, withdrawal, protocol=PROTOCOL, site="NFH", subject="NFH-001", today=TODAY)

    with pytest.raises(rules.NotConsented):
        withdraw([])
    [withdrawn] = withdraw(decide())
    assert withdrawn == ConsentWithdrawn(withdrawn_on=date(2026, 11, 24), recorded_by="inv-01")
    with pytest.raises(rules.ConsentWasWithdrawn):
        withdraw([*decide(), withdrawn])


def test_a_refusal_of_consent_is_recorded_and_nothing_may_follow_it() -> None:
    refusal = ConsentRefusalForm(declined_on=date(2026, 11, 20), recorded_by="crc-01", reason="concerns_about_surgery")

    def decline(history: list[DomainEvent]) -> list[DomainEvent]:
        state = domain.replay(given(history))
        return domain.decline_consent(
            state, refusal, protocol=PROTOCOL, site="NFH", subject="NFH-001", today=TODAY, database_lock=None
        )

    [declined] = decline([])
    assert isinstance(declined, ConsentDeclined) and declined.reason == "concerns_about_surgery"
    with pytest.raises(domain.ConsentWasDeclined):
        decline([declined])
    with pytest.raises(domain.ConsentWasDeclined):
        decide(history=[declined])
    with pytest.raises(domain.ConsentWasDeclined):
        screen([declined])
    with pytest.raises(domain.ConsentAlreadyGiven):
        decline(decide())


def test_consent_may_be_withdrawn_after_the_subject_was_withdrawn_from_the_study() -> None:
    withdrawal = ConsentWithdrawalForm(withdrawn_on=date(2026, 11, 24), recorded_by="inv-01")
    left = SubjectWithdrawn(withdrawn_on=date(2026, 11, 23), reason_category="subject_decision", decided_by="subject")
    state = domain.replay(given([*decide(), left]))
    [withdrawn] = domain.withdraw_consent(
        state, withdrawal, protocol=PROTOCOL, site="NFH", subject="NFH-001", today=TODAY
    )
    assert isinstance(withdrawn, ConsentWithdrawn)


def test_consent_is_corrected_on_its_current_record_with_a_reason_even_after_it_was_withdrawn() -> None:
    history = given([*decide(), ConsentWithdrawn(withdrawn_on=date(2026, 11, 24), recorded_by="crc-01")])
    current = history[0].envelope.id
    correction = FORM.model_copy(
        update={"signed_on": date(2026, 11, 19), "supersedes": current, "reason": "date copied from the wrong page"}
    )
    state = domain.replay(history)
    [corrected] = domain.record_consent(
        state, correction, protocol=PROTOCOL, site="NFH", subject="NFH-001", today=TODAY, database_lock=None
    )
    assert isinstance(corrected, ConsentRecorded)
    assert (corrected.signed_on, corrected.supersedes) == (date(2026, 11, 19), current)
    with pytest.raises(rules.ReasonRequired):
        domain.record_consent(
            state,
            correction.model_copy(update={"reason": " "}),
            protocol=PROTOCOL,
            site="NFH",
            subject="NFH-001",
            today=TODAY,
            database_lock=None,
        )
    with pytest.raises(rules.StaleCorrection):
        domain.record_consent(
            state,
            correction.model_copy(update={"supersedes": uuid4()}),
            protocol=PROTOCOL,
            site="NFH",
            subject="NFH-001",
            today=TODAY,
            database_lock=None,
        )


def test_a_corrected_screening_is_evaluated_again_under_the_same_number() -> None:
    history = given([*decide(), *screen([*decide()])])
    first = history[-1].envelope.id
    light = SCREENING_FORM.model_copy(update={"weight_kg": Decimal("50"), "supersedes": first, "reason": "scale error"})
    state = domain.replay(history)
    [corrected] = screen_at_nfh(state, light, judges=True)
    assert isinstance(corrected, SubjectScreened)
    assert (corrected.screening_number, corrected.supersedes, corrected.bmi) == (1, first, Decimal("16.3"))
    assert corrected.form.supersedes is None and corrected.form.reason is None, "the form as the site filled it"


def test_a_randomized_subject_whose_corrected_screening_is_ineligible_keeps_the_arm_with_a_deviation() -> None:
    randomized = SubjectRandomized(
        arm="HT", randomization_number=1, stratum="NFH", stratum_slot=1, list_version=1, list_commitment="0" * 64
    )
    history = given([*decide(), *screen([*decide()]), randomized])
    screened = history[-2].envelope.id
    light = SCREENING_FORM.model_copy(update={"weight_kg": Decimal("50"), "supersedes": screened, "reason": "scale"})
    with pytest.raises(rules.AlreadyRandomized):  # a new screening: none after randomization
        screen_at_nfh(
            domain.replay(history), light.model_copy(update={"supersedes": None, "reason": None}), judges=True
        )
    with pytest.raises(rules.VersionRequired):  # meant as a correction, but of no named record: say so
        screen_at_nfh(domain.replay(history), light.model_copy(update={"supersedes": None}), judges=True)
    corrected, deviation = screen_at_nfh(domain.replay(history), light, judges=True)
    assert isinstance(corrected, SubjectScreened) and not corrected.eligible
    assert isinstance(deviation, ProtocolDeviationRecorded)
    assert (deviation.code, deviation.deviation_id) == (domain.RANDOMIZED_INELIGIBLE, DEVIATION_ID)
    randomized_on = PROTOCOL.local_date("NFH", history[-1].envelope.time)
    assert deviation.occurred_on == randomized_on, "the randomization's day, not the correction's"


def test_a_consent_withdrawal_and_a_refusal_are_corrected_on_their_current_record() -> None:
    withdrawal = ConsentWithdrawalForm(withdrawn_on=date(2026, 11, 24), recorded_by="crc-01")
    history = given([*decide(), ConsentWithdrawn(withdrawn_on=date(2026, 11, 24), recorded_by="crc-01")])
    with pytest.raises(rules.ConsentWasWithdrawn):
        domain.withdraw_consent(
            domain.replay(history), withdrawal, protocol=PROTOCOL, site="NFH", subject="NFH-001", today=TODAY
        )
    fixed = withdrawal.model_copy(
        update={"withdrawn_on": date(2026, 11, 23), "supersedes": history[-1].envelope.id, "reason": "date misread"}
    )
    [corrected] = domain.withdraw_consent(
        domain.replay(history), fixed, protocol=PROTOCOL, site="NFH", subject="NFH-001", today=TODAY
    )
    assert corrected == ConsentWithdrawn(
        withdrawn_on=date(2026, 11, 23), recorded_by="crc-01", supersedes=history[-1].envelope.id
    )


def test_a_suspended_site_corrects_its_screening_but_does_not_screen_anew() -> None:
    suspended = PROTOCOL.model_copy(
        update={"sites": tuple(s.model_copy(update={"status": "suspended"}) for s in PROTOCOL.sites)}
    )
    history = given([*decide(), *screen([*decide()])])
    state = domain.replay(history)

    def screened(form: ScreeningForm) -> list[DomainEvent]:
        return domain.screen(
            state,
            form,
            protocol=suspended,
            site="NFH",
            subject="NFH-001",
            today=TODAY,
            deviation_id=DEVIATION_ID,
            judges=True,
        )

    with pytest.raises(rules.SiteNotActive):
        screened(SCREENING_FORM)
    assert screened(SCREENING_FORM.model_copy(update={"supersedes": history[-1].envelope.id, "reason": "misread"}))


def test_ex11_is_the_investigators_judgement_a_coordinator_leaves_it_out() -> None:
    state = domain.replay(given(decide()))
    judged = SCREENING_FORM.model_copy(update={"investigator_judges_unsuitable": False})
    with pytest.raises(domain.InvestigatorJudgement) as refused:
        screen_at_nfh(state, judged, judges=False)
    assert (refused.value.rule, refused.value.field) == (
        "delegation.investigator_judgement",
        "investigator_judges_unsuitable",
    )
    assert refused.value.kind is rules.Refusal.FORBIDDEN
    [entered] = screen_at_nfh(state, SCREENING_FORM, judges=False)
    assert isinstance(entered, SubjectScreened)
    [ex11] = [c for c in entered.criteria if c.code == "EX11"]
    assert ex11.outcome == "missing" and not entered.eligible, "eligible only once the investigator has judged"


def test_a_coordinators_correction_keeps_the_investigators_ex11_judgement() -> None:
    judged = SCREENING_FORM.model_copy(update={"investigator_judges_unsuitable": False})
    history = given([*decide(), *screen([*decide()], judged)])
    correction = SCREENING_FORM.model_copy(
        update={"weight_kg": Decimal("71"), "supersedes": history[-1].envelope.id, "reason": "weighed again"}
    )
    [corrected] = screen_at_nfh(domain.replay(history), correction, judges=False)
    assert isinstance(corrected, SubjectScreened)
    [ex11] = [c for c in corrected.criteria if c.code == "EX11"]
    assert corrected.form.investigator_judges_unsuitable is False and ex11.outcome == "not_met"


def test_nobody_new_is_enrolled_once_the_database_is_locked_for_analysis() -> None:
    with pytest.raises(rules.DatabaseIsLocked) as refused:
        decide(database_lock=DatabaseLocked(through_sequence=41, subjects=40))
    assert refused.value.rule == "database.locked" and "through 41" in refused.value.detail
