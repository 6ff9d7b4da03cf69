"""Settings: environment first, secrets as files when mounted."""

import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.gateway.settings import DEV_SIGNING_KEYS, GatewaySettings, UnsafeConfiguration
from shared.runtime.settings import PROJECT_ROOT, load_settings


def test_secrets_are_read_from_files_when_a_secrets_dir_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "token_signing_keys").write_text("k9:dtp5NW0-tKvJfWMWAuCWuWtZzeYhc48vm-qOVIvt0nk")
    monkeypatch.setenv("SECRETS_DIR", str(tmp_path))
    assert list(load_settings(GatewaySettings).signing_keys()) == ["k9"]


def test_the_gateway_refuses_to_go_on_without_a_token_issuer() -> None:
    with pytest.raises(UnsafeConfiguration, match="no token issuer: set OIDC_ISSUER"):
        GatewaySettings().signing_keys()


def test_with_an_identity_provider_alone_the_gateway_issues_no_tokens_of_its_own() -> None:
    settings = GatewaySettings(oidc_issuer="https://login.example.org/realms/trial", oidc_audience="urn:trial")
    assert settings.signing_keys() == {}
    with pytest.raises(ValidationError, match="OIDC_AUDIENCE"):
        GatewaySettings(oidc_issuer="https://login.example.org/realms/trial")


@pytest.mark.parametrize("published", [DEV_SIGNING_KEYS, "ops:dev-only-signing-key-never-use-in-production-0123"])
def test_the_gateway_refuses_a_published_development_key_outside_development_mode(published: str) -> None:
    with pytest.raises(UnsafeConfiguration, match="published"):
        GatewaySettings(token_signing_keys=f"k9:dtp5NW0-tKvJfWMWAuCWuWtZzeYhc48vm-qOVIvt0nk,{published}").signing_keys()
    assert "dev" in GatewaySettings(development_mode=True).signing_keys()


def test_the_gateway_cannot_vouch_for_commands_without_its_command_key() -> None:
    with pytest.raises(UnsafeConfiguration, match="COMMAND_SIGNING_KEY"):
        GatewaySettings().serving_command_signing_key()


def test_the_gateway_process_exits_at_once_with_one_sentence_when_unsafe(tmp_path: Path) -> None:
    env = {"PATH": "", "SECRETS_DIR": str(tmp_path), "HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "services.gateway"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        cwd=PROJECT_ROOT,
    )
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "gateway: refusing to start: no token issuer: set OIDC_ISSUER and OIDC_AUDIENCE (or TOKEN_SIGNING_KEYS, or "
        "DEVELOPMENT_MODE for the known development key)"
    )


@pytest.mark.parametrize(
    ("secret", "why"),
    [
        ("a" * 32, "too short"),
        ("k" * 40, "too short"),
        ("0123456789abcdef" * 3, "too short"),  # hex: 4 bits a character
        ("ab" * 40, "not random"),
        ("password" * 8, "not random"),
    ],
)
def test_the_gateway_refuses_a_token_key_of_low_entropy(secret: str, why: str) -> None:
    with pytest.raises(ValidationError, match=why):
        GatewaySettings(token_signing_keys=f"k9:{secret}")


def test_a_key_from_a_random_generator_is_taken_in_base64url_or_hex() -> None:
    for secret in (secrets.token_urlsafe(32), secrets.token_hex(32)):
        assert GatewaySettings(token_signing_keys=f"k9:{secret}").signing_keys() == {"k9": secret}


def test_a_stop_that_hangs_still_ends_the_process_at_its_deadline() -> None:
    hanging = "from shared.runtime.runner import exit_within; exit_within(0.5); import time; time.sleep(30)"
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", hanging], capture_output=True, text=True, timeout=20, check=False)
    assert done.returncode == 1 and time.monotonic() - started < 10
    assert "stop_deadline_passed" in done.stdout + done.stderr
