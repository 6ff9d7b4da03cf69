"""An amendment of the trial's protocol as tests deploy it: version 2.0 admits subjects up to 65 (IN07), revises the
consent form, and widens the W1 window to ±3 days."""

from datetime import date
from typing import Any

from shared.contracts.protocol import ProtocolDefinition, whole_document
from shared.runtime.settings import DEFAULT_PROTOCOL_FILE

OLDEST_BEFORE, OLDEST_AFTER = 59, 65


def amendment(
    effective: dict[str, date],
    *,
    version: str = "2.0",
    amends: str = "1.0",
    first: ProtocolDefinition | None = None,
    **header: Any,
) -> dict[str, Any]:
    """The body that deploys it (`AmendmentDeployment`), in force at each site from its day; it amends `first`
    (by default the trial's definition file)."""
    document = first.model_dump(mode="json") if first else whole_document(DEFAULT_PROTOCOL_FILE)
    document["version"] = version
    document["consent_form_versions"] = [*document["consent_form_versions"], version]
    document["eligibility"]["inclusion"]["IN07"] |= {
        "max_age": OLDEST_AFTER,
        "label": f"Age 18 to {OLDEST_AFTER} years",
        "label_zh": f"年龄18至{OLDEST_AFTER}岁",
        "text": f"Age 18 to {OLDEST_AFTER} (inclusive) at screening.",
        "text_zh": f"筛选时年龄18至{OLDEST_AFTER}岁（含）。",
    }
    [w1] = [v for v in document["schedule"]["follow_up"] if v["code"] == "W1"]
    w1["window_days"] = 3
    return {
        "amends": amends,
        "summary": f"Subjects up to {OLDEST_AFTER}; consent form revised; W1 within ±3 days",
        "summary_zh": f"受试者年龄上限{OLDEST_AFTER}岁；知情同意书修订；第1周访视窗±3天",
        "effective": {site: day.isoformat() for site, day in effective.items()},
        "consent_form_version": version,
        "definition": document,
    } | header
