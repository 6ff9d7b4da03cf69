"""The base of every domain rule error: which rule, what kind of refusal, and the field it is about."""

from enum import StrEnum


class Refusal(StrEnum):
    """How a refusal reads to a client; the gateway maps each to one HTTP status."""

    INVALID = "invalid"  # the form breaks a rule on its own values (422)
    CONFLICT = "conflict"  # the form is well-formed but the trial's state forbids it (409)
    NOT_FOUND = "not_found"  # it names something the trial does not have (404)


class RuleViolation(Exception):
    """Raised only by `decide` functions. Subclasses set `rule` and `kind` and say what failed."""

    rule: str = "rule"
    kind: Refusal = Refusal.CONFLICT
    title: str = "The trial's rules forbid this"

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
