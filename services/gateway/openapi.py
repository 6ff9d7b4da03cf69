"""The gateway's OpenAPI document as the gateway really answers, so that generated clients work.

FastAPI's own document is wrong in a few places, corrected here once for every route:
refusals are documented in the route's media type (CSV, HTML) although they are served as
`application/problem+json`; request validation failures are documented as FastAPI's `HTTPValidationError`
although they are problems too; and bounds on a number that may also be written as exact decimal text
(`"55.5"`) are left beside the `anyOf` under pydantic's names (`ge`, `le`), not JSON Schema's.
Non-JSON successes (CSV, HTML, SVG, XML) are text with the response class's media type; SVG and XML are also
documented as bytes (`application/octet-stream`, served to a client asking for it), the form a generated client
reads without any configuration. Refusals FastAPI
gives on every route (an unknown query parameter, an unreadable body) are documented on every route.
"""

import re
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.responses import PlainTextResponse
from starlette.datastructures import Headers
from starlette.types import Receive, Scope, Send

from services.gateway.errors import PROBLEM_JSON
from services.reporting.reports import datasets
from shared.contracts.amendments import ProtocolVersions
from shared.contracts.collected import answers_model, model_name
from shared.contracts.dictionary import DataDictionary, Item

REFS = "#/components/schemas/"
PROBLEM = {"schema": {"$ref": REFS + "Problem"}}
VALIDATION_SCHEMAS = ("HTTPValidationError", "ValidationError")
BOUNDS = {"ge": "minimum", "gt": "exclusiveMinimum", "le": "maximum", "lt": "exclusiveMaximum"}


class CsvResponse(PlainTextResponse):
    media_type = "text/csv"


# A document's bytes, for a client that asks for nothing else: generated clients read this, and neither SVG nor XML.
DOWNLOAD = "application/octet-stream"


class DocumentResponse(PlainTextResponse):
    """An XML document (an SVG picture, the ODM export) in its own media type, or, to a client that asks for
    `application/octet-stream` and not that type, the same bytes as such (both are documented)."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        accept = Headers(scope=scope).get("accept", "")
        if DOWNLOAD in accept and str(self.media_type) not in accept:
            self.headers["content-type"] = DOWNLOAD
        await super().__call__(scope, receive, send)


class SvgResponse(DocumentResponse):
    media_type = "image/svg+xml"


class XmlResponse(DocumentResponse):
    media_type = "application/xml"


DOCUMENT_TYPES = (SvgResponse.media_type, XmlResponse.media_type)


def install_openapi(app: FastAPI) -> None:
    """Serve the corrected document at `/openapi.json`: built on first request, as FastAPI does, and again once the
    gateway has read a new version of the protocol (`app.state.versions`), whose forms it describes."""
    first = app.state.settings.protocol()
    built_for: list[tuple[str, ...]] = []  # the versions the document describes (a version never changes)

    def openapi() -> dict[str, Any]:
        held = app.state.versions.held if hasattr(app.state, "versions") else ProtocolVersions(first)
        versions = tuple(v.version for v in held.all)
        if app.openapi_schema is None or built_for != [versions]:
            document = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            app.openapi_schema = corrected(document, held)
            built_for[:] = [versions]
        return app.openapi_schema

    setattr(app, "openapi", openapi)  # noqa: B010 - FastAPI's documented way to replace the document


def corrected(document: dict[str, Any], versions: ProtocolVersions) -> dict[str, Any]:
    dictionary = versions.first.forms
    for item in document["paths"].values():
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            # Every operation refuses a query parameter it does not know (`known_query_parameters`), and one
            # with a body refuses a body that is not text at all (FastAPI's 400).
            responses.setdefault("422", {"description": "Unprocessable Content"})
            if "requestBody" in operation:
                responses.setdefault("400", {"description": "Bad Request: the body is not readable"})
            if any(p["name"] == "Read-After" for p in operation.get("parameters", [])):
                responses.setdefault("409", {"description": "Conflict: Read-After is beyond the record"})
                responses.setdefault(
                    "503", {"description": "Service Unavailable: the read models have not reached Read-After yet"}
                )
            for status, response in responses.items():
                content = response.get("content", {})
                if any(media_type in content for media_type in DOCUMENT_TYPES):
                    content[DOWNLOAD] = {"schema": {"type": "string", "format": "binary"}}
                refusal = int(status) >= 400
                if (
                    (refusal and not content)
                    or PROBLEM_JSON in content
                    or any(map(_is_validation_error, content.values()))
                ):
                    response["content"] = {PROBLEM_JSON: PROBLEM}
            for parameter in operation.get("parameters", []):
                parameter["schema"] = _without_null(parameter["schema"])
    schemas = document["components"]["schemas"]
    for name in VALIDATION_SCHEMAS:
        schemas.pop(name, None)
    for name, form in dictionary.forms.items():
        if form.model in schemas:
            _labelled(schemas[form.model], dictionary.items_of(name), schemas, dictionary)
    by_version = _collected_schemas(versions, schemas)
    document["x-protocol-versions"] = [v.version for v in versions.all]  # the versions it describes
    exported = list(datasets.names(versions.exported_forms))
    for item in document["paths"].values():
        for operation in item.values():
            if (form_name := operation.get("x-form")) is not None:
                _described_by_version(operation, by_version[form_name], versions)
            for parameter in operation.get("parameters", []):
                if operation.get("operationId") == "export_domain" and parameter["name"] == "domain":
                    # The datasets of every version's forms: each exactly.
                    parameter["schema"] = {"type": "string", "pattern": f"^({'|'.join(exported)})$", "enum": exported}
    _walk(document, _exact_number)
    return document


def _collected_schemas(versions: ProtocolVersions, schemas: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Each collected form's schema in each version that declares it, labelled in that version's words, as a
    component: the first version's under the form's own name (`QolForm`), a later version's that differs under
    the name with its version (`QolForm_2_0`, its title too: a generated client's model). By form, the component
    of each version."""
    by_version: dict[str, dict[str, str]] = {}
    for version in versions.all:
        for name in version.forms.collected:
            model = answers_model(version.forms, name)
            schema = model.model_json_schema(ref_template=f"{REFS}{{model}}")
            schemas.update(schema.pop("$defs", {}))
            for entry in schema["properties"].values():  # an optional item is left out, as FastAPI documents it
                if entry.get("default", ...) is None:
                    del entry["default"]
            _labelled(schema, version.forms.items_of(name), schemas, version.forms)
            named = by_version.setdefault(name, {})
            component = model_name(name) if not named else f"{model_name(name)}_{_safe(version.version)}"
            schema["title"] = component
            same = next((c for c in dict.fromkeys(named.values()) if schemas[c] == schema | {"title": c}), None)
            if same is None:
                schemas[component] = schema
            named[version.version] = same or component
    return by_version


