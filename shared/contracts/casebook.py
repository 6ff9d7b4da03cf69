"""The subject's casebook: which recorded fact is which form, each form's current record, and its fields.

A form's current record is its version: the ETag of the form resource, what a correction supersedes,
what source data verification marks and what a query was raised on.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from shared.contracts.dictionary import DataDictionary, ItemType, walk
from shared.contracts.events import (
    AdverseEventReported,
    AdverseEventUpdated,
    CasebookLocked,
    CasebookUnlocked,
    ConsentDeclined,
    ConsentRecorded,
    ConsentWithdrawn,
    DomainEvent,
    FormRecorded,
    GraftProcedurePerformed,
    RecordedEvent,
    SubjectScreened,
    SubjectWithdrawn,
    VisitCompleted,
)
from shared.contracts.rules import (
    CasebookIsLocked,
    NothingToCorrect,
    ReasonRequired,
    StaleCorrection,
    VersionRequired,
)


def form_of(data: DomainEvent) -> str | None:
    """The form a fact records, or None for a fact that is no site form (an alert, a query, a missed visit)."""
    match data:
        case ConsentRecorded():
            return "consent"
        case ConsentWithdrawn():
            return "consent-withdrawal"
        case ConsentDeclined():
            return "consent-refusal"
        case SubjectScreened():
            return "screening"
        case GraftProcedurePerformed():
            return "procedure"
        case VisitCompleted(visit=visit):
            return f"visit-{visit}"
        case AdverseEventReported(ae_id=ae_id) | AdverseEventUpdated(ae_id=ae_id):
            return f"ae-{ae_id}"
        case SubjectWithdrawn():
            return "withdrawal"
        case FormRecorded() as recorded:
            return recorded.casebook_name
        case _:
            return None


@dataclass(frozen=True, slots=True)
class FormRecord:
    """The record of a form now current: a correction, a re-screen or an adverse event's follow-up replaces it."""

    form: str
    version: UUID
    sequence: int
    recorded_at: datetime
    data: DomainEvent


def locked(history: Iterable[RecordedEvent]) -> CasebookLocked | None:
    """The lock on the subject's casebook, if it is locked now."""
    lock = None
    for event in history:
        match event.data:
            case CasebookLocked() as locking:
                lock = locking
            case CasebookUnlocked():
                lock = None
    return lock


def refuse_if_locked(history: Iterable[RecordedEvent]) -> None:
    """Nothing is entered or corrected in a locked casebook (safety information excepted, by its callers)."""
    if locked(history) is not None:
        raise CasebookIsLocked("the subject's casebook is locked: a data manager unlocks it, with a reason")


def corrects(current: UUID | None, supersedes: UUID | None, reason: str | None, form: str) -> bool:
    """Whether a posted form corrects the form's current record. A correction names the record it was made on
    (only the current one may be corrected: else 412 with the current one) and says why."""
    if supersedes is None:
        if reason and current is not None:  # meant as a correction, but of which record?
            raise VersionRequired(
                f"a correction of the {form} record names the record it corrects: send If-Match with the form's "
                f"current ETag (GET …/forms/{form})",
                field="If-Match",
            )
        return False
    if current is None:
        raise NothingToCorrect(f"the subject has no {form} record to correct", field="supersedes")
    if supersedes != current:
        raise StaleCorrection(
            f"the {form} correction was made on {supersedes}, but the current record is {current}: read it again",
            field="supersedes",
            current_version=current,
        )
    if not (reason and reason.strip()):
        raise ReasonRequired(f"say why the {form} record is corrected", field="reason")
    return True


def has_field(dictionary: DataDictionary, form: str, path: str) -> bool:
    """Whether a dotted path names an item of the form as the site posts it (`weight_kg`, `biopsy.pregnant`), by
    the data dictionary: what a correction adds (its version, its reason) is not part of the form."""
    declared = dictionary.casebook_form(form)
    return declared is not None and path in dict(walk(dictionary.forms[declared].items))


def form_values(form: str, data: Mapping[str, object]) -> Mapping[str, object]:
    """A record's data as its form's items: a screening keeps the form as the site filled it, a collected form its
    answers; any other record is its items."""
    if form == "screening" and isinstance(data.get("form"), Mapping):
        return data["form"]  # type: ignore[return-value]
    answers = data.get("answers")
    return answers if isinstance(answers, Mapping) else data


def answered_items(dictionary: DataDictionary, form: str, data: Mapping[str, object]) -> frozenset[str]:
    """The items of a record that hold an answer, by dotted path (what a monitor verifies, item by item)."""
    declared = dictionary.casebook_form(form)
    if declared is None:
        return frozenset()
    flat = _flatten(form_values(form, data))
    items = walk(dictionary.forms[declared].items)
    return frozenset(
        path for path, item in items if item.type is not ItemType.GROUP and flat.get(path) not in (None, [])
    )


def field_changes(old: Mapping[str, object], new: Mapping[str, object]) -> list[dict[str, object]]:
    """Old → new per field (dotted for nested forms) between two records of a form, as the audit trail shows it."""
    flat_old, flat_new = _flatten(old), _flatten(new)
    skipped = {"supersedes", "form.supersedes", "form.reason"}
    return [
        {"field": name, "old": flat_old.get(name), "new": flat_new.get(name)}
        for name in sorted(flat_old.keys() | flat_new.keys())
        if name not in skipped and flat_old.get(name) != flat_new.get(name)
    ]


def _flatten(values: Mapping[str, object], prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for name, value in values.items():
        if isinstance(value, Mapping):
            flat |= _flatten(value, f"{prefix}{name}.")
        else:
            flat[f"{prefix}{name}"] = value
    return flat
