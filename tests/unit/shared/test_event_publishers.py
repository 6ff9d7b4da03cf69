"""Every fact in the catalogue can be recorded by the service that decides it, and by nobody else."""

import pytest

from ops.bus_permissions import PERMISSIONS
from shared.contracts.events import catalogue, registered_types
from shared.runtime.eventstore import EVENTS_PREFIX

# A deviation is recorded by whichever service finds it: a late surgery (visits), a late SAE report (safety).
# What happened against the protocol is found where it happens: a screening, a surgery or visit, a late safety
# report, and a medication an edit check finds the protocol forbids.
DECIDED_BY_SEVERAL = {"ProtocolDeviationRecorded": ["screening", "visits", "safety", "datamanagement"]}


# The catalogue's own events (tests register made-up ones of their own).
CATALOGUE = sorted({t for (t, _), cls in registered_types().items() if cls.__module__ == catalogue.__name__})


@pytest.mark.parametrize("event_type", CATALOGUE)
def test_each_event_type_has_exactly_one_publishing_service(event_type: str) -> None:
    publishers = [
        user
        for user, permissions in PERMISSIONS.items()
        if user != "admin"
        and any(s.startswith(f"{EVENTS_PREFIX}.") and s.endswith(f".{event_type}") for s in permissions.publish)
    ]
    if event_type in DECIDED_BY_SEVERAL:
        assert sorted(publishers) == sorted(DECIDED_BY_SEVERAL[event_type])
    else:
        assert len(publishers) == 1, f"{event_type} is published by {publishers or 'nobody'}"
