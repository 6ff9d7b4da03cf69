"""The sponsor's dictionaries: terms coded without regard to case or spacing; an unusable file named."""

from pathlib import Path

import pytest

from shared.contracts.coding import DRUG_COLUMNS, Coding, Dictionaries, InvalidDictionary, TermDictionary

DATA = Path(__file__).parent.parent.parent / "data"
AES, DRUGS = DATA / "ae-dictionary.csv", DATA / "drug-dictionary.csv"


def test_a_verbatim_term_is_coded_whatever_its_case_and_spacing() -> None:
    dictionary = TermDictionary.load(AES)
    expected = Coding("Skin necrosis", "Skin and subcutaneous tissue disorders")
    assert dictionary.code("Scalp necrosis") == dictionary.code("  scalp   NECROSIS ") == expected


def test_a_drug_is_coded_to_its_name_and_atc_class_with_the_class_code() -> None:
    drugs = Dictionaries.load(AES, DRUGS).of("drugs")
    assert drugs.code("prednisolone ACETATE") == Coding("Prednisolone", "Glucocorticoids", "H02AB06")
    assert Dictionaries.load(AES, DRUGS).of("adverse-events").code("Sepsis") == Coding(
        "Sepsis", "Infections and infestations"
    )


def test_a_term_the_dictionary_does_not_hold_and_no_dictionary_at_all_leave_it_uncoded() -> None:
    assert TermDictionary.load(AES).code("Itchy scalp after graft") is None
    assert TermDictionary.load(None).code("Sepsis") is None
    assert Dictionaries().drugs.code("Prednisolone") is None


@pytest.mark.parametrize("text", ["term,pt,soc\nSepsis,Sepsis,Infections\n", ""])
def test_a_file_without_the_three_columns_is_refused_naming_it(tmp_path: Path, text: str) -> None:
    path = tmp_path / "meddra.csv"
    path.write_text(text)
    with pytest.raises(InvalidDictionary, match=r"meddra\.csv: the columns must be"):
        TermDictionary.load(path)
    with pytest.raises(InvalidDictionary, match=r"missing\.csv"):
        TermDictionary.load(tmp_path / "missing.csv")


def test_a_row_with_a_column_missing_is_refused_naming_its_line(tmp_path: Path) -> None:
    path = tmp_path / "whodrug.csv"
    path.write_text(
        ",".join(DRUG_COLUMNS) + "\nIbuprofen,Ibuprofen,M01AE01,Propionic acid derivatives\nAspirin,Aspirin\n"
    )
    with pytest.raises(InvalidDictionary, match=r"whodrug\.csv, line 3: 4 columns expected"):
        TermDictionary.load(path, DRUG_COLUMNS)
