"""HTML forms from the gateway's request schemas, and the posted fields back into the JSON the gateway takes.

A field is shown by what its schema says: yes / no / not known for a boolean, a choice for an enumeration, a date
picker for a date, boxes for a list of choices, a group for a nested object; what is left empty is left out."""

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, tzinfo
from typing import Any

from starlette.datastructures import FormData

from services.web.problems import RULES

UNKNOWN = ""
# "Never" as a date-or-never item takes it, in each language the pages speak.
NEVER = frozenset({"never", "从未"})


@dataclass(frozen=True)
class Field:
    name: str  # dotted path: serology.hiv
    label: str
    kind: str  # boolean | choice | choices | date | datetime | date_or_never | number | text | group
    required: bool = False
    options: tuple[str, ...] = ()
    hint: str = ""
    children: tuple["Field", ...] = ()
    value: Any = None
    error: str = ""
    # From the data dictionary (the schema's `x-` words): the question, help and decodes in each language, the unit.
    labels: dict[str, str] = field(default_factory=dict)
    hints: dict[str, str] = field(default_factory=dict)
    unit: str = ""
    decodes: dict[str, dict[str, str]] = field(default_factory=dict)
    answered_by: str | None = None  # the right an item needs (the investigator's judgements)
    refers_to: str | None = None  # one of the subject's records of this form, picked from them (`referring`)
    # A number's range, from the schema: what a refusal of it says in the page's language.
    low: float | None = None
    high: float | None = None
    low_exclusive: bool = False
    # A text's length, from the schema.
    shortest: int | None = None
    longest: int | None = None

    def label_in(self, lang: str) -> str:
        return self.labels.get(lang) or self.label

    def hint_in(self, lang: str) -> str:
        # An item the dictionary declares has its help there, in each language, or none.
        return self.hints.get(lang, "") if self.labels else self.hint

    def option_in(self, option: str, lang: str) -> str:
        return self.decodes.get(option, {}).get(lang) or option.replace("_", " ")


