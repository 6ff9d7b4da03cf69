"""The gateway vouches for every command it sends: a short-lived Ed25519 signature over the exact message.

A bus credential alone cannot act as anybody. A service handles a command only when it carries an
assertion signed by a key the service trusts, over this very subject and these very bytes, naming a
role that may send the command (`right_of`) and, for a site role, the site the command is about.
Only the gateway holds the private key; services hold public keys, so a leaked service secret cannot
sign either. Keys are `kid:<base64url of the raw 32-byte key>`; several public keys verify while one
is rotated out.
"""

import base64
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.contracts.access import RIGHTS, SITE_ROLES, Role
from shared.contracts.commands import right_of

ASSERTION_HEADER = "Trial-Assertion"
ALGORITHM = "EdDSA"
# Longer than any command waits at the gateway, short enough that a captured message is soon worthless.
LIFETIME = timedelta(seconds=60)


class InvalidKey(ValueError):
    """A configured key is not `kid:<base64url raw Ed25519 key>`."""


class Unattested(Exception):
    """The command carries no valid assertion for this message, or the role it names may not send it."""


@dataclass(frozen=True, slots=True)
class Attested:
    actor: str
    role: Role
    actor_site: str | None
    target_site: str | None


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _raw(text: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except ValueError as exc:
        raise InvalidKey("not base64url") from exc
    if len(raw) != 32:
        raise InvalidKey("an Ed25519 key is 32 bytes")
    return raw


def _entries(setting: str) -> list[tuple[str, bytes]]:
    entries = []
    for entry in setting.split(","):
        kid, _, key = entry.strip().partition(":")
        if not kid or not key:
            raise InvalidKey("each key is 'kid:<base64url key>'")
        entries.append((kid, _raw(key)))
    return entries


def new_key_pair(kid: str) -> tuple[str, str]:
    """(signing key, verifying key) as settings: the first for the gateway, the second for the services."""
    private = Ed25519PrivateKey.from_private_bytes(secrets.token_bytes(32))
    public = private.public_key().public_bytes_raw()
    return f"{kid}:{_b64(private.private_bytes_raw())}", f"{kid}:{_b64(public)}"


def _digest(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


class CommandSigner:
    def __init__(self, setting: str) -> None:
        entries = _entries(setting)
        if len(entries) != 1:
            raise InvalidKey("one signing key at a time")
        [(self._kid, raw)] = entries
        self._key = Ed25519PrivateKey.from_private_bytes(raw)

    def headers(
        self,
        nats_subject: str,
        payload: bytes,
        *,
        actor: str,
        role: Role,
        actor_site: str | None,
        target_site: str | None,
        now: datetime | None = None,
    ) -> dict[str, str]:
        issued = now or datetime.now(UTC)
        claims = {
            "sub": actor,
            "role": str(role),
            "actor_site": actor_site,
            "target_site": target_site,
            "nats_subject": nats_subject,
            "sha256": _digest(payload),
            "iat": issued,
            "exp": issued + LIFETIME,
        }
        return {ASSERTION_HEADER: jwt.encode(claims, self._key, algorithm=ALGORITHM, headers={"kid": self._kid})}


class CommandVerifier:
    def __init__(self, setting: str) -> None:
        self._keys = {kid: Ed25519PublicKey.from_public_bytes(raw) for kid, raw in _entries(setting)}

    def verify(self, nats_subject: str, payload: bytes, headers: Mapping[str, str] | None) -> Attested:
        assertion = (headers or {}).get(ASSERTION_HEADER)
        if not assertion:
            raise Unattested("no assertion")
        try:
            kid = jwt.get_unverified_header(assertion).get("kid")
            key = self._keys.get(kid) if isinstance(kid, str) else None
            if key is None:
                raise Unattested("signed with an unknown key")
            claims = jwt.decode(assertion, key, algorithms=[ALGORITHM], options={"require": ["exp", "iat", "sub"]})
            role = Role(claims["role"])
        except (jwt.InvalidTokenError, KeyError, ValueError) as exc:
            raise Unattested(f"invalid assertion ({type(exc).__name__})") from exc
        if claims.get("nats_subject") != nats_subject or claims.get("sha256") != _digest(payload):
            raise Unattested("the assertion is for another message")
        try:
            right = right_of(nats_subject)
        except KeyError:
            raise Unattested(f"no command is sent on {nats_subject}") from None
        if right not in RIGHTS[role]:
            raise Unattested(f"role {role} may not send {nats_subject}")
        if role in SITE_ROLES and (not claims.get("actor_site") or claims["actor_site"] != claims.get("target_site")):
            raise Unattested("a site role acts on its own site only")
        return Attested(str(claims["sub"]), role, claims.get("actor_site"), claims.get("target_site"))
