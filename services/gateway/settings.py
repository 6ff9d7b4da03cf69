"""Gateway settings, from the environment (secrets also as files under SECRETS_DIR)."""

import collections
import math
import string
import zlib
from typing import Self

from pydantic import Field, SecretStr, field_validator, model_validator

from shared.runtime.settings import TrialSettings

# Known to everyone who has read this repository (the default of old, the dev overlay's): refused unless
# DEVELOPMENT_MODE is set.
DEV_SIGNING_KEYS = "dev:insecure-development-key-change-me-0123456789"
PUBLISHED_KEYS = frozenset({DEV_SIGNING_KEYS.split(":", 1)[1], "dev-only-signing-key-never-use-in-production-0123"})
# Tokens live at most this long, whoever signed them (the token command issues up to the same).
MAX_TOKEN_HOURS = 24 * 31


# Alphabets a generated key is written in, smallest first, with the bits each character can carry.
_ALPHABETS = (
    (frozenset("0123456789abcdef"), 4.0),
    (frozenset("0123456789ABCDEF"), 4.0),
    (frozenset(string.ascii_letters + string.digits + "-_="), 6.0),
    (frozenset(string.ascii_letters + string.digits + "+/="), 6.0),
)
KEY_BITS = 256
# A random key's characters are spread over its alphabet and do not compress: 256 random bits written in base64url
# measure above 180 bits by their own distribution (in 20,000 draws); repeated characters or words measure far less.
_MEASURED_BITS = 128
_ZLIB_FRAME_BYTES = 6


def key_weakness(secret: str) -> str | None:
    """Why a token key is too weak to sign with (too few bits for its alphabet, or characters repeated in a
    pattern no random generator makes), or None."""
    per_character = next((bits for alphabet, bits in _ALPHABETS if set(secret) <= alphabet), math.log2(94))
    if len(secret) * per_character < KEY_BITS:
        return f"too short for {KEY_BITS} bits"
    counts = collections.Counter(secret).values()
    spread = -sum(n * math.log2(n / len(secret)) for n in counts)  # repeated characters carry little
    compressed = 8 * (len(zlib.compress(secret.encode(), 9)) - _ZLIB_FRAME_BYTES)  # ... and a repeated word too
    if min(spread, compressed) < _MEASURED_BITS:
        return "not random (its characters repeat)"
    return None


class UnsafeConfiguration(Exception):
    """The gateway would accept tokens it should not, or could not vouch for commands: it does not start."""


class GatewaySettings(TrialSettings):
    gateway_host: str = "127.0.0.1"
    gateway_port: int = Field(8000, ge=1, le=65535)
    # "kid:secret,kid2:secret2": the first signs new tokens, all verify (two at once while rotating).
    token_signing_keys: SecretStr | None = None
    token_issuer: str = "trial-gateway"
    amendment_check_seconds: float = Field(
        60.0, gt=0, description="how often the gateway looks for an amendment deployed (its forms get their routes)"
    )
    token_max_hours: float = Field(MAX_TOKEN_HOURS, gt=0, le=MAX_TOKEN_HOURS)
    # The identity provider (production): its issuer URL and the audience its access tokens name for the gateway;
    # the keys come from its discovery document unless OIDC_JWKS_URL says where. Role and site come from groups.
    oidc_issuer: str | None = None
    oidc_audience: str | None = None
    oidc_jwks_url: str | None = None
    oidc_keys_cache_seconds: float = Field(300.0, gt=0)
    oidc_groups_claim: str = "groups"
    oidc_group_prefix: str = "trial"
    oidc_name_claim: str = "name"
    # "kid:<base64url raw Ed25519 private key>": signs every command (shared.contracts.attestation); never on a service.
    command_signing_key: SecretStr | None = None
    # Accepts the development token key published in this repository; never in production.
    development_mode: bool = False
    command_timeout_seconds: float = Field(5.0, gt=0)
    max_body_bytes: int = Field(64 * 1024, gt=0)
    idempotency_lease_seconds: float = Field(30.0, gt=0)
    pool_size: int = 10

    @field_validator("token_signing_keys")
    @classmethod
    def _keys_are_well_formed(cls, value: SecretStr | None) -> SecretStr | None:
        for entry in value.get_secret_value().split(",") if value is not None else ():
            kid, _, secret = entry.partition(":")
            if not kid or not secret:
                raise ValueError("each key is 'kid:secret'")
            if secret not in PUBLISHED_KEYS and (weakness := key_weakness(secret)):
                raise ValueError(
                    f"key {kid!r} is {weakness}: use 256 random bits, e.g. the output of "
                    "python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
                )
        return value

    @model_validator(mode="after")
    def _a_provider_names_its_audience(self) -> Self:
        if self.oidc_issuer is not None and not self.oidc_audience:
            raise ValueError("OIDC_AUDIENCE: the audience the provider's tokens name for this gateway")
        return self

    def signing_keys(self) -> dict[str, str]:
        """The development issuer's token keys: none when the identity provider is the only issuer; refuses to go
        on with no issuer at all, or with the development key outside development mode."""
        if self.token_signing_keys is None:
            if self.oidc_issuer is not None and not self.development_mode:
                return {}
            if not self.development_mode:
                raise UnsafeConfiguration(
                    "no token issuer: set OIDC_ISSUER and OIDC_AUDIENCE (or TOKEN_SIGNING_KEYS, or DEVELOPMENT_MODE "
                    "for the known development key)"
                )
            return key_ring(DEV_SIGNING_KEYS)
        keys = key_ring(self.token_signing_keys.get_secret_value())
        if not self.development_mode and PUBLISHED_KEYS & set(keys.values()):
            raise UnsafeConfiguration("TOKEN_SIGNING_KEYS holds a development key published with the code")
        return keys

    def serving_command_signing_key(self) -> str:
        if self.command_signing_key is None:
            raise UnsafeConfiguration("COMMAND_SIGNING_KEY is not set: the gateway cannot vouch for commands")
        return self.command_signing_key.get_secret_value()


def key_ring(keys: str) -> dict[str, str]:
    """The development issuer's keys by id, from `kid:secret[,kid:secret…]` (TOKEN_SIGNING_KEYS)."""
    return dict(e.split(":", 1) for e in keys.split(","))
