"""What end-to-end tests share: tokens, headers, forms, and the running system."""

import uuid
from dataclasses import dataclass
from typing import Any

from devstack.stack import ServiceProcesses
from services.gateway.auth import Role, issue_token

SECRET = "k" * 40
KEYS = f"e2e:{SECRET}"
ISSUER = "trial-gateway"
# Every test session against the same stream must use the same list: a fixed, test-kind seed.
TEST_SEED = "0123456789abcdef" * 4
CONSENT: dict[str, Any] = {
    "consent_form_version": "1.0",
    "signed_on": "2026-11-20",
    "obtained_by": "inv-01",
    "signed_by_subject": True,
}


@dataclass
class System:
    processes: ServiceProcesses
    url: str
    database_url: str


def token(role: Role, site: str | None = None) -> str:
    return issue_token({"e2e": SECRET}, issuer=ISSUER, role=role, site=site, hours=1)


def headers(bearer: str | None, key: str | None = None) -> dict[str, str]:
    result = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return result | ({"Idempotency-Key": key} if key else {})


def new_key() -> str:
    return f"key-{uuid.uuid4()}"
