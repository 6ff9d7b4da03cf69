"""Randomization service settings. The seed is a secret: from the environment or a Kubernetes Secret."""

from pydantic import Field, SecretStr, field_validator

from services.randomization.allocation import SeedKind
from shared.runtime.settings import TrialSettings


class RandomizationSettings(TrialSettings):
    command_queue: str = "randomization"
    # Hex, at least 32 bytes. Never in code, never in the event log; only its fingerprint is recorded.
    randomization_seed: SecretStr = Field(description="hex-encoded secret seed of the allocation list")
    randomization_seed_kind: SeedKind = SeedKind.TEST

    @field_validator("randomization_seed")
    @classmethod
    def _strong_hex(cls, value: SecretStr) -> SecretStr:
        try:
            seed = bytes.fromhex(value.get_secret_value())
        except ValueError as exc:
            raise ValueError("randomization_seed must be hex") from exc
        if len(seed) < 32:
            raise ValueError("randomization_seed must hold at least 32 bytes (64 hex digits)")
        return value

    def seed(self) -> bytes:
        return bytes.fromhex(self.randomization_seed.get_secret_value())
