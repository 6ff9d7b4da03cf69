"""The OpenAPI document says what the gateway does: problems as problem+json, exact numbers with JSON
Schema's bounds and a pattern, an example on every form that the form itself accepts."""

import re
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings
from services.reporting.reports import datasets
from shared.contracts import forms
from shared.contracts.amendments import AmendmentDeployment
from shared.contracts.collected import answers_model, model_name
from shared.contracts.photographs import MEDIA_TYPES
from shared.contracts.protocol import cached_protocol
from shared.runtime.settings import DEFAULT_PROTOCOL_FILE
from tests.conftest import COMMAND_SIGNING_KEY
from tests.e2e.api import KEYS

PROTOCOL = cached_protocol(DEFAULT_PROTOCOL_FILE)
DOCUMENT = create_app(GatewaySettings(token_signing_keys=KEYS, command_signing_key=COMMAND_SIGNING_KEY)).openapi()
FORMS = {
    name: model
    for name, model in vars(forms).items()
    if isinstance(model, type) and issubclass(model, BaseModel) and model.__module__ == forms.__name__
} | {model_name(name): answers_model(PROTOCOL.forms, name) for name in PROTOCOL.forms.collected}
FORMS[AmendmentDeployment.__name__] = AmendmentDeployment  # the whole protocol, beside the forms it declares


def body_of(operation: dict[str, Any]) -> dict[str, Any]:
    """The media types an operation's body may be sent in (a form's JSON, a photograph's image)."""
    content: dict[str, Any] = operation.get("requestBody", {}).get("content", {})
    return content


def test_a_photograph_is_uploaded_as_its_image_and_its_read_is_an_image() -> None:
    upload = DOCUMENT["paths"]["/v1/sites/{site}/subjects/{subject}/visits/{visit}/photographs/{view}"]["post"]
    assert set(body_of(upload)) == {"application/octet-stream"} and "413" in upload["responses"]
    assert "image/jpeg, image/png or application/octet-stream" in upload["summary"]
    [view] = [p for p in upload["parameters"] if p["name"] == "view"]
    assert "recipient_area" in view["schema"]["pattern"]


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
            if status == "204":
                assert "content" not in response, (path, method)  # a sign-out answers nothing
            elif int(status) < 400:
                # One media type, and for an XML document its bytes as such too (`application/octet-stream`); a
                # photograph is kept in the format it came in.
                media_types = [m for m in response["content"] if m != "application/octet-stream"]
                if media_types == list(MEDIA_TYPES):
                    media_types = ["image/*"]
                assert len(media_types) == 1, (path, method, response["content"])
                [media_type] = media_types
                assert all(content["schema"] for content in response["content"].values()), (path, method)
                media[path] = media_type
    assert media["/v1/reports/consort.svg"] == "image/svg+xml"
    assert media["/v1/reports/exports/{domain}.csv"] == "text/csv"
    assert media["/v1/randomization/allocation-list.csv"] == "text/csv"
    assert media["/v1/reports"] == "text/html"


def test_bounds_are_json_schema_keywords_and_decimal_text_has_the_ranges_pattern() -> None:
    pydantic_only = [n for n in nodes(DOCUMENT) if {"ge", "le", "gt", "lt"} & n.keys()]
    assert not pydantic_only
    screening = DOCUMENT["components"]["schemas"]["ScreeningForm"]["properties"]
    number, text, _null = screening["prednisolone_mg_per_day"]["anyOf"]
    assert (number["minimum"], number["maximum"]) == (0, 1000)
    # JSON Schema's `pattern` matches anywhere in the text: the anchors make it the whole text.
    for written in ("12.5", "0", "1000", "1000.0", "999.123456789"):
        assert re.search(text["pattern"], written), written
    for written in ("", "1000.5", "-1", "1e3", " 12.5", "012", "+5", "1.0000000001"):
        assert not re.search(text["pattern"], written), written
    _, height = screening["height_cm"]["anyOf"]
    assert not re.search(height["pattern"], "0") and not re.search(height["pattern"], "230.1")
    assert re.search(height["pattern"], "100") and re.search(height["pattern"], "230.0")


