"""Pure rules of users' access: a data manager revokes a user (never their own access) and may restore it."""

from collections.abc import Sequence

from shared.contracts.events import DomainEvent, UserAccessRestored, UserAccessRevoked
from shared.contracts.forms import AccessChangeRecord
from shared.contracts.revocations import revoked_users
from shared.contracts.rules import RecordedBefore, RuleViolation


class NotRevoked(RuleViolation):
    rule, title = "access.not_revoked", "The user's access is not revoked"


class OwnAccess(RuleViolation):
    rule, title = "access.own", "Nobody revokes their own access"


def change_access(facts: Sequence[DomainEvent], change: AccessChangeRecord, *, by: str) -> list[DomainEvent]:
    revoked = revoked_users(facts)
    if change.revoked:
        if change.user == by:
            raise OwnAccess("another data manager revokes a data manager's access", field="user")
        if change.user in revoked:
            raise RecordedBefore(UserAccessRevoked(user=change.user))
        return [UserAccessRevoked(user=change.user)]
    if change.user not in revoked:
        raise NotRevoked(f"{change.user}'s access is not revoked", field="user")
    return [UserAccessRestored(user=change.user)]
