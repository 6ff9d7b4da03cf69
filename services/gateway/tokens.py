"""Whether a verified token still stands: not ended by its holder (a sign-out, kept in the gateway's own table), and
its holder's access not revoked by a data manager (read from the record itself, where only the data management
service may write it: no database role can let a revoked user in again). Both asked at once, per request."""

import asyncio
from dataclasses import dataclass

import asyncpg

from services.gateway.auth import Principal
from shared.contracts.events import UserAccessRestored, UserAccessRevoked
from shared.contracts.revocations import revoked_users
from shared.runtime.eventstore import EventStore, trial_history

ENDED = "SELECT EXISTS (SELECT 1 FROM ended_tokens WHERE issuer = $1 AND token_id = $2)"

# Ended tokens are kept until they expire, and for a while after (a clock behind); then forgotten.
END = """
WITH forgotten AS (DELETE FROM ended_tokens WHERE expires_at < now() - interval '1 day')
INSERT INTO ended_tokens (issuer, token_id, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING
"""


# The facts that change who is revoked, each read by a filter naming one subject. The server answers such a read from
# its index of subjects; a filter with a wildcard, read from after its last fact, has it look through every subject
# recorded since (1.6 ms against 0.18 ms with 20,000 events since, and growing with the record), on every request.
ACCESS_FACTS = (UserAccessRevoked.event_type, UserAccessRestored.event_type)


@dataclass
class TokenStanding:
    pool: asyncpg.Pool
    record: EventStore
    trial_id: str
    # The revoked users as of the access facts last read (the last sequence of each): worked out once per change.
    _revoked: tuple[tuple[int, ...], frozenset[str]] = ((), frozenset())

    async def refusal(self, caller: Principal) -> str | None:
        """Why this verified token is no longer taken, or None when it stands."""
        ended, revoked = await asyncio.gather(
            self.pool.fetchval(ENDED, caller.issuer, caller.token_id), self.revoked_users()
        )
        if ended:
            return "signed out: sign in again"
        if caller.actor in revoked:
            return "access revoked"
        return None

    async def revoked_users(self) -> frozenset[str]:
        histories = await asyncio.gather(*(self.record.load(trial_history(self.trial_id, t)) for t in ACCESS_FACTS))
        read = tuple(h.last_sequence for h in histories)
        if read != self._revoked[0]:
            facts = sorted((e for h in histories for e in h.events), key=lambda e: e.sequence)
            self._revoked = (read, revoked_users(e.data for e in facts))
        return self._revoked[1]

    async def end(self, caller: Principal) -> None:
        """Refuse this token from now on, on every replica: what a sign-out does."""
        await self.pool.execute(END, caller.issuer, caller.token_id, caller.expires_at)
