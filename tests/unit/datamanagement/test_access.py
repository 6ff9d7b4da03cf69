"""Revoking and restoring a user's access: once, never one's own, restored only when revoked."""

import pytest

from services.datamanagement import access
from shared.contracts.events import UserAccessRestored, UserAccessRevoked
from shared.contracts.forms import AccessChangeRecord
from shared.contracts.revocations import revoked_users
from shared.contracts.rules import RecordedBefore

REASON = "left the study team"


def change(user: str, *, revoked: bool) -> AccessChangeRecord:
    return AccessChangeRecord(user=user, reason=REASON, revoked=revoked)


def test_a_user_is_revoked_once_and_restored_only_when_revoked() -> None:
    assert access.change_access([], change("crc-17", revoked=True), by="dm-1") == [UserAccessRevoked(user="crc-17")]
    revoked = [UserAccessRevoked(user="crc-17")]
    with pytest.raises(RecordedBefore) as standing:
        access.change_access(revoked, change("crc-17", revoked=True), by="dm-2")
    assert standing.value.fact == UserAccessRevoked(user="crc-17")
    assert access.change_access(revoked, change("crc-17", revoked=False), by="dm-1") == [
        UserAccessRestored(user="crc-17")
    ]
    with pytest.raises(access.NotRevoked):
        access.change_access([*revoked, UserAccessRestored(user="crc-17")], change("crc-17", revoked=False), by="x")
    assert revoked_users([*revoked, UserAccessRevoked(user="inv-2"), UserAccessRestored(user="crc-17")]) == {"inv-2"}


def test_nobody_revokes_their_own_access() -> None:
    with pytest.raises(access.OwnAccess):
        access.change_access([], change("dm-1", revoked=True), by="dm-1")
