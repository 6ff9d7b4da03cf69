"""The OpenAPI document says what the gateway does: problems as problem+json, exact numbers with JSON
Schema's bounds and a pattern, an example on every form that the form itself accepts."""

import re
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from shared.contracts import forms
from shared.readmodels import datasets
from tests.conftest import COMMAND_SIGNING_KEY
from tests.e2e.api import KEYS

DOCUMENT = create_app(GatewaySettings(token_signing_keys=KEYS, command_signing_key=COMMAND_SIGNING_KEY)).openapi()
FORMS = {
    name: model
    for name, model in vars(forms).items()
    if isinstance(model, type) and issubclass(model, BaseModel) and model.__module__ == forms.__name__
}


def operations() -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in DOCUMENT["paths"].items():
        for method, operation in item.items():
            yield path, method, operation


def nodes(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from nodes(value)
    elif isinstance(node, list):
        for value in node:
            yield from nodes(value)


def test_every_refusal_is_documented_as_the_problem_it_is_served_as() -> None:
    refusals = [
        (path, method, status, response)
        for path, method, operation in operations()
        for status, response in operation["responses"].items()
        if int(status) >= 400
    ]
    assert len(refusals) > 50
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path, method, status, response in refusals:
        assert response["content"] == problem, (path, method, status)
    assert "HTTPValidationError" not in DOCUMENT["components"]["schemas"]


def test_every_success_names_its_media_type_with_a_schema() -> None:
    media = {}
    for path, method, operation in operations():
        for status, response in operation["responses"].items():
            if int(status) < 400:
                assert len(response["content"]) == 1, (path, method, response["content"])
                [(media_type, content)] = response["content"].items()
                assert content["schema"], (path, method)
                media[path] = media_type
    assert media["/v1/reports/consort.svg"] == "image/svg+xml"
    assert media["/v1/reports/exports/{domain}.csv"] == "text/csv"
    assert media["/v1/randomization/allocation-list.csv"] == "text/csv"
    assert media["/v1/reports"] == "text/html"


def test_bounds_are_json_schema_keywords_and_decimal_text_has_a_pattern() -> None:
    pydantic_only = [n for n in nodes(DOCUMENT) if {"ge", "le", "gt", "lt"} & n.keys()]
    assert not pydantic_only
    screening = DOCUMENT["components"]["schemas"]["ScreeningForm"]["properties"]
    [measure, _null] = screening["prednisolone_mg_per_day"]["anyOf"]
    number, text = measure["anyOf"]
    assert (number["minimum"], number["maximum"]) == (0, 1000)
    assert text["pattern"] == f"^{forms.DECIMAL_TEXT.pattern}$"
    # JSON Schema's `pattern` matches anywhere in the text: the anchors make it the whole text.
    assert re.search(text["pattern"], "12.5") and not re.search(text["pattern"], "")
    assert not re.search(text["pattern"], "1e3") and not re.search(text["pattern"], " 12.5")


def test_the_export_domain_is_an_enum_of_the_datasets() -> None:
    [domain] = [p for p in DOCUMENT["paths"]["/v1/reports/exports/{domain}.csv"]["get"]["parameters"]]
    assert domain["schema"]["enum"] == list(datasets.NAMES)


@pytest.mark.parametrize(
    ("path", "method"),
    [(path, method) for path, method, operation in operations() if "requestBody" in operation],
)
def test_every_form_has_an_example_its_form_accepts(path: str, method: str) -> None:
    body = DOCUMENT["paths"][path][method]["requestBody"]["content"]["application/json"]["schema"]
    name = body["$ref"].rsplit("/", 1)[-1]
    schema = DOCUMENT["components"]["schemas"][name]
    assert schema.get("examples"), f"{name} has no example"
    for example in schema["examples"]:
        FORMS[name].model_validate(example)


@pytest.mark.parametrize(
    ("path", "method"),
    [(path, method) for path, method, operation in operations() if "requestBody" in operation],
)
def test_if_match_is_taken_exactly_where_the_form_can_be_corrected(path: str, method: str) -> None:
    operation = DOCUMENT["paths"][path][method]
    name = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
    assert ("If-Match" in headers) is issubclass(FORMS[name], forms.Correctable), name
