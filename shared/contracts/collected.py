"""Collected forms: those declared only in the data dictionary (a questionnaire, say). Their typed model is made from
the dictionary's entry, so the gateway, the deciding service and the web page validate exactly what it declares;
the command that carries one names the form and the visit, with the answers as the site posted them."""

from decimal import Decimal
from typing import Annotated, Any, Literal, Self
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, JsonValue, create_model, model_validator

from shared.contracts.dictionary import FORM_NAME, DataDictionary, Item, ItemType
from shared.contracts.forms import (
    VISIT_CODE_PATTERN,
    ClinicalDate,
    Correctable,
    Measured,
    Never,
    Text,
)


class CollectedForm(BaseModel):
    """A collected form's record, as the gateway sends it to the visits service: at one visit, or as an entry of
    a log (a new entry names none: the service gives it its id; a correction names the entry it corrects)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    form: str = Field(pattern=FORM_NAME, max_length=40)
    visit: str | None = Field(None, pattern=VISIT_CODE_PATTERN)
    entry: UUID | None = None
    answers: dict[str, JsonValue]
    supersedes: UUID | None = None
    reason: Text | None = Field(None, min_length=5, max_length=500)

    @model_validator(mode="after")
    def _a_visit_or_a_log(self) -> Self:
        if self.visit is not None and self.entry is not None:
            raise ValueError("a form is entered at a visit or as a log's entry, not both")
        return self


def model_name(form: str) -> str:
    """The name of a collected form's model in the API (`qol` → `QolForm`)."""
    return "".join(part.title() for part in form.split("-")) + "Form"


def _value_type(dictionary: DataDictionary, item: Item) -> Any:
    bounds = item.range
    match item.type:
        case ItemType.TEXT if item.refers_to is not None:
            return UUID
        case ItemType.TEXT:
            shortest, longest = item.length or (1, 500)
            return Annotated[Text, Field(min_length=shortest, max_length=longest)]
        case ItemType.INTEGER:
            low, high = (None, None) if bounds is None else (bounds.min, bounds.max)
            exclusive = bounds is not None and bounds.min_exclusive
            return Annotated[int, Field(ge=None if exclusive else low, gt=low if exclusive else None, le=high)]
        case ItemType.DECIMAL:
            if bounds is None or bounds.min is None or bounds.max is None:
                raise ValueError("a collected decimal item has a range")
            places = 9 if item.places is None else item.places
            measured = (
                Measured(gt=bounds.min, le=bounds.max, places=places)
                if bounds.min_exclusive
                else Measured(ge=bounds.min, le=bounds.max, places=places)
            )
            return Annotated[Decimal, measured]
        case ItemType.DATE:
            return ClinicalDate
        case ItemType.DATETIME:
            return AwareDatetime
        case ItemType.DATE_OR_NEVER:
            return ClinicalDate | Never
        case ItemType.BOOLEAN:
            return bool
        case ItemType.CODE:
            return Literal[tuple(c.code for c in dictionary.code_lists[item.code_list or ""])]
        case ItemType.CODES:
            return list[Literal[tuple(c.code for c in dictionary.code_lists[item.code_list or ""])]]  # type: ignore[misc]
    raise ValueError(f"a collected form has no {item.type.value} item")


class _Answers(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class _CorrectableAnswers(Correctable):
    model_config = ConfigDict(frozen=True, extra="forbid")


def answers_model(dictionary: DataDictionary, form: str) -> type[BaseModel]:
    """The collected form's model: each item typed, bounded and coded as the dictionary declares it, mandatory
    where it says so (an item collected only under a condition is optional here: its rule decides), with the
    correction's version and reason where the form is correctable. Made once per dictionary."""
    return dictionary.made(form, lambda: _made(dictionary, form))


def _made(dictionary: DataDictionary, form: str) -> type[BaseModel]:
    declared = dictionary.forms[form]
    fields: dict[str, Any] = {}
    for name, item in declared.items.items():
        kind = _value_type(dictionary, item)
        fields[name] = (kind, ...) if item.required and item.when is None else (kind | None, None)
    base = _CorrectableAnswers if declared.corrections else _Answers
    documented = {"model_config": ConfigDict(json_schema_extra={"examples": [declared.example]})}
    made: type[BaseModel] = create_model(
        model_name(form),
        __base__=type(base.__name__, (base,), documented),
        __doc__=declared.title.en,
        __module__=__name__,
        **fields,
    )
    return made


def answers_of(posted: BaseModel) -> dict[str, JsonValue]:
    """What a posted collected form answers: its items as JSON values, without the correction's own two."""
    return posted.model_dump(mode="json", exclude={"supersedes", "reason"}, exclude_none=True)
