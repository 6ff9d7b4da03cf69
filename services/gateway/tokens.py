"""Whether a verified token still stands: not ended by its holder (a sign-out), and its holder's access not revoked
by a data manager. One statement per request, both asked at once."""

import asyncpg

from services.gateway.auth import Principal

STANDING = """
SELECT EXISTS (SELECT 1 FROM ended_tokens WHERE issuer = $1 AND token_id = $2) AS ended,
       EXISTS (SELECT 1 FROM revoked_users WHERE user_id = $3) AS revoked
"""

# Ended tokens are kept until they expire, and for a while after (a clock behind); then forgotten.
END = """
WITH forgotten AS (DELETE FROM ended_tokens WHERE expires_at < now() - interval '1 day')
INSERT INTO ended_tokens (issuer, token_id, expires_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING
"""


async def refusal(pool: asyncpg.Pool, caller: Principal) -> str | None:
    """Why this verified token is no longer taken, or None when it stands."""
    row = await pool.fetchrow(STANDING, caller.issuer, caller.token_id, caller.actor)
    assert row is not None
    if row["ended"]:
        return "signed out: sign in again"
    if row["revoked"]:
        return "access revoked"
    return None


async def end(pool: asyncpg.Pool, caller: Principal) -> None:
    """Refuse this token from now on, on every replica: what a sign-out does."""
    await pool.execute(END, caller.issuer, caller.token_id, caller.expires_at)
