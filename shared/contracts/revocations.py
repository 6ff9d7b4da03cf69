"""Whose access is revoked now: folded from the trial-level facts, by the gateway on every request and by the
data management service before it changes access."""

from collections.abc import Iterable

from shared.contracts.events import DomainEvent, UserAccessRestored, UserAccessRevoked


def revoked_users(facts: Iterable[DomainEvent]) -> frozenset[str]:
    """The users whose access a data manager revoked and nobody restored, from the trial-level facts in order."""
    revoked: frozenset[str] = frozenset()
    for fact in facts:
        match fact:
            case UserAccessRevoked(user=user):
                revoked |= {user}
            case UserAccessRestored(user=user):
                revoked -= {user}
            case _:
                pass
    return revoked
