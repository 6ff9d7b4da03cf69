"""A command counts only with the gateway's signature over this subject and these bytes, for a role that may send it."""

from datetime import UTC, datetime, timedelta

import pytest

from shared.access import Role
from shared.attestation import CommandSigner, CommandVerifier, InvalidKey, Unattested, new_key_pair
from shared.commands import EXPORT_ALLOCATION_LIST, RECORD_CONSENT

SIGNING, VERIFYING = new_key_pair("k1")
GATEWAY, SERVICE = CommandSigner(SIGNING), CommandVerifier(VERIFYING)
PAYLOAD = b'{"context": {}, "form": {}}'


def coordinator_of(site: str, subject: str = RECORD_CONSENT, payload: bytes = PAYLOAD) -> dict[str, str]:
    return GATEWAY.headers(
        subject, payload, actor="sc-1", role=Role.SITE_COORDINATOR, actor_site=site, target_site=site
    )


def test_a_command_signed_by_the_gateway_names_its_caller() -> None:
    attested = SERVICE.verify(RECORD_CONSENT, PAYLOAD, coordinator_of("NFH"))
    assert (attested.actor, attested.role, attested.actor_site) == ("sc-1", Role.SITE_COORDINATOR, "NFH")


def test_a_command_without_an_assertion_is_refused() -> None:
    with pytest.raises(Unattested, match="no assertion"):
        SERVICE.verify(RECORD_CONSENT, PAYLOAD, {})


def test_changed_bytes_or_another_subject_void_the_assertion() -> None:
    headers = coordinator_of("NFH")
    with pytest.raises(Unattested, match="another message"):
        SERVICE.verify(RECORD_CONSENT, PAYLOAD.replace(b"{}", b'{"x": 1}', 1), headers)
    with pytest.raises(Unattested, match="another message"):
        SERVICE.verify("trial.cmd.screening.withdraw_consent", PAYLOAD, headers)


def test_an_assertion_signed_with_another_key_is_refused() -> None:
    forger = CommandSigner(new_key_pair("k1")[0])  # same key id, another key
    headers = forger.headers(
        RECORD_CONSENT, PAYLOAD, actor="x", role=Role.SITE_COORDINATOR, actor_site="NFH", target_site="NFH"
    )
    with pytest.raises(Unattested, match="invalid assertion"):
        SERVICE.verify(RECORD_CONSENT, PAYLOAD, headers)


def test_a_role_without_the_commands_right_is_refused_even_when_signed() -> None:
    headers = GATEWAY.headers(
        EXPORT_ALLOCATION_LIST, PAYLOAD, actor="sc-1", role=Role.SITE_COORDINATOR, actor_site="NFH", target_site=None
    )
    with pytest.raises(Unattested, match="may not send"):
        SERVICE.verify(EXPORT_ALLOCATION_LIST, PAYLOAD, headers)


def test_a_site_role_acting_on_another_site_is_refused() -> None:
    headers = GATEWAY.headers(
        RECORD_CONSENT, PAYLOAD, actor="sc-1", role=Role.SITE_COORDINATOR, actor_site="NFH", target_site="GZ2"
    )
    with pytest.raises(Unattested, match="own site"):
        SERVICE.verify(RECORD_CONSENT, PAYLOAD, headers)


def test_an_old_assertion_is_refused() -> None:
    old = GATEWAY.headers(
        RECORD_CONSENT,
        PAYLOAD,
        actor="sc-1",
        role=Role.SITE_COORDINATOR,
        actor_site="NFH",
        target_site="NFH",
        now=datetime.now(UTC) - timedelta(minutes=5),
    )
    with pytest.raises(Unattested, match="invalid assertion"):
        SERVICE.verify(RECORD_CONSENT, PAYLOAD, old)


def test_a_rotated_out_key_still_verifies_while_listed() -> None:
    old_signing, old_verifying = new_key_pair("k0")
    both = CommandVerifier(f"{VERIFYING},{old_verifying}")
    headers = CommandSigner(old_signing).headers(
        RECORD_CONSENT, PAYLOAD, actor="sc-1", role=Role.INVESTIGATOR, actor_site="SZ3", target_site="SZ3"
    )
    assert both.verify(RECORD_CONSENT, PAYLOAD, headers).role == Role.INVESTIGATOR
    with pytest.raises(Unattested, match="unknown key"):
        SERVICE.verify(RECORD_CONSENT, PAYLOAD, headers)


@pytest.mark.parametrize("setting", ["", "k1", "k1:not-base64!", "k1:" + "A" * 10])
def test_malformed_keys_are_refused_at_start(setting: str) -> None:
    with pytest.raises(InvalidKey):
        CommandVerifier(setting)
