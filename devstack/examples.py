"""Forms as a site would fill them in: the welcome text of `make run`, the benchmarks, the crash tests and
the end-to-end tests all post these."""

from datetime import UTC, datetime, timedelta
from typing import Any

from shared.contracts.forms import CONSENT_EXAMPLE, ELIGIBLE_EXAMPLE

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