def test_a_measurement_written_as_text_is_taken_exactly_when_its_pattern_admits_it() -> None:
    height = re.compile(screening_property("height_cm")["anyOf"][1]["pattern"])
    for written in ("0", "99.9", "100", "159.5", "230", "230.0", "230.1", "160.55", "0160"):
        admitted = bool(height.search(written))
        try:
            forms.ScreeningForm.model_validate(forms.ELIGIBLE_EXAMPLE | {"height_cm": written})
            accepted = True
        except ValidationError:
            accepted = False
        assert admitted == accepted, written


def screening_property(name: str) -> dict[str, Any]:
    item: dict[str, Any] = DOCUMENT["components"]["schemas"]["ScreeningForm"]["properties"][name]
    return item


def test_the_export_domain_is_an_enum_of_the_datasets() -> None:
    [domain] = [p for p in DOCUMENT["paths"]["/v1/reports/exports/{domain}.csv"]["get"]["parameters"]]
    assert domain["schema"]["enum"] == list(datasets.names(PROTOCOL.forms))


@pytest.mark.parametrize(
    ("path", "method"),
    [(path, method) for path, method, operation in operations() if "application/json" in body_of(operation)],
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
    [(path, method) for path, method, operation in operations() if "application/json" in body_of(operation)],
)
def test_if_match_is_taken_exactly_where_the_form_can_be_corrected(path: str, method: str) -> None:
    operation = DOCUMENT["paths"][path][method]
    name = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[-1]
    headers = {p["name"] for p in operation.get("parameters", []) if p["in"] == "header"}
    # A log's new entry corrects nothing: its entries are corrected at their own path.
    new_entry = path.rpartition("/logs/")[2] in PROTOCOL.forms.logs
    assert ("If-Match" in headers) is (issubclass(FORMS[name], forms.Correctable) and not new_entry), name


def test_no_parameter_is_documented_as_null_and_read_after_documents_its_conflict() -> None:
    for path, method, operation in operations():
        for parameter in operation.get("parameters", []):
            branches = parameter["schema"].get("anyOf", [parameter["schema"]])
            assert all(b.get("type") != "null" for b in branches), (path, method, parameter["name"])
            if parameter["name"] == "Read-After":
                assert parameter["schema"]["type"] == "integer"
                assert "409" in operation["responses"], (path, method)


@pytest.mark.parametrize("written", ["-62135596800", "0.5", "1577836800", "2026-12-01"])
def test_an_instant_is_iso_8601_with_its_offset_never_a_bare_number(written: str) -> None:
    with pytest.raises(ValidationError, match=r"ISO 8601 with its UTC offset|timezone"):
        TypeAdapter(forms.Instant).validate_python(written)


def test_every_column_of_every_json_report_the_web_shows_has_words_in_both_languages() -> None:
    from services.reporting.reports.index import COLUMNS, REPORTS

    schemas = DOCUMENT["components"]["schemas"]
    columns: set[str] = set()

    def collect(schema: dict[str, Any], seen: set[str]) -> None:
        if "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            if name not in seen:
                collect(schemas[name], seen | {name})
            return
        for key, child in schema.get("properties", {}).items():
            columns.add(key)
            collect(child, seen)
        for child in (schema.get("items"), *schema.get("anyOf", ())):
            if isinstance(child, dict):
                collect(child, seen)

    for path, _ in REPORTS:
        if path.endswith(".json"):
            answer = DOCUMENT["paths"][f"/v1/reports/{path}"]["get"]["responses"]["200"]
            collect(answer["content"]["application/json"]["schema"], set())
    assert len(columns) > 80
    assert columns - set(COLUMNS) == set(), "report columns a page would head with their JSON name"