def _simple(schema: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The schema without its null alternative, and whether null was allowed."""
    options = schema.get("anyOf")
    if not options:
        return schema, False
    kept = [o for o in options if o.get("type") != "null"]
    if len(kept) == 1:
        return {**kept[0], **{k: v for k, v in schema.items() if k != "anyOf"}}, len(kept) < len(options)
    return schema, len(kept) < len(options)


def fields(schema: dict[str, Any], *, skip: frozenset[str] = frozenset(), prefix: str = "") -> tuple[Field, ...]:
    required = set(schema.get("required", ()))
    found: list[Field] = []
    for name, raw in schema.get("properties", {}).items():
        if name in skip:
            continue
        path = f"{prefix}{name}"
        simple, _ = _simple(raw)
        label = str(raw.get("title") or name.replace("_", " ").capitalize())
        hint = str(raw.get("description") or simple.get("description") or "")
        kind = "text"
        options: tuple[str, ...] = ()
        children: tuple[Field, ...] = ()
        # A number, or a measurement written as a number or its exact text: its range is on the number.
        number = next((b for b in simple.get("anyOf", [simple]) if b.get("type") in ("integer", "number")), None)
        if simple.get("type") == "object" and "properties" in simple:
            kind, children = "group", fields(simple, prefix=f"{path}.")
        elif simple.get("type") == "boolean":
            kind = "boolean"
        elif "enum" in simple:
            kind, options = "choice", tuple(str(o) for o in simple["enum"])
        elif simple.get("type") == "array" and "enum" in simple.get("items", {}):
            kind, options = "choices", tuple(str(o) for o in simple["items"]["enum"])
        elif simple.get("format") == "date":
            kind = "date"
        elif simple.get("format") == "date-time":
            kind = "datetime"
        elif number is not None:
            kind = "number"
        elif any(b.get("const") == "never" or b.get("enum") == ["never"] for b in simple.get("anyOf", [])):
            kind = "date_or_never"
        found.append(
            Field(
                path,
                label,
                kind,
                name in required,
                options,
                hint,
                children,
                labels=dict(raw.get("x-label") or {}),
                hints=dict(raw.get("x-hint") or {}),
                unit=str(raw.get("x-unit") or ""),
                decodes=dict(raw.get("x-codes") or simple.get("x-codes") or {}),
                answered_by=raw.get("x-answered-by"),
                refers_to=raw.get("x-refers-to"),
                low=(number or {}).get("minimum", (number or {}).get("exclusiveMinimum")),
                high=(number or {}).get("maximum"),
                low_exclusive="exclusiveMinimum" in (number or {}),
                shortest=simple.get("minLength"),
                longest=simple.get("maxLength"),
            )
        )
    return tuple(found)


def parsed(form: FormData, specs: tuple[Field, ...], zone: tzinfo | None = None) -> dict[str, Any]:
    """The posted fields as the gateway's JSON: empty ones left out, yes/no as booleans, groups nested, a date and
    time as typed (the browser's date-and-time box) taken in the site's time zone, `zone`."""
    body: dict[str, Any] = {}
    for spec in specs:
        key = spec.name.rsplit(".", 1)[-1]
        if spec.kind == "group":
            nested = parsed(form, spec.children, zone)
            if nested:
                body[key] = nested
        elif spec.kind == "choices":
            body[key] = [str(v) for v in form.getlist(spec.name)]
        else:
            raw = str(form.get(spec.name, "")).strip()
            if raw == UNKNOWN:
                continue
            if spec.kind == "date_or_never" and raw.lower() in NEVER:
                raw = "never"  # as the person wrote it, in either language
            if spec.kind == "datetime" and zone is not None:
                raw = in_zone(raw, zone)
            body[key] = {"true": True, "false": False}.get(raw, raw) if spec.kind == "boolean" else raw
    return body


def typed_day(value: object) -> date | None:
    """A day as typed or recorded (year-month-day); anything else, empty among it, is no day."""
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return None


def in_zone(raw: str, zone: tzinfo) -> str:
    """A date and time without an offset as the site's local time (with its offset); anything else as written,
    for the gateway to accept or refuse."""
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return raw
    return moment.replace(tzinfo=zone).isoformat() if moment.tzinfo is None else raw


# The gateway's rule codes (problem+json `errors[].rule`) a page says in its own words, from the item's range.
NUMBER_RULES = frozenset(
    {
        "greater_than_equal",
        "greater_than",
        "less_than_equal",
        "less_than",
        "int_parsing",
        "int_from_float",
        "float_parsing",
        "decimal_parsing",
        "decimal_type",
        "value_error",
    }
)
# A choice the list does not have; a record of the subject's picked by its id, not one of them.
CHOICE_RULES = frozenset({"enum", "literal_error", "bool_parsing", "bool_type", "list_type", "uuid_parsing"})
DATE_RULES = frozenset(
    {"date_parsing", "date_from_datetime_parsing", "date_type", "greater_than_equal", "less_than_equal"}
)


def explained(spec: Field, rule: str, message: str, t: Callable[[str], str]) -> str:
    """What a refusal of this item says in the page's language (`t`): by the rule's code and the item's range; the
    gateway's own words where no better ones are known. A trial rule's refusal naming this item is said already, in
    the page's language, by that rule's words (`GatewayProblem.messages`)."""
    if rule in RULES:
        return message
    if rule == "missing":
        return t("rule_missing")
    if spec.kind == "number" and rule in NUMBER_RULES:
        if spec.high is None or spec.low is None:
            return t("rule_number")
        words = t("rule_above" if spec.low_exclusive else "rule_between")
        return words.format(low=_plain(spec.low), high=_plain(spec.high), unit=spec.unit).replace("  ", " ")
    if spec.kind == "date" and rule in DATE_RULES:
        return t("rule_date")
    if spec.kind == "date_or_never":
        return t("rule_date_or_never")
    if spec.kind in ("choice", "choices", "boolean") and rule in CHOICE_RULES:
        return t("rule_choice")
    if spec.kind == "datetime" and rule.startswith(("datetime", "timezone")):
        return t("rule_datetime")
    if rule in ("string_too_short", "string_too_long") and spec.longest is not None:
        return t("rule_length").format(low=spec.shortest or 1, high=spec.longest)
    if rule == "string_pattern_mismatch":
        return t("rule_pattern")
    return t("rule_other").format(message=message)


def about(said: dict[str, str], name: str) -> str:
    """What is said about an item: under its path, or under a path below it (a list's entry `contraindications.2`,
    a choice between a date and "never" `started.date`): an item with no items of its own is what it is about."""
    if name in said:
        return said[name]
    return next((text for path, text in said.items() if path.startswith(f"{name}.")), "")


def _plain(number: float) -> str:
    return str(int(number)) if float(number).is_integer() else str(number)


def filled(
    specs: tuple[Field, ...],
    values: dict[str, Any],
    errors: dict[str, str],
    explain: Callable[[Field, str], str] | None = None,
) -> tuple[Field, ...]:
    """The fields with the values posted (or current) and the gateway's messages next to each (`explain`: in the
    page's words)."""
    shown = []
    for spec in specs:
        key = spec.name.rsplit(".", 1)[-1]
        value = values.get(key)
        children = filled(spec.children, value if isinstance(value, dict) else {}, errors, explain)
        error = "" if spec.kind == "group" else about(errors, spec.name)
        if error and explain is not None:
            error = explain(spec, error)
        shown.append(Field(**{**spec.__dict__, "children": children, "value": value, "error": error}))
    return tuple(shown)


def referring(specs: tuple[Field, ...], records: dict[str, dict[str, dict[str, str]]]) -> tuple[Field, ...]:
    """The fields with an item that names one of the subject's records made a choice of them, each worded in both
    languages (`records`: by the form an item refers to, each record's id and words)."""
    found = []
    for spec in specs:
        named = records.get(spec.refers_to or "")
        found.append(spec if named is None else replace(spec, kind="choice", options=tuple(named), decodes=named))
    return tuple(found)


@dataclass
class FormPage:
    """One form on a page: where it posts, its fields, and what the gateway said about the last try."""

    title: str
    action: str
    fields: tuple[Field, ...]
    key: str
    message: str = ""
    extra: dict[str, str] = field(default_factory=dict)
    # What the protocol's checks question before it is saved (`services.web.guidance`): heeded, or confirmed.
    advice: list[Any] = field(default_factory=list)

    @property
    def values(self) -> dict[str, Any]:
        """Each item's value as the form holds it (what names a log's entry: its first)."""
        return {f.name: f.value for f in self.fields}

    @property
    def refused(self) -> list[Field]:
        """Every refused field, a group's among them, in the form's order."""

        def walked(fields: tuple[Field, ...]) -> list[Field]:
            return [f for spec in fields for f in ([spec] if spec.error else []) + walked(spec.children)]

        return walked(self.fields)
