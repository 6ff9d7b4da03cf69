"""What a form accepts is representable everywhere it goes: bounded text, dates, instants and numbers."""

from typing import Any

import pytest
from pydantic import ValidationError

from devstack.examples import CONSENT, ELIGIBLE, serious_adverse_event
from shared.contracts.forms import AdverseEventForm, ConsentForm, ScreeningForm


def refusal(model: type[Any], form: dict[str, Any]) -> tuple[tuple[str | int, ...], str]:
    with pytest.raises(ValidationError) as caught:
        model.model_validate(form)
    [error] = caught.value.errors()
    return error["loc"], error["msg"]


@pytest.mark.parametrize("text", ["Scalp\x00necrosis", "Scalp\x07necrosis", "Scalp\nnecrosis", "Scalp\x7f"])
def test_text_with_control_characters_is_refused_naming_the_field(text: str) -> None:
    loc, msg = refusal(AdverseEventForm, serious_adverse_event(term=text))
    assert loc == ("term",) and "text.control_characters" in msg


def test_text_that_is_not_unicode_is_refused_naming_the_field() -> None:
    loc, _ = refusal(AdverseEventForm, serious_adverse_event(term="Scalp\ud800"))
    assert loc == ("term",)


@pytest.mark.parametrize("signed_on", ["0001-01-01", "1899-12-31", "9999-12-31"])
def test_dates_outside_the_plausible_range_are_refused(signed_on: str) -> None:
    loc, msg = refusal(ConsentForm, CONSENT | {"signed_on": signed_on})
    assert loc == ("signed_on",) and ("1900-01-01" in msg or "2199-12-31" in msg)


@pytest.mark.parametrize("aware", ["0001-01-01T10:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_instants_that_would_overflow_in_utc_are_refused(aware: str) -> None:
    loc, msg = refusal(AdverseEventForm, serious_adverse_event(site_aware_at=aware))
    assert loc == ("site_aware_at",) and "date.plausible_range" in msg


@pytest.mark.parametrize("fraction", ["1e-5000", "1e-6000000", "1" * 31, "1/0x"])
def test_fractions_are_bounded_before_they_are_parsed(fraction: str) -> None:
    loc, msg = refusal(ScreeningForm, ELIGIBLE | {"hair_loss_area_fraction": fraction})
    assert loc[0] == "hair_loss_area_fraction" and "at most 30 digits" in msg


@pytest.mark.parametrize("weight", ["1e-5000", "6.5e1", "1" * 10 + ".5", "NaN"])
def test_decimals_are_bounded_before_they_are_parsed(weight: str) -> None:
    loc, msg = refusal(ScreeningForm, ELIGIBLE | {"weight_kg": weight})
    assert loc == ("weight_kg",) and "without sign or exponent" in msg


def test_the_example_forms_are_still_accepted() -> None:
    assert ScreeningForm.model_validate(ELIGIBLE | {"weight_kg": "55.5", "hair_loss_area_fraction": "0.25"})
    assert AdverseEventForm.model_validate(serious_adverse_event(term="Scalp necrosis, grade 3 (CTCAE)"))
