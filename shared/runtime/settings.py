"""Configuration common to every service, read from the environment once at start-up."""

import os
from pathlib import Path
from typing import TypeVar

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.contracts.coding import Dictionaries
from shared.contracts.protocol import DEFAULT_PROTOCOL_FILE as DEFAULT_PROTOCOL_FILE  # where settings look first
from shared.contracts.protocol import ProtocolDefinition, cached_protocol
from shared.runtime.consumers import CHECK_SECONDS

PROJECT_ROOT = Path(__file__).resolve().parents[2]


class TrialSettings(BaseSettings):
    """Connection and protocol settings; services extend it with their own fields."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    nats_url: str = Field("nats://127.0.0.1:4222", description="NATS server(s), comma separated")
    database_url: str = Field("postgresql://postgres@127.0.0.1:5432/trial")
    protocol_file: Path = DEFAULT_PROTOCOL_FILE
    log_level: str = "INFO"
    log_format: str = Field("json", pattern="^(json|console)$")
    stream_replicas: int = Field(1, ge=1, le=5, description="JetStream replicas of each stream (3 in a cluster)")
    command_verify_keys: str | None = Field(
        None, description="services: the gateway's public keys, 'kid:<base64url>[,...]' (shared.contracts.attestation)"
    )
    consumer_check_seconds: float = Field(
        CHECK_SECONDS, gt=0, description="how often a durable consumer's owner checks it still delivers as made"
    )
    health_port: int | None = Field(None, ge=1, le=65535, description="serve /healthz and /readyz here (probes)")
    ae_dictionary_file: Path | None = Field(
        None,
        description="the sponsor's adverse-event dictionary (CSV: verbatim_term,preferred_term,system_organ_class)",
    )
    drug_dictionary_file: Path | None = Field(
        None, description="the sponsor's drug dictionary (CSV: verbatim_term,drug_name,atc_code,atc_class)"
    )

    def dictionaries(self) -> Dictionaries:
        """The sponsor's coding dictionaries, read once at start: a file that cannot be used stops the process,
        naming the file."""
        return Dictionaries.load(self.ae_dictionary_file, self.drug_dictionary_file)

    def protocol(self) -> ProtocolDefinition:
        """The protocol definition this process runs, read once."""
        return cached_protocol(self.protocol_file)


S = TypeVar("S", bound=TrialSettings)


def load_settings(settings_type: type[S]) -> S:
    """Environment variables, and secrets as files when SECRETS_DIR names a folder (one file per field,
    e.g. `token_signing_keys`): secrets mounted as files stay out of the process environment."""
    secrets_dir = os.environ.get("SECRETS_DIR")
    return settings_type(_secrets_dir=secrets_dir) if secrets_dir else settings_type()
