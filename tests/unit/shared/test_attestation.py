"""A command counts only with the gateway's signature over this subject and these bytes, for a role that may send it."""

from datetime import UTC, datetime, timedelta

import pytest

from shared.contracts.access import Role
from shared.contracts.attestation import CommandSigner, CommandVerifier, InvalidKey, Unattested, new_key_pair
from shared.contracts.commands import EXPORT_ALLOCATION_LIST, RECORD_CONSENT

SIGNING, VERIFYING = new_key_pair("k1")
GATEWAY, SERVICE = CommandSigner(SIGNING), CommandVerifier(VERIFYING)
PAYLOAD = b'{"context": {}, "form": {}}'


def signed(
    subject: str = RECORD_CONSENT,
    *,
    role: Role = Role.SITE_COORDINATOR,
    actor_site: str | None = "NFH",
    target_site: str | None = "NFH",
    by: CommandSigner = GATEWAY,
    now: datetime | None = None,
) -> dict[str, str]:
    """What the gateway (or a forger holding `by`) sends with a command; a coordinator of NFH by default."""
    return by.headers(
        subject, PAYLOAD, actor="sc-1", role=role, actor_site=actor_site, target_site=target_site, now=now
    )


def test_a_command_signed_by_the_gateway_names_its_caller() -> None:
    attested = SERVICE.verify(RECORD_CONSENT, PAYLOAD, signed())
    assert (attested.actor, attested.role, attested.actor_site) == ("sc-1", Role.SITE_COORDINATOR, "NFH")


def test_a_command_without_an_assertion_is_refused() -> None:
    with pytest.raises(Unattested, match="no assertion"):
        SERVICE.verify(RECORD_CONSENT, PAYLOAD, {})


def test_changed_bytes_or_another_subject_void_the_assertion() -> None:
    with pytest.raises(Unattested, match="another message"):
        SERVICE.verify(RECORD_CONSENT, PAYLOAD.replace(b"{}", b'{"x": 1}', 1), signed())
    with pytest.raises(Unattested, match="another message"):
        SERVICE.verify("trial.cmd.screening.withdraw_consent", PAYLOAD, signed())


def test_an_assertion_signed_with_another_key_is_refused() -> None:
    forger = CommandSigner(new_key_pair("k1")[0])  # same key id, another key
    with pytest.raises(Unattested, match="invalid assertion"):
        SERVICE.verify(RECORD_CONSENT, PAYLOAD, signed(by=forger))


def test_a_role_without_the_commands_right_is_refused_even_when_signed() -> None:
    with pytest.raises(Unattested, match="may not send"):
        SERVICE.verify(EXPORT_ALLOCATION_LIST, PAYLOAD, signed(EXPORT_ALLOCATION_LIST, target_site=None))


def test_a_site_role_acting_on_another_site_is_refused() -> None:
    with pytest.raises(Unattested, match="own site"):
        SERVICE.verify(RECORD_CONSENT, PAYLOAD, signed(target_site="GZ2"))


def test_an_old_assertion_is_refused() -> None:
    with pytest.raises(Unattested, match="invalid assertion"):
        SERVICE.verify(RECORD_CONSENT, PAYLOAD, signed(now=datetime.now(UTC) - timedelta(minutes=5)))


def test_a_rotated_out_key_still_verifies_while_listed() -> None:
    old_signing, old_verifying = new_key_pair("k0")
    both = CommandVerifier(f"{VERIFYING},{old_verifying}")
    headers = signed(role=Role.INVESTIGATOR, actor_site="SZ3", target_site="SZ3", by=CommandSigner(old_signing))
    assert both.verify(RECORD_CONSENT, PAYLOAD, headers).role == Role.INVESTIGATOR
    with pytest.raises(Unattested, match="unknown key"):
        SERVICE.verify(RECORD_CONSENT, PAYLOAD, headers)


@pytest.mark.parametrize("setting", ["", "k1", "k1:not-base64!", "k1:" + "A" * 10])
def test_malformed_keys_are_refused_at_start(setting: str) -> None:
    with pytest.raises(InvalidKey):
        CommandVerifier(setting)
