"""Protocol amendments in the record: deployed by a data manager (the rules are `ProtocolVersions.deploy`), and each
recorded in force at a site when the site's day for it comes."""

from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from uuid import NAMESPACE_URL, uuid5

import structlog

from shared.contracts.amendments import AmendmentDeployment, ProtocolVersions
from shared.contracts.events import DomainEvent, EventEnvelope, ProtocolAmendmentEffective, RecordedEvent
from shared.contracts.protocol import ProtocolDefinition
from shared.runtime.eventstore import ConcurrencyConflict, trial_history
from shared.runtime.service import ServiceRuntime

log = structlog.get_logger(__name__)


def deploy(
    first: ProtocolDefinition, history: Iterable[RecordedEvent], form: AmendmentDeployment, *, now: datetime
) -> list[DomainEvent]:
    """Decided on the amendments recorded so far: the new one follows the latest, from a later day at every site."""
    versions = ProtocolVersions.of(first, (e.data for e in history))
    today = {site.code: form.definition.local_date(site.code, now) for site in form.definition.sites}
    return [versions.deploy(form, today=today)]


def due(
    versions: ProtocolVersions, recorded: Iterable[ProtocolAmendmentEffective], now: datetime
) -> list[ProtocolAmendmentEffective]:
    """Each amendment at each site whose day has come there, and is not recorded in force yet."""
    done = {(e.version, e.site) for e in recorded}
    return [
        ProtocolAmendmentEffective(version=amendment.version, site=site, effective_on=day)
        for amendment in versions.amendments
        for site, day in amendment.effective.items()
        if day <= versions.latest.local_date(site, now) and (amendment.version, site) not in done
    ]


async def record_in_force(runtime: ServiceRuntime) -> int:
    """Record each amendment in force at each site whose day has come: once, whichever replica runs it first (each
    fact's id is fixed by its version and site, and every append expects the facts read before it)."""
    now, trial = runtime.clock(), runtime.protocol.trial_id
    versions = await runtime.versions()
    effective = trial_history(trial, ProtocolAmendmentEffective.event_type)
    history = await runtime.store.load(effective)
    facts = due(versions, (e.data for e in history.events if isinstance(e.data, ProtocolAmendmentEffective)), now)
    if not facts:
        return 0
    envelopes = [
        EventEnvelope.wrap(
            fact,
            replace(runtime.trial_metadata(correlation_id=f"amendment-{fact.version}"), protocol_version=fact.version),
            event_id=uuid5(NAMESPACE_URL, f"{trial}/amendment/{fact.version}/{fact.site}"),
            time=now,
        )
        for fact in facts
    ]
    try:
        await runtime.store.append(envelopes, subject_filter=effective, expected_last_sequence=history.last_sequence)
    except ConcurrencyConflict:
        return 0  # another replica recorded them first: the next run reads them
    log.info("protocol_amendment_effective", **{f.site: f.version for f in facts})
    return len(facts)
