"""Forms as a site would fill them in, and history set up as if it happened in the past: the welcome text of
`make run`, the benchmarks, the crash tests and the end-to-end tests all post these."""

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from shared.contracts.events import ConsentRecorded, DomainEvent, EventEnvelope, EventMetadata, SubjectRandomized
from shared.contracts.forms import CONSENT_EXAMPLE, ELIGIBLE_EXAMPLE
from shared.runtime.eventstore import EventStore, subject_history

CONSENT: dict[str, Any] = CONSENT_EXAMPLE


# Meets every inclusion criterion and no exclusion criterion.
ELIGIBLE: dict[str, Any] = ELIGIBLE_EXAMPLE


def serious_adverse_event(**changes: Any) -> dict[str, Any]:
    """Grade 3, hospitalization: serious (an SAE alert follows), the site aware an hour ago of an event that began
    the day before (in every site's time zone the awareness is then on or after the onset, at any hour)."""
    aware = datetime.now(UTC) - timedelta(hours=1)
    return {
        "term": "Scalp necrosis",
        "onset_date": (aware - timedelta(days=1)).date().isoformat(),
        "site_aware_at": aware.isoformat(),
        "grade": 3,
        "seriousness": ["hospitalization_or_prolongation"],
        "relationship": {"fat_graft": "possible", "hair_transplantation": "possible"},
        "action_taken": "hospitalized",
        "outcome": "recovering",
    } | changes


def surgery(on: date, *, fat_graft: bool) -> dict[str, Any]:
    form: dict[str, Any] = {
        "procedure_date": on.isoformat(),
        "surgeon": "sur-01",
        "anaesthesia": "local_with_sedation",
        "recipient_area_cm2": 30,
        "follicular_units": 1500,
        "donor_site": "occipital",
    }
    if fat_graft:
        form["fat_graft"] = {"fat_harvest_site": "abdomen", "harvested_fat_ml": 80, "ecm_svf_gel_ml": 10}
    return form


def assessments(on: date) -> dict[str, Any]:
    return {
        "visit_date": on.isoformat(),
        "hair_density_per_cm2": 41.5,
        "grafts_surviving": 1200,
        "satisfaction": 9,
        "mlossi": 1,
        "losdi": 4,
        "photo_reference": "store/photos/visit.jpg",
    }


async def append(store: EventStore, site: str, subject: str, facts: list[tuple[DomainEvent, datetime]]) -> None:
    """History set up as if it happened then: the gateway (rightly) records only what happens now."""
    meta = EventMetadata("/trial/test", site, subject, "setup", "setup", "1.0")
    envelopes = [EventEnvelope.wrap(f, meta, event_id=uuid.uuid4(), time=at) for f, at in facts]
    await store.append(envelopes, subject_filter=subject_history(site, subject), expected_last_sequence=0)


def consent_on(day: date) -> ConsentRecorded:
    return ConsentRecorded(
        consent_form_version="1.0",
        signed_on=day,
        obtained_by="inv-01",
        signed_by_subject=True,
        signed_by_representative=False,
    )


def allocation(site: str, arm: str = "FG_HT") -> SubjectRandomized:
    """Set up beside the concealed list: a number of its own, far above any the list hands out."""
    number = 10_000 + uuid.uuid4().int % 2_000_000_000
    return SubjectRandomized(
        arm=arm,
        randomization_number=number,
        stratum=site,
        stratum_slot=number,
        list_version=1,
        list_commitment="0" * 64,
    )
