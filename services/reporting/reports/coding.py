"""The sponsor's adverse-event dictionary: verbatim terms coded to a preferred term and its system organ class.

MedDRA is licensed, so the sponsor supplies the file (`AE_DICTIONARY_FILE`, CSV with the columns
`verbatim_term,preferred_term,system_organ_class`); without one, or for a term it does not hold, the AE stays
uncoded and says so (SUPPAE coding status), never coded by a guess.
"""

import csv
from dataclasses import dataclass, field
from pathlib import Path

COLUMNS = ("verbatim_term", "preferred_term", "system_organ_class")


class InvalidDictionary(Exception):
    """The dictionary file cannot be used; the message names the file and what is wrong."""


def _key(term: str) -> str:
    return " ".join(term.split()).casefold()


@dataclass(frozen=True)
class Coding:
    preferred_term: str
    system_organ_class: str


@dataclass(frozen=True)
class AeDictionary:
    terms: dict[str, Coding] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path | None) -> "AeDictionary":
        if path is None:
            return cls()
        try:
            with path.open(newline="", encoding="utf-8") as f:
                reader = csv.DictReader(f)
                if tuple(reader.fieldnames or ()) != COLUMNS:
                    raise InvalidDictionary(f"{path}: the columns must be {','.join(COLUMNS)}")
                return cls(
                    {_key(r["verbatim_term"]): Coding(r["preferred_term"], r["system_organ_class"]) for r in reader}
                )
        except OSError as exc:
            raise InvalidDictionary(f"{path}: {exc.strerror}") from exc

    def code(self, verbatim: str) -> Coding | None:
        """The coding of a verbatim term, matched without regard to case or spacing."""
        return self.terms.get(_key(verbatim))
