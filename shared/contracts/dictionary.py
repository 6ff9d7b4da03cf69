"""The data dictionary: every case report form's items declared once (`protocol/<trial>-forms.yaml`, named by the
protocol definition and versioned with it), in the shape of CDISC ODM's MetaDataVersion, validated by one pydantic
model. Labels, hints, units and code lists' decodes come from here, in both languages. A form with its own typed
model is checked against it (`tests/unit/shared/test_data_dictionary.py`); a collected form (a questionnaire) has
none: its model is made from its entry (`shared.contracts.collected`)."""

import re
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from typing import Literal, Self

from pydantic import BaseModel, ConfigDict, Field, JsonValue, PrivateAttr, model_validator

from shared.contracts.access import Right

# A collected form's fact: one event type for every form declared only here.
FORM_RECORDED = "FormRecorded"
FORM_NAME = r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$"
ITEM_NAME = r"^[a-z][a-z0-9_]*$"
# A log entry's id, as it appears in its casebook name: a UUID.
ENTRY = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


class ItemType(StrEnum):
    TEXT = "text"
    INTEGER = "integer"
    DECIMAL = "decimal"
    FRACTION = "fraction"
    DATE = "date"
    DATETIME = "datetime"
    DATE_OR_NEVER = "date_or_never"
    BOOLEAN = "boolean"
    CODE = "code"  # one of a code list
    CODES = "codes"  # any of a code list
    GROUP = "group"  # items of its own


class Translated(BaseModel):
    """ODM's TranslatedText: the same words in each language staff read."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    en: str = Field(min_length=1)
    zh: str = Field(min_length=1)

    def in_(self, language: str) -> str:
        return self.zh if language == "zh" else self.en


class CodeListItem(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    code: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    en: str
    zh: str
    submission: str | None = Field(None, description="CDISC CT's submission value, where the export uses one")

    @property
    def decode(self) -> Translated:
        return Translated(en=self.en, zh=self.zh)


class Range(BaseModel):
    """ODM's RangeCheck, hard: a value outside is refused."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min: int | None = None
    max: int | None = None
    min_exclusive: bool = False


class Item(BaseModel):
    """ODM's ItemDef (with its ItemRef's Mandatory and CollectionExceptionCondition)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: ItemType
    label: Translated
    hint: Translated | None = None
    required: bool = False
    unit: str | None = None
    range: Range | None = None
    places: int | None = Field(None, ge=0, le=9, description="digits after the point, for a decimal")
    length: tuple[int, int] | None = Field(None, description="shortest and longest text")
    code_list: str | None = None
    when: str | None = Field(None, description="the condition under which the item is collected at all")
    answered_by: Right | None = Field(None, description="the right needed to answer it (the investigator's items)")
    sdtm: str | None = Field(None, pattern=r"^[A-Z]{2,8}\.[A-Z0-9]{1,8}$", description="DOMAIN.VARIABLE")
    refers_to: Literal["adverse-event"] | None = Field(
        None, description="a text item whose value is the id of one of the subject's records of that form"
    )
    items: dict[str, "Item"] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _shape_follows_the_type(self) -> Self:
        coded = self.type in (ItemType.CODE, ItemType.CODES)
        if coded != (self.code_list is not None):
            raise ValueError("a code or codes item names its code_list, and only those")
        if (self.type is ItemType.GROUP) != bool(self.items):
            raise ValueError("a group has items, and only a group")
        if self.places is not None and self.type is not ItemType.DECIMAL:
            raise ValueError("places are for decimals")
        if self.refers_to is not None and self.type is not ItemType.TEXT:
            raise ValueError("a reference to a record is a text item (the record's id)")
        return self


class Posting(BaseModel):
    """Where a site posts a form with a typed model, and the command it becomes (`trial.cmd.<service>.<action>`).
    A collected form's is made from its name and visits."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str = Field(pattern=r"^(/[a-z]+(-[a-z]+)*)+$", description="below /v1/sites/{site}/subjects/{subject}")
    operation: str = Field(pattern=r"^[a-z]+(_[a-z]+)*$", description="the OpenAPI operation id")
    command: str = Field(pattern=r"^[a-z]+\.[a-z]+(_[a-z]+)*$", description="<service>.<action>")
    summary: str = Field(min_length=1, description="the API documentation's summary")

    @property
    def service(self) -> str:
        return self.command.split(".")[0]

    @property
    def action(self) -> str:
        return self.command.split(".")[1]


