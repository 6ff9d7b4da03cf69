"""Every version of the protocol as a running process holds them: the definition file's, and each amendment deployed
since, read again from where they are recorded only when what was read last may not hold every version in force at
a site on a day. An amendment takes effect only from a day after the one it is deployed on, so a read made at an
instant is exact, at each site, through that site's date then."""

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date

import structlog

from shared.contracts.amendments import ProtocolVersions
from shared.contracts.events import ProtocolAmendmentDeployed
from shared.contracts.protocol import ProtocolDefinition
from shared.runtime.decisions import Clock, utc_now

log = structlog.get_logger(__name__)


@dataclass
class HeldVersions:
    """`deployed` reads every amendment deployed, the first first (from the record, or from a read model)."""

    first: ProtocolDefinition
    deployed: Callable[[], Awaitable[Sequence[ProtocolAmendmentDeployed]]]
    clock: Clock = utc_now
    _held: ProtocolVersions | None = field(default=None, init=False)
    _exact_through: dict[str, date] = field(default_factory=dict, init=False)

    @property
    def held(self) -> ProtocolVersions:
        """What was read last (the first version alone before any read)."""
        return self._held or ProtocolVersions(self.first)

    async def at(self, site: str | None = None, day: date | None = None) -> ProtocolVersions:
        """Every version, holding all in force at the site on the day; without a site and day, read anew (a
        decision about the whole trial, a periodic look for a new amendment)."""
        held = self._held
        if held is not None and day is not None and day <= self._exact_through.get(site or "", date.min):
            return held
        read_at = self.clock()
        amendments = tuple(await self.deployed())
        if held is None or len(held.amendments) != len(amendments):
            held = ProtocolVersions(self.first, amendments)
            log.info("protocol_versions_read", versions=[v.version for v in held.all])
        self._held, self._exact_through = held, held.exact_through(read_at)
        return held

    def today(self, site: str) -> date:
        """The site's date now, by this holder's clock."""
        return self.first.local_date(site, self.clock())

    async def in_force(self, site: str) -> ProtocolDefinition:
        """The version in force at the site now."""
        today = self.today(site)
        return (await self.at(site, today)).in_force(site, today)
