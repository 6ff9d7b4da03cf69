"""Pure rules of the collected forms (declared only in the data dictionary): entered at one of the form's visits,
after the surgery, by a participating subject, once per visit unless corrected; each answer as the dictionary
declares it, an item under a condition only where the condition holds; and the form's own rule, if it has one.

A form's own rule is one function in `FORM_RULES`, named by the form; a condition the dictionary names is one
function in `CONDITIONS`, and the service does not start while a collected form's condition has none."""

from collections.abc import Callable
from datetime import date

from pydantic import BaseModel, ValidationError

from services.visits.domain import (
    FollowUpState,
    SubjectHasCompleted,
    UnknownVisit,
    VisitBeforeSurgery,
    participating,
)
from shared.contracts.casebook import corrects
from shared.contracts.collected import CollectedForm, answers_model, answers_of
from shared.contracts.dictionary import DataDictionary, ItemType
from shared.contracts.events import DomainEvent, FormRecorded
from shared.contracts.protocol import ProtocolDefinition
from shared.contracts.rules import DateInFuture, Refusal, RuleViolation, check_site


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


# When an item is collected at all, by the condition's name in the dictionary.
Condition = Callable[[FollowUpState, ProtocolDefinition], bool]
CONDITIONS: dict[str, Condition] = {
    "female": lambda state, _: state.female is True,
    "fat_graft_arm": lambda state, protocol: (
        state.randomized is not None and protocol.receives_fat_graft(state.randomized.arm)
    ),
}

# A collected form's own rule, by the form's name: it raises the rule's error, or returns.
FormRule = Callable[[FollowUpState, BaseModel], None]
FORM_RULES: dict[str, FormRule] = {}


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
) -> list[DomainEvent]:
    check_site(protocol, site, subject, enrolling=False)
    participating(state, subject)
    form = protocol.forms.collected.get(record.form)
    if form is None:
        raise UnknownForm(f"no collected form {record.form!r} in the data dictionary", field="form")
    if record.visit not in form.visits:
        raise UnknownVisit(f"{record.form} is entered at {', '.join(form.visits)}, not {record.visit}", field="visit")
    if state.procedure is None:
        raise VisitBeforeSurgery(f"{record.form} at {record.visit} comes after a recorded surgery")
    answers = _valid(protocol.forms, record)
    for name, item in form.items.items():
        given = record.answers.get(name) is not None
        if item.when is not None and not CONDITIONS[item.when](state, protocol):
            if given:
                raise NotCollected(f"{name} is not collected for {subject} ({item.when})", field=name)
        elif item.required and not given:
            raise AnswerRequired(f"{name} is required", field=name)
        value = getattr(answers, name)
        if given and item.type is ItemType.DATE and value > today:
            raise DateInFuture(f"{name} {value} is after today", field=name)
    current = state.forms.get(record.casebook_name)
    if current is not None and record.supersedes is None:
        raise FormAlreadyRecorded(
            f"{record.form} at {record.visit} is recorded; send a correction with supersedes and reason"
        )
    correcting = corrects(current, record.supersedes, record.reason, record.casebook_name)
    if state.completed and not correcting:
        raise SubjectHasCompleted(f"{subject} has completed the study")
    if own_rule := FORM_RULES.get(record.form):
        own_rule(state, answers)
    return [
        FormRecorded(
            form=record.form,
            visit=record.visit,
            answers=answers_of(answers),
            dictionary_version=protocol.forms.version,
            supersedes=record.supersedes,
        )
    ]


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
