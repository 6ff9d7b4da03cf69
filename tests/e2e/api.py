"""What end-to-end tests share: tokens, headers, forms, the running system, and history set up in the past."""

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime

import httpx

from devstack.examples import CONSENT as CONSENT  # re-exported: the forms tests post
from devstack.examples import ELIGIBLE as ELIGIBLE
from devstack.examples import allocation as allocation  # re-exported: history set up in the past
from devstack.examples import append as append
from devstack.examples import consent_on as consent_on
from devstack.identity import Account, trial_group
from devstack.stack import ServiceProcesses
from services.gateway.auth import Role, issue_token
from shared.contracts.protocol import ProtocolDefinition
from tests.conftest import SubjectIds

SECRET = "fcmjBGtth1w8kQm_PEF8jMwKSbkimeSwphaHENXkvsk"  # a test key: random, and published with the tests
KEYS = f"e2e:{SECRET}"
ISSUER = "trial-gateway"
# The screening as a coordinator enters it: EX11 is the investigator's judgement (a correction keeps it).
ENTERED = {k: v for k, v in ELIGIBLE.items() if k != "investigator_judges_unsuitable"}
# Every test session against the same stream must use the same list: a fixed, test-kind seed.
TEST_SEED = "0123456789abcdef" * 4


@dataclass
class System:
    processes: ServiceProcesses
    url: str
    database_url: str
    protocol: ProtocolDefinition
    identity_provider: str  # the issuer URL of the real OpenID Connect provider the gateway trusts
    web_url: str  # the web app for site staff, monitors, the safety team and data managers

    def today(self, site: str) -> date:
        """The site's date now: what the people there write on a form (in China it is tomorrow from 16:00 UTC)."""
        return self.protocol.local_date(site, datetime.now(UTC))


# An account of the provider's that only the revocation test uses (revoked, then restored).
LEAVER = Account("leaver.nfh", "Coordinator Leaving", (trial_group(Role.SITE_COORDINATOR, "NFH"),))
# The e2e protocol's signature window: short, so a test sees a sign-in grow too old to sign.
REAUTHENTICATION_SECONDS = 8


def token(role: Role, site: str | None = None) -> str:
    return issue_token({"e2e": SECRET}, issuer=ISSUER, role=role, site=site, hours=1)


def headers(bearer: str | None, key: str | None = None) -> dict[str, str]:
    result = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    return result | ({"Idempotency-Key": key} if key else {})


def new_key() -> str:
    return f"key-{uuid.uuid4()}"


async def consented(client: httpx.AsyncClient, subject_ids: SubjectIds) -> tuple[str, str, str]:
    site, subject = await subject_ids.fresh()
    bearer = token(Role.INVESTIGATOR, site)
    response = await client.post(
        f"/v1/sites/{site}/subjects/{subject}/consent", json=CONSENT, headers=headers(bearer, new_key())
    )
    assert response.status_code == 201, response.text
    return site, subject, bearer


async def eligible_subject(client: httpx.AsyncClient, subject_ids: SubjectIds) -> tuple[str, str, str]:
    site, subject, bearer = await consented(client, subject_ids)
    response = await client.post(
        f"/v1/sites/{site}/subjects/{subject}/screening", json=ELIGIBLE, headers=headers(bearer, new_key())
    )
    assert response.status_code == 201 and response.json()["eligible"], response.text
    return site, subject, bearer
