"""Gateway settings, from the environment."""

from pydantic import Field, SecretStr, field_validator

from shared.settings import TrialSettings

DEV_SIGNING_KEYS = "dev:insecure-development-key-change-me-0123456789"


class GatewaySettings(TrialSettings):
    gateway_host: str = "127.0.0.1"
    gateway_port: int = Field(8000, ge=1, le=65535)
    # "kid:secret,kid2:secret2": the first signs new tokens, all verify (two at once while rotating).
    token_signing_keys: SecretStr = SecretStr(DEV_SIGNING_KEYS)
    token_issuer: str = "trial-gateway"
    command_timeout_seconds: float = Field(5.0, gt=0)
    max_body_bytes: int = Field(64 * 1024, gt=0)
    idempotency_lease_seconds: float = Field(30.0, gt=0)
    pool_size: int = 10

    @field_validator("token_signing_keys")
    @classmethod
    def _keys_are_well_formed(cls, value: SecretStr) -> SecretStr:
        for entry in value.get_secret_value().split(","):
            kid, _, secret = entry.partition(":")
            if not kid or len(secret) < 32:
                raise ValueError("each key is 'kid:secret' with a secret of at least 32 characters")
        return value

    def signing_keys(self) -> dict[str, str]:
        return dict(e.split(":", 1) for e in self.token_signing_keys.get_secret_value().split(","))
