"""A measurement written as exact decimal text ("55.5"), within the item's range: one regular expression that both
the JSON Schema (`pattern`) and the validation use, so what the document admits is exactly what is accepted.

Texts are canonical: no sign, no leading zero (but "0" itself), at most `places` digits after the point.
"""

import re
from dataclasses import dataclass


def integers(low: int, high: int) -> list[str]:
    """Alternatives matching the canonical decimal texts of the integers from `low` to `high`."""
    if low > high:
        return []
    found: list[str] = []
    for digits in range(len(str(low)), len(str(high)) + 1):
        first = max(low, 10 ** (digits - 1) if digits > 1 else 0)
        last = min(high, 10**digits - 1)
        if first <= last:
            found.extend(_same_length(str(first), str(last)))
    return found


def _same_length(first: str, last: str) -> list[str]:
    """Alternatives for the numbers from `first` to `last`, both written with the same number of digits."""
    if first == last:
        return [first]
    if len(first) == 1:
        return [f"[{first}-{last}]"]
    if first[0] == last[0]:
        return [first[0] + rest for rest in _same_length(first[1:], last[1:])]
    rest = len(first) - 1
    if first[1:] == "0" * rest and last[1:] == "9" * rest:
        return [f"[{first[0]}-{last[0]}][0-9]{{{rest}}}"]
    found = [first[0] + tail for tail in _same_length(first[1:], "9" * rest)]
    if int(first[0]) + 1 <= int(last[0]) - 1:
        found.append(f"[{int(first[0]) + 1}-{int(last[0]) - 1}][0-9]{{{rest}}}")
    found.extend(last[0] + tail for tail in _same_length("0" * rest, last[1:]))
    return found


@dataclass(frozen=True)
class DecimalRange:
    """Integer bounds (`low` ≥ 0), each inclusive or not, and the digits allowed after the point."""

    low: int
    high: int
    low_inclusive: bool = True
    high_inclusive: bool = True
    places: int = 9

    def pattern(self) -> str:
        """The whole text, anchored (JSON Schema's `pattern` matches anywhere otherwise)."""
        if self.low < 0 or self.low >= self.high or self.places < 0:
            raise ValueError(f"no decimal text pattern for {self}")
        whole = "|".join(integers(self.low if self.low_inclusive else self.low + 1, self.high - 1))
        any_fraction = rf"(\.[0-9]{{1,{self.places}}})?" if self.places else ""
        alternatives = [f"({whole}){any_fraction}"] if whole else []
        if self.high_inclusive:
            alternatives.append(f"{self.high}" + (rf"(\.0{{1,{self.places}}})?" if self.places else ""))
        if not self.low_inclusive and self.places:
            nonzero = [f"0{{{zeros}}}[1-9][0-9]{{0,{self.places - zeros - 1}}}" for zeros in range(self.places)]
            alternatives.append(rf"{self.low}\.({'|'.join(nonzero)})")
        return f"^({'|'.join(alternatives)})$"

    def compiled(self) -> re.Pattern[str]:
        return re.compile(self.pattern())
