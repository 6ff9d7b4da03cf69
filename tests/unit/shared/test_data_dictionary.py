"""The data dictionary and the typed forms say the same: every item of every form, its type, whether it is
mandatory, its range and its code list, in both directions. A field added to a form and not to the dictionary
(or the other way round) fails here."""

from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from shared.contracts import forms
from shared.contracts.collected import answers_model
from shared.contracts.commands import command_subject, right_of
from shared.contracts.dictionary import DataDictionary, Item, ItemType, walk
from shared.contracts.protocol import cached_protocol
from shared.runtime.settings import DEFAULT_PROTOCOL_FILE
from tests.questionnaire import NAME, questionnaire_protocol

DICTIONARY = cached_protocol(DEFAULT_PROTOCOL_FILE).forms


def resolved(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """The property's schema without `$ref`s or a `null` alternative."""
    if "$ref" in schema:
        return resolved(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    branches = [b for b in schema.get("anyOf", []) if b.get("type") != "null"]
    if len(branches) == 1:
        return resolved({**{k: v for k, v in schema.items() if k != "anyOf"}, **branches[0]}, defs)
    return schema


def kind_of(schema: dict[str, Any], defs: dict[str, Any]) -> ItemType:
    branches = schema.get("anyOf", [])
    types = {b.get("type") for b in branches} - {"null"}
    if any("/" in b.get("pattern", "") for b in branches):
        return ItemType.FRACTION
    if types == {"number", "string"}:
        return ItemType.DECIMAL
    if any(b.get("const") == "never" or b.get("enum") == ["never"] for b in branches):
        return ItemType.DATE_OR_NEVER
    if schema.get("type") == "object":
        return ItemType.GROUP
    if "enum" in schema:
        return ItemType.CODE
    if schema.get("type") == "array":
        return ItemType.CODES
    if schema.get("type") in ("boolean", "integer"):
        return ItemType(schema["type"])
    if schema.get("format") in ("date", "date-time"):
        return ItemType.DATE if schema["format"] == "date" else ItemType.DATETIME
    return ItemType.TEXT


def bounds(schema: dict[str, Any]) -> tuple[Any, Any, bool]:
    number = next((b for b in schema.get("anyOf", []) if b.get("type") == "number"), schema)
    low = number.get("minimum", number.get("exclusiveMinimum"))
    return low, number.get("maximum"), "exclusiveMinimum" in number


def check(
    items: dict[str, Item],
    schema: dict[str, Any],
    defs: dict[str, Any],
    where: str,
    dictionary: DataDictionary = DICTIONARY,
) -> None:
    properties = schema["properties"]
    assert set(items) == set(properties), f"{where}: dictionary {sorted(items)} vs form {sorted(properties)}"
    required = set(schema.get("required", ()))
    for name, item in items.items():
        at = f"{where}.{name}"
        prop = resolved(properties[name], defs)
        assert (name in required) == item.required, f"{at}: mandatory in one and not the other"
        assert kind_of(prop, defs) == item.type, f"{at}: {kind_of(prop, defs)} in the form, {item.type} here"
        if item.code_list is not None:
            values = prop["enum"] if item.type is ItemType.CODE else resolved(prop["items"], defs)["enum"]
            assert values == [c.code for c in dictionary.code_lists[item.code_list]], f"{at}: code list"
        if item.range is not None and item.type in (ItemType.INTEGER, ItemType.DECIMAL):
            expected = (item.range.min, item.range.max, item.range.min_exclusive)
            assert bounds(prop) == expected, f"{at}: range {bounds(prop)} in the form, {expected} here"
        if item.type is ItemType.GROUP:
            check(item.items, prop, defs, at, dictionary)


@pytest.mark.parametrize("form", sorted(set(DICTIONARY.forms) - set(DICTIONARY.collected)))
def test_each_typed_form_holds_exactly_the_dictionarys_items(form: str) -> None:
    model: type[BaseModel] = getattr(forms, DICTIONARY.forms[form].model or "")
    schema = model.model_json_schema()
    check(DICTIONARY.items_of(form), schema, schema.get("$defs", {}), form)


def test_a_collected_forms_model_is_made_to_hold_exactly_its_items(tmp_path: Path) -> None:
    dictionary = questionnaire_protocol(tmp_path).forms
    schema = answers_model(dictionary, NAME).model_json_schema()
    declared = dictionary.items_of(NAME)
    # An item collected under a condition is optional in the model: the form's rule asks for it where it holds.
    optional = {
        name: item.model_copy(update={"required": item.required and not item.when}) for name, item in declared.items()
    }
    check(optional, schema, schema.get("$defs", {}), NAME, dictionary)


def test_a_collected_form_names_its_visits_and_findings_domain_and_a_typed_one_neither(tmp_path: Path) -> None:
    raw = questionnaire_protocol(tmp_path).forms.model_dump()
    raw["forms"][NAME]["visits"] = ()
    with pytest.raises(ValueError, match="a form without a model is collected"):
        DataDictionary.model_validate(raw)
    raw = DICTIONARY.model_dump()
    raw["forms"]["consent"]["visits"] = ("M1",)
    with pytest.raises(ValueError, match="a form without a model is collected"):
        DataDictionary.model_validate(raw)


def test_a_posted_form_becomes_a_declared_command_and_only_a_typed_form_is_posted_by_its_own_route(
    tmp_path: Path,
) -> None:
    posted = {name: form.posted for name, form in DICTIONARY.forms.items() if form.posted}
    typed = set(DICTIONARY.forms) - set(DICTIONARY.collected)
    at_a_visit = {"visit", "endpoint-assessment"}
    assert set(posted) == typed - at_a_visit, "a visit's forms' routes name the visit in their path"
    for name, posting in posted.items():
        assert right_of(command_subject(posting.service, posting.action)), name
    raw = questionnaire_protocol(tmp_path).forms.model_dump()
    raw["forms"][NAME]["posted"] = DICTIONARY.forms["consent"].model_dump()["posted"]
    with pytest.raises(ValueError, match="a collected form is posted at its visits"):
        DataDictionary.model_validate(raw)


def test_every_label_hint_and_decode_is_in_both_languages_and_every_reference_resolves() -> None:
    for form in DICTIONARY.forms.values():
        for path, item in walk(form.items):
            assert item.label.en and item.label.zh, path
            assert item.label.zh != item.label.en or item.label.en.isupper(), f"{path}: not translated"
    for codes in DICTIONARY.code_lists.values():
        assert len({c.code for c in codes}) == len(codes)
        assert all(c.zh and c.en for c in codes)


def test_a_code_list_or_condition_the_dictionary_does_not_declare_is_refused() -> None:
    raw = DICTIONARY.model_dump()
    raw["forms"]["consent"]["items"]["signed_by_subject"] |= {"type": "code", "code_list": "nowhere"}
    with pytest.raises(ValueError, match="no code list 'nowhere'"):
        DataDictionary.model_validate(raw)
    raw = DICTIONARY.model_dump()
    raw["forms"]["consent"]["items"]["signed_by_subject"]["when"] = "on_tuesdays"
    with pytest.raises(ValueError, match="no condition 'on_tuesdays'"):
        DataDictionary.model_validate(raw)


def test_every_item_the_odm_export_takes_from_a_form_is_a_dictionary_item_with_its_code_list() -> None:
    from services.reporting.reports.odm import CODELISTS, GROUPS

    for group in GROUPS:
        for item in group.items:
            if item.entered is None:
                assert item.label, f"{group.oid}.{item.column}: a derived item has a label of its own"
                continue
            declared = DICTIONARY.item(item.entered)
            if item.codelist in CODELISTS:
                assert declared.code_list == CODELISTS[item.codelist], f"{group.oid}.{item.column}"
