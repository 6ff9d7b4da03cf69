"""Electronic signatures: the meaning stated, a fresh authentication, exactly the records current, once."""

from datetime import UTC, datetime, timedelta
from uuid import uuid4
from zoneinfo import ZoneInfo

import pytest

from services.datamanagement import domain, signatures
from shared.contracts.events import SignatureApplied, SubjectCompletedStudy
from shared.contracts.forms import SignatureKind, Signing
from shared.contracts.protocol import SignaturePolicy
from shared.contracts.rules import RecordedBefore, Refusal
from tests.unit.datamanagement.casebooks import (
    CONSENT,
    MONITOR,
    SITE,
    Casebook,
    caller,
    screened,
    step,
    with_query,
)

SHANGHAI = ZoneInfo("Asia/Shanghai")
WINDOW = SignaturePolicy().reauthentication  # the protocol's five minutes
ELIGIBILITY = Signing(kind=SignatureKind.ELIGIBILITY, meaning="I confirm eligibility")
CASEBOOK = Signing(kind=SignatureKind.CASEBOOK, meaning="casebook reviewed and complete")


def sign(
    book: Casebook,
    signing: Signing = ELIGIBILITY,
    *,
    authenticated_ago: timedelta = timedelta(minutes=1),
    name: str | None = "Dr Li Wei",
) -> SignatureApplied:
    received = datetime(2026, 11, 25, 2, 30, tzinfo=UTC)
    investigator = caller(MONITOR).model_copy(
        update={
            "actor": "inv-7",
            "received_at": received,
            "authenticated_at": received - authenticated_ago,
            "printed_name": name,
        }
    )
    [signature] = signatures.sign(
        book.state, signing, signer=investigator, site_zone=SHANGHAI, signature_id=uuid4(), reauthentication=WINDOW
    )
    assert isinstance(signature, SignatureApplied)
    return signature


def test_eligibility_is_signed_on_the_current_consent_and_screening_with_name_and_both_times() -> None:
    book = Casebook((SITE, CONSENT), (SITE, screened()))
    signature = sign(book)
    assert signature.covers == {"consent": book.version("consent"), "screening": book.version("screening")}
    assert signature.printed_name == "Dr Li Wei" and signature.meaning == "I confirm eligibility"
    assert signature.signed_at == datetime(2026, 11, 25, 2, 30, tzinfo=UTC)
    assert signature.signed_at_site == "2026-11-25T10:30:00+08:00"
    assert len(signature.covered_sha256) == 64


def test_a_signature_states_its_meaning_word_for_word() -> None:
    book = Casebook((SITE, CONSENT), (SITE, screened()))
    with pytest.raises(signatures.WrongMeaning) as refused:
        sign(book, ELIGIBILITY.model_copy(update={"meaning": "ok"}))
    assert refused.value.field == "meaning"


@pytest.mark.parametrize("ago", [WINDOW + timedelta(seconds=1), timedelta(hours=8)])
def test_a_signature_needs_an_authentication_of_the_last_five_minutes(ago: timedelta) -> None:
    book = Casebook((SITE, CONSENT), (SITE, screened()))
    with pytest.raises(signatures.ReauthenticationRequired) as refused:
        sign(book, authenticated_ago=ago)
    assert refused.value.kind is Refusal.REAUTHENTICATE and refused.value.max_age == 300
    assert sign(book, authenticated_ago=WINDOW)


def test_only_an_eligible_screening_is_signed_and_the_name_falls_back_to_the_staff_code() -> None:
    with pytest.raises(signatures.NothingToSign):
        sign(Casebook((SITE, CONSENT), (SITE, screened().model_copy(update={"eligible": False}))))
    assert sign(Casebook((SITE, CONSENT), (SITE, screened())), name=None).printed_name == "inv-7"


def test_signing_again_unchanged_returns_the_standing_signature_and_a_correction_makes_it_signable() -> None:
    book = Casebook((SITE, CONSENT), (SITE, screened()))
    first = sign(book)
    book.record("inv-7", first)
    with pytest.raises(RecordedBefore) as standing:
        sign(book)
    assert standing.value.fact == first
    book.record(SITE, screened("57", supersedes=book.version("screening")))
    again = sign(book)
    assert again.covers["screening"] != first.covers["screening"] and again.covered_sha256 != first.covered_sha256


def test_the_casebook_is_signed_once_participation_is_over_and_every_query_closed() -> None:
    book = with_query()
    with pytest.raises(signatures.NothingToSign, match="participation"):
        sign(book, CASEBOOK)
    book.record(SITE, SubjectCompletedStudy(completed_on=CONSENT.signed_on, final_visit="M12"))
    with pytest.raises(signatures.NothingToSign, match="query"):
        sign(book, CASEBOOK)
    book.record(MONITOR, *domain.close_query(book.state, step(), caller=caller(MONITOR)))
    signature = sign(book, CASEBOOK)
    assert set(signature.covers) == {"consent", "screening"}