def _described_by_version(operation: dict[str, Any], components: dict[str, str], versions: ProtocolVersions) -> None:
    """A collected form's operation: its body is the first version's schema of the form that declares it, and
    `x-versions` names the schema of each version, of which the one in force at the site is taken; its visit is
    one of those any version enters it at."""
    first = next(iter(components.values()))
    content = operation["requestBody"]["content"]["application/json"]
    content["schema"] = {"$ref": REFS + first}
    operation["x-versions"] = {version: {"$ref": REFS + c} for version, c in components.items()}
    form = operation["x-form"]
    visits = list(dict.fromkeys(v for p in versions.all if form in p.forms.forms for v in p.forms.forms[form].visits))
    for parameter in operation.get("parameters", []):
        if parameter["name"] == "visit" and visits:
            described = f"the visit: {'|'.join(visits)}"
            pattern = f"^({'|'.join(visits)})$"
            parameter["description"] = described
            parameter["schema"] = {"type": "string", "pattern": pattern, "examples": visits[:1], "title": "Visit"}


def _safe(version: str) -> str:
    """A version as part of a component's name (`2.0` → `2_0`)."""
    return re.sub(r"[^A-Za-z0-9]", "_", version)


def _labelled(
    schema: dict[str, Any], items: dict[str, Item], schemas: dict[str, Any], dictionary: DataDictionary
) -> None:
    """Each item's words from the data dictionary: the English question as the title and its help as the
    description, and, for any site app in either language, both (`x-label`, `x-hint`), the unit (`x-unit`), the
    code list's decodes (`x-codes`), when it is collected (`x-when`), who answers it (`x-answered-by`) and which of
    the subject's records it names (`x-refers-to`)."""
    properties = schema.get("properties", {})
    for name, item in items.items():
        if name not in properties:
            continue
        entry = properties[name]
        entry["title"] = item.label.en
        entry["x-label"] = item.label.model_dump()
        entry.pop("description", None)  # the dictionary's help or none: one place says what an item means
        if item.hint is not None:
            entry["description"] = item.hint.en
            entry["x-hint"] = item.hint.model_dump()
        if item.unit is not None:
            entry["x-unit"] = item.unit
        if item.code_list is not None:
            entry["x-codes"] = {c.code: {"en": c.en, "zh": c.zh} for c in dictionary.code_lists[item.code_list]}
        if item.when is not None:
            entry["x-when"] = {"condition": item.when, **dictionary.conditions[item.when].model_dump()}
        if item.answered_by is not None:
            entry["x-answered-by"] = item.answered_by.value
        if item.refers_to is not None:
            entry["x-refers-to"] = item.refers_to
        for ref in _refs(entry):
            _labelled(schemas[ref], item.items, schemas, dictionary)


def _refs(node: Any) -> list[str]:
    """The component schemas a property refers to (through `anyOf` and `items` too)."""
    if isinstance(node, dict):
        own = [node["$ref"].rsplit("/", 1)[-1]] if "$ref" in node else []
        return own + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A parameter is left out to say "none": a query string or header cannot be null, so its schema has no `null`
    branch (pydantic's `X | None` gives it one)."""
    branches = schema.get("anyOf")
    if not isinstance(branches, list):
        return schema
    kept = [b for b in branches if b.get("type") != "null"]
    if len(kept) == len(branches):
        return schema
    rest = {k: v for k, v in schema.items() if k != "anyOf"}
    return rest | kept[0] if len(kept) == 1 else rest | {"anyOf": kept}


def _is_validation_error(content: dict[str, Any]) -> bool:
    return content.get("schema", {}).get("$ref", "").rsplit("/", 1)[-1] in VALIDATION_SCHEMAS


def _walk(node: Any, fix: Callable[[dict[str, Any]], None]) -> None:
    if isinstance(node, dict):
        fix(node)
        for value in node.values():
            _walk(value, fix)
    elif isinstance(node, list):
        for value in node:
            _walk(value, fix)


def _exact_number(node: dict[str, Any]) -> None:
    """A number or its exact text (`TextPattern`): pydantic's bounds go on the number, as JSON Schema's."""
    branches = node.get("anyOf")
    if not isinstance(branches, list):
        return
    numbers = [b for b in branches if b.get("type") == "number"]
    if not numbers or not any(b.get("type") == "string" for b in branches):
        return
    for pydantic_name, json_schema_name in BOUNDS.items():
        if pydantic_name in node:
            bound = node.pop(pydantic_name)
            for number in numbers:
                number[json_schema_name] = bound
