"""Pure rules of the collected forms (declared only in the data dictionary): entered at one of the form's visits,
after the surgery, by a participating subject, once per visit unless corrected, or, for a log (concomitant
medications, medical history), as entries from consent until the subject leaves; each answer as the dictionary
declares it, an item under a condition only where the condition holds, a reference to one of the subject's own
records; and the form's own rule, if it has one.

A form's own rule is one function in `FORM_RULES`, named by the form; a condition the dictionary names is one
function in `CONDITIONS`, and the service does not start while a collected form's condition has none."""

from collections.abc import Callable
from datetime import date
from uuid import UUID

from pydantic import BaseModel, ValidationError

from services.visits.domain import (
    FollowUpState,
    SubjectHasCompleted,
    UnknownVisit,
    VisitBeforeSurgery,
    participating,
)
from shared.contracts.amendments import require_consent
from shared.contracts.casebook import corrects
from shared.contracts.collected import CollectedForm, answers_model, answers_of
from shared.contracts.dictionary import DataDictionary, ItemType
from shared.contracts.events import DomainEvent, FormRecorded, RecordedEvent
from shared.contracts.protocol import ProtocolDefinition
from shared.contracts.rules import (
    ConsentWasWithdrawn,
    DateInFuture,
    NotConsented,
    NothingToCorrect,
    Refusal,
    RuleViolation,
    SubjectIsWithdrawn,
    check_site,
)


class UndecidableForm(Exception):
    """The data dictionary names a condition or a rule this service has no function for: it does not start."""


class UnknownForm(RuleViolation):
    rule, kind, title = "form.known", Refusal.NOT_FOUND, "No such form"


class InvalidAnswer(RuleViolation):
    rule, kind, title = "form.answer", Refusal.INVALID, "An answer the form does not take"


class NotCollected(RuleViolation):
    rule, kind, title = "form.not_collected", Refusal.INVALID, "An item not collected for this subject"


class AnswerRequired(RuleViolation):
    rule, kind, title = "form.answer_required", Refusal.INVALID, "A mandatory item without an answer"


class FormAlreadyRecorded(RuleViolation):
    rule, title = "form.once", "Form already recorded at this visit"


class UnknownRecord(RuleViolation):
    rule, kind, title = "form.reference", Refusal.INVALID, "A record the subject does not have"


class EndBeforeStart(RuleViolation):
    rule, kind, title = "form.end_after_start", Refusal.INVALID, "An end date before the start date"


class EndOfOngoing(RuleViolation):
    rule, kind, title = "form.ongoing_without_end", Refusal.INVALID, "An ongoing entry with an end date"


# When an item is collected at all, by the condition's name in the dictionary.
Condition = Callable[[FollowUpState, ProtocolDefinition], bool]
CONDITIONS: dict[str, Condition] = {
    "female": lambda state, _: state.female is True,
    "fat_graft_arm": lambda state, protocol: (
        state.randomized is not None and protocol.receives_fat_graft(state.randomized.arm)
    ),
}


def _ends_after_it_starts(state: FollowUpState, answers: BaseModel) -> None:
    """A medication or a condition either goes on or has ended, on or after the day it started."""
    start, end, ongoing = (getattr(answers, name) for name in ("start_date", "end_date", "ongoing"))
    if ongoing and end is not None:
        raise EndOfOngoing("an ongoing entry has no end date", field="end_date")
    if start is not None and end is not None and end < start:
        raise EndBeforeStart(f"end_date {end} is before start_date {start}", field="end_date")


# A collected form's own rule, by the form's name: it raises the rule's error, or returns.
FormRule = Callable[[FollowUpState, BaseModel], None]
FORM_RULES: dict[str, FormRule] = {
    "concomitant-medication": _ends_after_it_starts,
    "medical-history": _ends_after_it_starts,
}


def unruled(dictionary: DataDictionary) -> list[str]:
    """What the service cannot decide: a collected form's condition without a function, a rule without a form."""
    used = {item.when for form in dictionary.collected.values() for item in form.items.values() if item.when}
    return sorted(used - CONDITIONS.keys()) + sorted(FORM_RULES.keys() - dictionary.collected.keys())


