"""What end-to-end tests share: tokens, headers, forms, and the running system."""

import uuid
from dataclasses import dataclass
from typing import Any

import httpx

from devstack.stack import ServiceProcesses
from services.gateway.auth import Role, issue_token
from tests.conftest import SubjectIds

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


ELIGIBLE: dict[str, Any] = {
    "screening_date": "2026-11-24",
    "age_years": 35,
    "sex": "female",
    "height_cm": 160,
    "weight_kg": 55,
    "localized_scleroderma_symptoms": True,
    "alopecia_secondary_to_localized_scleroderma": True,
    "hair_loss_onset_date": "2024-01-01",
    "adequate_donor_hair": True,
    "last_disease_activity_date": "2025-01-01",
    "biopsy": {
        "inflammatory_cell_infiltration": False,
        "follicle_orifices_absent": True,
        "follicles_replaced_by_connective_tissue": True,
    },
    "fit_for_anaesthesia_and_surgery": True,
    "willing_to_comply_with_follow_up": True,
    "hair_loss_area_fraction": "1/4",
    "scalp_infection": False,
    "contraindications": [],
    "pregnant": False,
    "breastfeeding": False,
    "last_vasodilator_or_immunosuppressant_start": "never",
    "last_topical_ointment_on_surgical_area": "never",
    "serology": {"hiv": "negative", "hbv": "negative", "hcv": "negative", "htlv": "negative", "syphilis": "negative"},
    "last_tumour_diagnosis": "never",
    "prednisolone_mg_per_day": 0,
    "investigator_judges_unsuitable": False,
}


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
