"""Property-based fuzzing of the running gateway from its own OpenAPI document: no 5xx, no answer off its schema."""

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from services.gateway.app import create_app
from services.gateway.auth import Role
from services.gateway.settings import GatewaySettings
from tests.conftest import COMMAND_SIGNING_KEY
from tests.e2e.api import KEYS, System, token

pytestmark = pytest.mark.e2e

SETTINGS = GatewaySettings(token_signing_keys=KEYS, command_signing_key=COMMAND_SIGNING_KEY)
# Every operation the gateway documents (building the app connects to nothing).
OPERATIONS = [
    (path, method.upper()) for path, item in create_app(SETTINGS).openapi()["paths"].items() for method in item
]
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="session")
def api_schema(system_openapi: dict[str, Any]) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_dict(system_openapi)


def caller_for(path: str) -> str:
    """A token that passes authorization, so the fuzzed input reaches validation and the services."""
    if path.startswith("/v1/safety"):
        return token(Role.SAFETY_OFFICER)
    if path.endswith("allocation-list.csv"):
        return token(Role.STATISTICIAN)
    if path.endswith("/invalidation"):
        return token(Role.DATA_MANAGER)
    return token(Role.SITE_COORDINATOR, "NFH")


@pytest.mark.parametrize(("path", "method"), OPERATIONS)
def test_the_gateway_answers_any_input_within_its_contract(
    api_schema: schemathesis.BaseSchema, system: System, path: str, method: str
) -> None:
    operation = api_schema[path][method]
    bearer = {"Authorization": f"Bearer {caller_for(path)}"}

    @given(case=operation.as_strategy())
    @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
    def fuzz(case: schemathesis.Case[Any]) -> None:
        # Fuzzed subjects stay at one site, in a range no other test draws from (NFH-900 to NFH-999).
        if case.path_parameters and "site" in case.path_parameters:
            case.path_parameters["site"] = "NFH"
            if "subject" in case.path_parameters:
                number = sum(map(ord, str(case.path_parameters["subject"]))) % 100
                case.path_parameters["subject"] = f"NFH-9{number:02d}"
        case.call_and_validate(base_url=system.url, headers=bearer, checks=CHECKS)

    fuzz()
