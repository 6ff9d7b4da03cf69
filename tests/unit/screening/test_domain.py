"""Given past events, when a consent form arrives, then these events or this rule's refusal."""

from datetime import date

import pytest

from services.screening import domain
from shared.events import ConsentRecorded
from shared.forms import ConsentForm
from shared.protocol import ProtocolDefinition, load_protocol
from shared.settings import DEFAULT_PROTOCOL_FILE

PROTOCOL = load_protocol(DEFAULT_PROTOCOL_FILE)
TODAY = date(2026, 11, 25)
FORM = ConsentForm(
    consent_form_version="1.0", signed_on=date(2026, 11, 20), obtained_by="inv-01", signed_by_subject=True
)


def decide(
    form: ConsentForm = FORM,
    history: list[ConsentRecorded] | None = None,
    site: str = "NFH",
    subject: str = "NFH-001",
    protocol: ProtocolDefinition = PROTOCOL,
) -> list[object]:
    state = domain.replay(list(history or []))
    return list(domain.record_consent(state, form, protocol=protocol, site=site, subject=subject, today=TODAY))


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
        decide(history=decide())  # type: ignore[arg-type]


def test_consent_signed_after_today_is_refused_naming_the_field() -> None:
    with pytest.raises(domain.DateInFuture) as refused:
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
    with pytest.raises(domain.UnknownSite):
        decide(site="XYZ", subject="XYZ-001")


def test_subject_numbered_for_another_site_is_refused() -> None:
    with pytest.raises(domain.SubjectNotOfSite):
        decide(site="NFH", subject="GZ2-001")


def test_suspended_site_cannot_consent_subjects() -> None:
    suspended = PROTOCOL.model_copy(
        update={"sites": tuple(s.model_copy(update={"status": "suspended"}) for s in PROTOCOL.sites)}
    )
    with pytest.raises(domain.SiteNotActive):
        decide(protocol=suspended)
