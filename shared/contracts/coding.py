"""The sponsor's coding dictionaries: verbatim terms coded to a preferred term and its class.

MedDRA and WHODrug are licensed, so the sponsor supplies the files: adverse events and medical history are coded
with `AE_DICTIONARY_FILE` (CSV `verbatim_term,preferred_term,system_organ_class`), concomitant medications with
`DRUG_DICTIONARY_FILE` (CSV `verbatim_term,drug_name,atc_code,atc_class`). Without a file, or for a term it does not
hold, the entry stays uncoded and says so, never coded by a guess.
"""

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Self

AE_COLUMNS = ("verbatim_term", "preferred_term", "system_organ_class")
DRUG_COLUMNS = ("verbatim_term", "drug_name", "atc_code", "atc_class")


class InvalidDictionary(Exception):
    """The dictionary file cannot be used; the message names the file and what is wrong."""


def _key(term: str) -> str:
    return " ".join(term.split()).casefold()


@dataclass(frozen=True)
class Coding:
    """A term as the dictionary codes it: its preferred term (MedDRA PT, WHODrug drug name) and its class (the
    system organ class, the ATC class), with the class's code where the dictionary has one (ATC)."""

    preferred_term: str
    class_name: str
    class_code: str = ""


@dataclass(frozen=True)
class TermDictionary:
    terms: dict[str, Coding] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None, columns: tuple[str, ...] = AE_COLUMNS) -> Self:
        """The file's codings (the verbatim term, then the preferred term, the class, and the class code if the
        columns have one)."""
        if path is None:
            return cls()
        try:
            with path.open(newline="", encoding="utf-8") as f:
                reader = csv.reader(f)
                if tuple(next(reader, ())) != columns:
                    raise InvalidDictionary(f"{path}: the columns must be {','.join(columns)}")
                rows = [row for row in reader if row]
        except OSError as exc:
            raise InvalidDictionary(f"{path}: {exc.strerror}") from exc
        if short := next((n for n, row in enumerate(rows, start=2) if len(row) != len(columns)), None):
            raise InvalidDictionary(f"{path}, line {short}: {len(columns)} columns expected")
        if len(columns) == len(AE_COLUMNS):
            return cls({_key(term): Coding(preferred, name) for term, preferred, name in rows})
        return cls({_key(term): Coding(preferred, name, code) for term, preferred, code, name in rows})

    def code(self, verbatim: str) -> Coding | None:
        """The coding of a verbatim term, matched without regard to case or spacing."""
        return self.terms.get(_key(verbatim))


@dataclass(frozen=True)
class Dictionaries:
    """Both of the sponsor's dictionaries, by what they code."""

    adverse_events: TermDictionary = field(default_factory=TermDictionary)
    drugs: TermDictionary = field(default_factory=TermDictionary)

    @classmethod
    def load(cls, adverse_events: Path | None, drugs: Path | None) -> Self:
        return cls(TermDictionary.load(adverse_events), TermDictionary.load(drugs, DRUG_COLUMNS))

    def of(self, coded_by: str) -> TermDictionary:
        """The dictionary a log form names (`coded_by` in the data dictionary)."""
        return self.drugs if coded_by == "drugs" else self.adverse_events
