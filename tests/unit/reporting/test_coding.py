"""The sponsor's AE dictionary: terms coded without regard to case or spacing; an unusable file named."""

from pathlib import Path

import pytest

from services.reporting.reports.coding import AeDictionary, Coding, InvalidDictionary

FIXTURE = Path(__file__).parent.parent.parent / "data" / "ae-dictionary.csv"


def test_a_verbatim_term_is_coded_whatever_its_case_and_spacing() -> None:
    dictionary = AeDictionary.load(FIXTURE)
    expected = Coding("Skin necrosis", "Skin and subcutaneous tissue disorders")
    assert dictionary.code("Scalp necrosis") == dictionary.code("  scalp   NECROSIS ") == expected


def test_a_term_the_dictionary_does_not_hold_and_no_dictionary_at_all_leave_it_uncoded() -> None:
    assert AeDictionary.load(FIXTURE).code("Itchy scalp after graft") is None
    assert AeDictionary.load(None).code("Sepsis") is None


@pytest.mark.parametrize("text", ["term,pt,soc\nSepsis,Sepsis,Infections\n", ""])
def test_a_file_without_the_three_columns_is_refused_naming_it(tmp_path: Path, text: str) -> None:
    path = tmp_path / "meddra.csv"
    path.write_text(text)
    with pytest.raises(InvalidDictionary, match=r"meddra\.csv: the columns must be"):
        AeDictionary.load(path)
    with pytest.raises(InvalidDictionary, match=r"missing\.csv"):
        AeDictionary.load(tmp_path / "missing.csv")