def record_form(
    state: FollowUpState,
    record: CollectedForm,
    *,
    protocol: ProtocolDefinition,
    site: str,
    subject: str,
    today: date,
    entry_id: UUID,
    consent_required: str | None = None,
) -> list[DomainEvent]:
    """A collected form at one of its visits (after the surgery, for a participating subject, who signed the
    consent form an amendment revised), or a log's entry (from consent; a new entry takes `entry_id`, a correction
    names its entry)."""
    check_site(protocol, site, subject, enrolling=False)
    form = protocol.forms.collected.get(record.form)
    if form is None:
        raise UnknownForm(f"no collected form {record.form!r} in the data dictionary", field="form")
    if form.log:
        _keeping_a_log(state, record, subject)
        entry = record.entry or entry_id
        name = f"{record.form}-{entry}"
        if record.entry is not None and name not in state.forms:
            raise NothingToCorrect(f"{subject} has no {record.form} entry {record.entry}", field="entry")
    else:
        participating(state, subject)
        if record.supersedes is None:
            require_consent(consent_required, frozenset(state.consents.values()), subject)
        if record.visit not in form.visits:
            raise UnknownVisit(
                f"{record.form} is entered at {', '.join(form.visits)}, not {record.visit}", field="visit"
            )
        if state.procedure is None:
            raise VisitBeforeSurgery(f"{record.form} at {record.visit} comes after a recorded surgery")
        name = f"{record.form}-{record.visit}"
    answers = _valid(protocol.forms, record)
    for item_name, item in form.items.items():
        value = getattr(answers, item_name)
        given = value is not None
        if item.when is not None and not CONDITIONS[item.when](state, protocol):
            if given:
                raise NotCollected(f"{item_name} is not collected for {subject} ({item.when})", field=item_name)
        elif item.required and not given:
            raise AnswerRequired(f"{item_name} is required", field=item_name)
        if given and item.type is ItemType.DATE and value > today:
            raise DateInFuture(f"{item_name} {value} is after today", field=item_name)
        if given and item.refers_to == "adverse-event" and value not in state.adverse_events:
            raise UnknownRecord(f"{subject} has no adverse event {value}", field=item_name)
    current = state.forms.get(name)
    if current is not None and record.supersedes is None:
        raise FormAlreadyRecorded(f"{name} is recorded; send a correction with supersedes and reason")
    correcting = corrects(current, record.supersedes, record.reason, name)
    if state.completed and not correcting:
        raise SubjectHasCompleted(f"{subject} has completed the study")
    if own_rule := FORM_RULES.get(record.form):
        own_rule(state, answers)
    return [
        FormRecorded(
            form=record.form,
            visit=record.visit,
            entry=entry if form.log else None,
            answers=answers_of(answers),
            dictionary_version=protocol.forms.version,
            supersedes=record.supersedes,
        )
    ]


def _keeping_a_log(state: FollowUpState, record: CollectedForm, subject: str) -> None:
    """A log's entries are taken from consent until the subject leaves the study (a correction too, while the
    casebook is open)."""
    if record.visit is not None:
        raise UnknownVisit(f"{record.form} is a log: its entries name no visit", field="visit")
    if state.consented_on is None:
        raise NotConsented(f"{subject} has no recorded consent")
    if state.consent_withdrawn:
        raise ConsentWasWithdrawn(f"{subject} withdrew consent")
    if state.withdrawn:
        raise SubjectIsWithdrawn(f"{subject} is withdrawn; only adverse-event information is accepted")


def _valid(dictionary: DataDictionary, record: CollectedForm) -> BaseModel:
    """The answers as their items' values; the first refusal names its item (the gateway has refused the same
    already: this is the service's own check of what reached it)."""
    try:
        parsed = answers_model(dictionary, record.form).model_validate(record.answers)
    except ValidationError as invalid:
        error = invalid.errors()[0]
        where = ".".join(str(part) for part in error["loc"])
        raise InvalidAnswer(f"{where}: {error['msg']}", field=where or None) from None
    return parsed


def entry_of(events: tuple[RecordedEvent, ...]) -> dict[str, object]:
    """The answer to a log's entry: its id, which its corrections name."""
    recorded = next(e.data for e in events if isinstance(e.data, FormRecorded))
    return {"entry": str(recorded.entry)} if recorded.entry else {}
