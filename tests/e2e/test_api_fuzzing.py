"""Property-based fuzzing of the running gateway from its own OpenAPI document, with every check schemathesis
has: valid input reaches the rules, invalid input is refused, no 5xx, every answer within its documented
status, media type, headers and schema, and no answer without credentials. As the operation's own role (so
fuzzed input reaches validation and the services), as a site coordinator and as a data manager."""

from collections.abc import Callable
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.config import SchemathesisConfig

from services.gateway.app import create_app
from services.gateway.auth import Role
from services.gateway.settings import GatewaySettings
from tests.conftest import COMMAND_SIGNING_KEY
from tests.e2e.api import KEYS, System, token

pytestmark = pytest.mark.e2e

SETTINGS = GatewaySettings(token_signing_keys=KEYS, command_signing_key=COMMAND_SIGNING_KEY)
# Valid input may still break a trial rule (a screening before consent, an unknown subject): the rules answer
# 409 or 422 with the rule named, as documented. Everything else is each check's default.
CONFIG = SchemathesisConfig.from_dict(
    {"checks": {"positive_data_acceptance": {"expected-statuses": ["2xx", "401", "403", "404", "409", "422"]}}}
)


@pytest.fixture(scope="session")
def api_schema(system_openapi: dict[str, Any]) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_dict(system_openapi, config=CONFIG)


Caller = tuple[Role, str | None]  # a role, and its site


def own_role(path: str) -> Caller:
    """A role that passes authorization, so the fuzzed input reaches validation and the services."""
    if path.startswith("/v1/safety"):
        return Role.SAFETY_OFFICER, None
    if path.endswith("allocation-list.csv"):
        return Role.STATISTICIAN, None
    if path.endswith("/invalidation") or path.startswith("/v1/reports/exports"):
        return Role.DATA_MANAGER, None
    return Role.SITE_COORDINATOR, "NFH"


CALLERS: dict[str, Callable[[str], Caller]] = {
    "own role": own_role,
    "coordinator": lambda path: (Role.SITE_COORDINATOR, "NFH"),
    "data manager": lambda path: (Role.DATA_MANAGER, None),
}
# Every operation the gateway documents (building the app connects to nothing) with valid input and, where
# it takes any input, with invalid input; as each caller that is not its own role again (the cases are the same
# every run, so the same role twice would send the same requests twice).
CASES = [
    pytest.param(path, method.upper(), mode, caller, id=f"{method.upper()} {path} {mode.value}-{caller}")
    for path, item in create_app(SETTINGS).openapi()["paths"].items()
    for method, operation in item.items()
    for mode in GenerationMode
    if mode is GenerationMode.POSITIVE or "parameters" in operation or "requestBody" in operation
    for caller, role in CALLERS.items()
    if caller == "own role" or role(path) != own_role(path)
]


@pytest.mark.parametrize(("path", "method", "mode", "caller"), CASES)
def test_the_gateway_answers_any_input_within_its_contract(
    api_schema: schemathesis.BaseSchema, system: System, path: str, method: str, caller: str, mode: GenerationMode
) -> None:
    operation = api_schema[path][method]
    bearer = {"Authorization": f"Bearer {token(*CALLERS[caller](path))}"}

    @given(case=operation.as_strategy(generation_mode=mode))
    # The same cases every run (a gate must be reproducible); a new operation or schema change brings new ones.
    @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None, derandomize=True)
    def fuzz(case: schemathesis.Case[Any]) -> None:
        # Valid fuzzed subjects stay at one site, in a range no other test draws from (NFH-900 to NFH-999);
        # invalid input keeps its paths, which may be what makes it invalid.
        if mode is GenerationMode.POSITIVE and case.path_parameters and "site" in case.path_parameters:
            case.path_parameters["site"] = "NFH"
            if "subject" in case.path_parameters:
                number = sum(map(ord, str(case.path_parameters["subject"]))) % 100
                case.path_parameters["subject"] = f"NFH-9{number:02d}"
        # Invalid input may be a request without credentials: it keeps going without them.
        without_credentials = mode is GenerationMode.NEGATIVE and "Authorization" not in (case.headers or {})
        case.call_and_validate(base_url=system.url, headers=None if without_credentials else bearer)

    fuzz()
