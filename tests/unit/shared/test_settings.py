"""Settings: environment first, secrets as files when mounted."""

from pathlib import Path

import pytest

from services.gateway.settings import GatewaySettings
from shared.settings import load_settings


def test_secrets_are_read_from_files_when_a_secrets_dir_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "token_signing_keys").write_text("k9:" + "s" * 40)
    monkeypatch.setenv("SECRETS_DIR", str(tmp_path))
    assert list(load_settings(GatewaySettings).signing_keys()) == ["k9"]
