"""HTML forms from the gateway's request schemas, and the posted fields back into the JSON the gateway takes.

A field is shown by what its schema says: yes / no / not known for a boolean, a choice for an enumeration, a date
picker for a date, boxes for a list of choices, a group for a nested object; what is left empty is left out."""

from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

UNKNOWN = ""


@dataclass(frozen=True)
class Field:
    name: str  # dotted path: serology.hiv
    label: str
    kind: str  # boolean | choice | choices | date | datetime | number | text | group
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
        elif simple.get("type") in ("integer", "number"):
            kind = "number"
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
            )
        )
    return tuple(found)


def parsed(form: FormData, specs: tuple[Field, ...]) -> dict[str, Any]:
    """The posted fields as the gateway's JSON: empty ones left out, yes/no as booleans, groups nested."""
    body: dict[str, Any] = {}
    for spec in specs:
        key = spec.name.rsplit(".", 1)[-1]
        if spec.kind == "group":
            nested = parsed(form, spec.children)
            if nested:
                body[key] = nested
        elif spec.kind == "choices":
            body[key] = [str(v) for v in form.getlist(spec.name)]
        else:
            raw = str(form.get(spec.name, "")).strip()
            if raw == UNKNOWN:
                continue
            body[key] = {"true": True, "false": False}.get(raw, raw) if spec.kind == "boolean" else raw
    return body


def filled(specs: tuple[Field, ...], values: dict[str, Any], errors: dict[str, str]) -> tuple[Field, ...]:
    """The fields with the values posted (or current) and the gateway's messages next to each."""
    shown = []
    for spec in specs:
        key = spec.name.rsplit(".", 1)[-1]
        value = values.get(key)
        children = filled(spec.children, value if isinstance(value, dict) else {}, errors)
        shown.append(
            Field(**{**spec.__dict__, "children": children, "value": value, "error": errors.get(spec.name, "")})
        )
    return tuple(shown)


@dataclass
class FormPage:
    """One form on a page: where it posts, its fields, and what the gateway said about the last try."""

    title: str
    action: str
    fields: tuple[Field, ...]
    key: str
    message: str = ""
    extra: dict[str, str] = field(default_factory=dict)