class Form(BaseModel):
    """ODM's FormDef with its one ItemGroupDef. A form with a `model` has its own command, rule and fact; one
    without is a collected form: entered at each of its `visits`, or a log (ODM's repeating form: concomitant
    medications, medical history) whose entries are entered at any time from consent, each its own record;
    recorded as a `FormRecorded`, its items validated as declared here, and exported in its `sdtm_domain`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str | None = Field(None, description="the typed form in shared/contracts/forms.py checked against this")
    posted: Posting | None = Field(None, description="a typed form's route, unless its path names the visit")
    records: str = Field(FORM_RECORDED, description="the event type that records it (its data holds the items)")
    title: Translated
    corrections: bool = Field(False, description="a correctable form: it carries the correction items too")
    visits: tuple[str, ...] = Field((), description="a collected form: the follow-up visits it is entered at")
    log: bool = Field(False, description="a collected form whose entries are entered at any time from consent")
    sdtm_domain: str | None = Field(None, pattern=r"^[A-Z]{2}$", description="a collected form's SDTM domain")
    coded_by: Literal["adverse-events", "drugs"] | None = Field(
        None, description="the sponsor's dictionary that codes a log's entries, by its first item (the verbatim term)"
    )
    example: dict[str, JsonValue] | None = Field(
        None, description="a collected form's answers as the API documentation shows them (its model accepts them)"
    )
    items: dict[str, Item]

    @model_validator(mode="after")
    def _collected_or_typed(self) -> Self:
        if self.collected != (bool(self.visits) or self.log) or self.collected != (self.records == FORM_RECORDED):
            raise ValueError(
                f"a form without a model is collected: it names its visits or is a log, and is a {FORM_RECORDED}"
            )
        if self.log and self.visits:
            raise ValueError("a log is entered at any time: it names no visits")
        if self.coded_by is not None and not (self.log and next(iter(self.items.values())).type is ItemType.TEXT):
            raise ValueError("a coded form is a log whose first item is the verbatim term it codes")
        if self.collected and self.posted is not None:
            raise ValueError("a collected form is posted at its visits: it declares no route")
        if self.collected and self.example is None:
            raise ValueError("a collected form gives an example of its answers, for the API documentation")
        if self.collected and self.sdtm_domain is None:
            raise ValueError("a collected form names its sdtm_domain (QS for a questionnaire)")
        unsupported = {ItemType.FRACTION, ItemType.GROUP}
        if self.collected and any(i.type in unsupported or i.answered_by for _, i in walk(self.items)):
            raise ValueError("a collected form's items are single values any site staff may answer")
        return self

    @property
    def collected(self) -> bool:
        return self.model is None


class DataDictionary(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str
    languages: list[Literal["en", "zh"]]
    code_lists: dict[str, list[CodeListItem]]
    conditions: dict[str, Translated]
    correction_items: dict[str, Item]
    forms: dict[str, Form]
    # Each collected form's model, made once (`shared.contracts.collected`).
    _models: dict[str, type[BaseModel]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="after")
    def _references_resolve(self) -> Self:
        for name, form in self.forms.items():
            if not re.fullmatch(FORM_NAME, name):
                raise ValueError(f"{name!r}: a form's name is lowercase words joined by '-'")
            for path, item in walk(form.items):
                if not re.fullmatch(ITEM_NAME, path.rpartition(".")[2]):
                    raise ValueError(f"{name}.{path}: an item's name is lowercase letters, digits and '_'")
                if item.code_list is not None and item.code_list not in self.code_lists:
                    raise ValueError(f"{name}.{path}: no code list {item.code_list!r}")
                if item.when is not None and item.when not in self.conditions:
                    raise ValueError(f"{name}.{path}: no condition {item.when!r}")
        return self

    @classmethod
    def across(cls, versions: Sequence["DataDictionary"]) -> "DataDictionary":
        """Every form, item, code and condition any of these versions (the first first) declares, each in the words
        of the latest that declares it: what an export holds, whatever version a record was entered under."""
        if len(versions) == 1:
            return versions[0]
        merged = versions[0].model_dump(mode="json")
        for later in versions[1:]:
            document = later.model_dump(mode="json")
            for name, codes in document["code_lists"].items():
                kept = {c["code"]: c for c in merged["code_lists"].get(name, [])}
                merged["code_lists"][name] = list((kept | {c["code"]: c for c in codes}).values())
            merged["conditions"] |= document["conditions"]
            merged["correction_items"] |= document["correction_items"]
            for name, form in document["forms"].items():
                earlier = merged["forms"].get(name, {}).get("items", {})
                merged["forms"][name] = form | {"items": earlier | form["items"]}
            merged["version"] = document["version"]
        return cls.model_validate(merged)

    def typed_shapes(self) -> dict[str, object]:
        """What sites enter on the forms with a model of their own (not collected), without its words, by form:
        each item's type, whether it is required, its unit, bounds, codes, condition and who answers it. Two
        versions with the same shapes take the same entries on those forms."""

        def shape(item: Item) -> object:
            kept = item.model_dump(mode="json", exclude={"label", "hint", "sdtm", "items", "code_list"})
            codes = [c.code for c in self.code_lists[item.code_list]] if item.code_list else None
            return kept | {"codes": codes, "items": {name: shape(i) for name, i in item.items.items()}}

        return {
            name: {
                "form": form.model_dump(mode="json", include={"model", "posted", "corrections", "visits", "log"}),
                "items": {path: shape(item) for path, item in self.items_of(name).items()},
            }
            for name, form in self.forms.items()
            if not form.collected
        }

    def items_of(self, form: str) -> dict[str, Item]:
        """The form's items, the correction items first where it is correctable."""
        declared = self.forms[form]
        return ({**self.correction_items} if declared.corrections else {}) | declared.items

    def item(self, path: str) -> Item:
        """An item by its form and dotted path: `screening.sex`, `procedure.fat_graft.ecm_svf_gel_ml`."""
        form, _, rest = path.partition(".")
        return dict(walk(self.items_of(form)))[rest]

    @property
    def collected(self) -> dict[str, Form]:
        """The forms declared only here, by name."""
        return {name: form for name, form in self.forms.items() if form.collected}

    def casebook_form(self, name: str) -> str | None:
        """The form a casebook form (`screening`, `visit-M1`, `ae-<id>`, a collected form's `qol-M6`) is an
        instance of: `visit-M1` is a `visit`, `ae-<id>` an `adverse-event`; None for a name no form has."""
        if name in self.forms:
            return name
        collected, _, visit = name.rpartition("-")
        if collected in self.collected and visit in self.forms[collected].visits:
            return collected
        if (log := self.log_of(name)) is not None:
            return log
        kind, _, rest = name.partition("-")
        declared = {"visit": "visit", "ae": "adverse-event"}.get(kind) if rest else None
        return declared if declared in self.forms else None

    @property
    def logs(self) -> dict[str, Form]:
        """The collected forms whose entries are entered at any time, by name."""
        return {name: form for name, form in self.forms.items() if form.log}

    def log_of(self, name: str) -> str | None:
        """The log a casebook form is an entry of (`concomitant-medication-<entry>`), or None."""
        for log in self.logs:
            entry = name.removeprefix(f"{log}-")
            if entry != name and re.fullmatch(ENTRY, entry):
                return log
        return None

    def form_recorded_by(self, event_type: str, data: Mapping[str, object] | None = None) -> str | None:
        """The form a fact records: by its type, and for a `FormRecorded` by the form it names."""
        if event_type == FORM_RECORDED:
            named = (data or {}).get("form")
            return named if isinstance(named, str) and named in self.collected else None
        return next((name for name, form in self.forms.items() if form.records == event_type), None)

    def label_of(self, event_type: str, field: str, data: Mapping[str, object] | None = None) -> Translated | None:
        """The question of a recorded item (`weight_kg`, or `form.weight_kg` where the fact wraps the form, or
        `answers.score` in a collected form's fact), by the fact that records it; None for what no form asks."""
        form = self.form_recorded_by(event_type, data)
        if form is None:
            return None
        items = dict(walk(self.items_of(form)))
        found = items.get(field) or items.get(field.removeprefix("form.")) or items.get(field.removeprefix("answers."))
        return found.label if found else None

    def made(self, form: str, make: Callable[[], type[BaseModel]]) -> type[BaseModel]:
        if form not in self._models:
            self._models[form] = make()
        return self._models[form]

    def decode(self, code_list: str, code: str) -> Translated | None:
        return next((c.decode for c in self.code_lists[code_list] if c.code == code), None)


def walk(items: dict[str, Item], prefix: str = "") -> list[tuple[str, Item]]:
    """Every item with its dotted path (`serology.hiv`), groups before their items."""
    found: list[tuple[str, Item]] = []
    for name, item in items.items():
        found.append((f"{prefix}{name}", item))
        found.extend(walk(item.items, f"{prefix}{name}."))
    return found
