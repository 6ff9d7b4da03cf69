"""Forms as a site would fill them in: the welcome text of `make run`, the benchmarks, the crash tests and
the end-to-end tests all post these."""

from datetime import UTC, datetime, timedelta
from typing import Any

CONSENT: dict[str, Any] = {
    "consent_form_version": "1.0",
    "signed_on": "2026-11-20",
    "obtained_by": "inv-01",
    "signed_by_subject": True,
}

# Meets every inclusion criterion and no exclusion criterion.
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


def serious_adverse_event(**changes: Any) -> dict[str, Any]:
    """Grade 3, hospitalization: serious (an SAE alert follows), the site aware an hour ago."""
    return {
        "term": "Scalp necrosis",
        "onset_date": datetime.now(UTC).date().isoformat(),
        "site_aware_at": (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
        "grade": 3,
        "seriousness": ["hospitalization_or_prolongation"],
        "relationship": {"fat_graft": "possible", "hair_transplantation": "possible"},
        "action_taken": "hospitalized",
        "outcome": "recovering",
    } | changes
