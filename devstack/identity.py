"""A real OpenID Connect provider on this machine (node-oidc-provider, `devstack/identity/`), and a sign-in
through it as a browser would do it: authorization code with PKCE.

The tests and `make run` start it beside NATS and PostgreSQL; the gateway verifies its access tokens as it
would a hospital's provider's. Its keys are made once and kept with the data; `rotate_keys` publishes a new
signing key (the old one kept or dropped) and restarts it, as a provider's key rotation does.
"""

import argparse
import asyncio
import base64
import json
import secrets
import shutil
import subprocess
import sys
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
from cryptography.hazmat.primitives.asymmetric import rsa

from devstack.servers import ends_with_its_starter, free_port, stop_process, wait_until
from services.web.signin import challenge
from shared.contracts.access import SITE_ROLES, Role
from shared.contracts.protocol import ProtocolDefinition

if TYPE_CHECKING:
    from playwright.async_api import Page

PROVIDER_DIR = Path(__file__).parent / "identity"
# The resource indicator of the gateway: the audience of every access token it accepts.
GATEWAY_AUDIENCE = "urn:nct06646146:gateway"
CLIENT_ID = "trial-web"
REDIRECT_URI = "http://127.0.0.1/signed-in"
GROUP_PREFIX = "trial"


@dataclass(frozen=True)
class Account:
    login: str
    name: str
    groups: tuple[str, ...]


def trial_group(role: Role, site: str | None = None) -> str:
    """The provider group that gives a trial role (at one site, for site roles): `trial:NFH:investigator`."""
    return ":".join(part for part in (GROUP_PREFIX, site, str(role)) if part)


def development_accounts(protocol: ProtocolDefinition) -> tuple[Account, ...]:
    """One person per site role at each site (`investigator.nfh`) and one per trial-wide role (`monitor`)."""

    def login(role: Role) -> str:
        return role.replace("_", "-")

    def name(role: Role) -> str:
        return role.replace("_", " ").title()

    at_sites = (
        Account(f"{login(role)}.{site.code.lower()}", f"{name(role)} {site.code}", (trial_group(role, site.code),))
        for site in protocol.sites
        for role in sorted(SITE_ROLES)
    )
    trial_wide = (Account(login(role), name(role), (trial_group(role),)) for role in Role if role not in SITE_ROLES)
    return (*at_sites, *trial_wide)


def new_signing_key() -> dict[str, str]:
    """An RSA private key as a JWK, with a key id: what the provider signs access tokens with."""
    numbers = rsa.generate_private_key(public_exponent=65537, key_size=2048).private_numbers()
    public = numbers.public_numbers

    def b64(n: int) -> str:
        return base64.urlsafe_b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).rstrip(b"=").decode()

    fields = {"n": public.n, "e": public.e, "d": numbers.d, "p": numbers.p, "q": numbers.q}
    fields |= {"dp": numbers.dmp1, "dq": numbers.dmq1, "qi": numbers.iqmp}
    return {"kty": "RSA", "kid": secrets.token_hex(8), "alg": "RS256", "use": "sig"} | {
        k: b64(v) for k, v in fields.items()
    }


class IdentityProvider:
    """node-oidc-provider under `data_dir`, on loopback: the issuer is its own URL."""

    def __init__(
        self,
        data_dir: Path,
        accounts: tuple[Account, ...],
        *,
        port: int | None = None,
        redirect_uris: tuple[str, ...] = (REDIRECT_URI,),
        access_token_minutes: int = 60,
        resources: tuple[str, ...] = (GATEWAY_AUDIENCE,),
    ) -> None:
        self.data_dir = data_dir
        self.accounts = accounts
        self.port = port or free_port()
        self.redirect_uris = redirect_uris
        self.access_token_minutes = access_token_minutes
        self.resources = resources
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _keys(self) -> list[dict[str, str]]:
        path = self.data_dir / "signing-keys.json"
        if not path.exists():
            self._write_keys([new_signing_key()])
        keys: list[dict[str, str]] = json.loads(path.read_text())
        return keys

    def _write_keys(self, keys: list[dict[str, str]]) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        path = self.data_dir / "signing-keys.json"
        path.write_text(json.dumps(keys))
        path.chmod(0o600)

    def config(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "port": self.port,
            "jwks": {"keys": self._keys()},
            "cookie_keys": [secrets.token_urlsafe(32)],
            "clients": [
                {
                    "client_id": CLIENT_ID,
                    "token_endpoint_auth_method": "none",  # a public client: PKCE instead of a secret
                    "redirect_uris": list(self.redirect_uris),
                    # Back to the app once the provider has ended its session too (RP-initiated logout).
                    "post_logout_redirect_uris": [
                        uri.removesuffix("/signin/callback") + "/signed-out"
                        for uri in self.redirect_uris
                        if uri.endswith("/signin/callback")
                    ],
                    "grant_types": ["authorization_code", "refresh_token"],
                    "response_types": ["code"],
                }
            ],
            "resources": {resource: {"scope": "trial"} for resource in self.resources},
            "default_resource": self.resources[0],
            "access_token_ttl": self.access_token_minutes * 60,
            "accounts": {a.login: {"name": a.name, "groups": list(a.groups)} for a in self.accounts},
        }

    def start(self, timeout: float = 30.0) -> str:
        node = shutil.which("node")
        if node is None or not (PROVIDER_DIR / "node_modules" / "oidc-provider").exists():
            raise RuntimeError("the identity provider needs node and its package: run `make setup`")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        config = self.data_dir / "provider.json"
        config.write_text(json.dumps(self.config()))
        config.chmod(0o600)
        log = open(self.data_dir / "provider.log", "ab")  # noqa: SIM115 - the provider writes to it until stopped
        self.process = subprocess.Popen(
            [node, str(PROVIDER_DIR / "provider.mjs"), str(config)],
            stdout=log,
            stderr=log,
            start_new_session=True,
            preexec_fn=ends_with_its_starter(),
        )
        wait_until(self._ready, timeout, "the identity provider")
        return self.issuer

    def _ready(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"the identity provider exited; see {self.data_dir / 'provider.log'}")
        try:
            with urllib.request.urlopen(f"{self.issuer}/.well-known/openid-configuration", timeout=1):
                return True
        except OSError:
            return False

    def stop(self, timeout: float = 10.0) -> None:
        stop_process(self.process, timeout)

    def rotate_keys(self, *, keep_previous: bool) -> str:
        """A new signing key first in the published set (the previous one kept for tokens already out, or
        dropped); restarts the provider. Returns the new key's id."""
        key = new_signing_key()
        self._write_keys([key, *(self._keys()[:1] if keep_previous else [])])
        self.stop()
        self.start()
        return key["kid"]


def web_callback(web_port: int) -> str:
    """Where the provider sends a browser back to the web app after signing in."""
    return f"http://127.0.0.1:{web_port}/signin/callback"


def web_app_env(*, web_port: int, gateway_url: str) -> dict[str, str]:
    """What the web app needs beside the others' settings (the provider is the gateway's `OIDC_ISSUER`; its session
    key comes with the local secrets): where it is, and the gateway."""
    return {"WEB_PORT": str(web_port), "PUBLIC_URL": f"http://127.0.0.1:{web_port}", "GATEWAY_URL": gateway_url}


@dataclass(frozen=True)
class SignedIn:
    access_token: str
    refresh_token: str | None
    id_token: str | None


async def sign_in(
    issuer: str,
    login: str,
    *,
    http: httpx.AsyncClient | None = None,
    resource: str = GATEWAY_AUDIENCE,
    max_age: int | None = None,
) -> SignedIn:
    """Authorization code with PKCE through the provider's own pages, as a browser would. `http` keeps the
    provider's session cookie: a second sign-in with it is silent (the first `auth_time` kept) unless `max_age`
    asks for a fresh one."""
    own = http is None
    client = http or httpx.AsyncClient(timeout=10)
    try:
        verifier = secrets.token_urlsafe(48)
        state = secrets.token_urlsafe(16)
        query = {
            "client_id": CLIENT_ID,
            "response_type": "code",
            "redirect_uri": REDIRECT_URI,
            "scope": "openid profile groups",
            "resource": resource,
            "code_challenge": challenge(verifier),
            "code_challenge_method": "S256",
            "state": state,
        } | ({"max_age": str(max_age)} if max_age is not None else {})
        response = await client.get(f"{issuer}/auth", params=query)
        for _ in range(10):
            location = response.headers.get("location")
            if response.status_code not in (302, 303) or location is None:
                raise RuntimeError(f"sign-in stopped at {response.status_code}: {response.text[:200]}")
            target = urllib.parse.urljoin(str(response.url), location)
            if target.startswith(REDIRECT_URI):
                answer = urllib.parse.parse_qs(urllib.parse.urlsplit(target).query)
                if answer.get("state") != [state] or "code" not in answer:
                    raise RuntimeError(f"the provider answered {answer}")
                return await _tokens(client, issuer, answer["code"][0], verifier)
            response = await client.get(target)
            if response.status_code == 200 and "/interaction/" in target:
                # The provider's development sign-in page: any password.
                response = await client.post(
                    target, data={"prompt": "login", "login": login, "password": "development"}
                )
        raise RuntimeError("sign-in went round in circles")
    finally:
        if own:
            await client.aclose()


async def _tokens(client: httpx.AsyncClient, issuer: str, code: str, verifier: str) -> SignedIn:
    response = await client.post(
        f"{issuer}/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": CLIENT_ID,
            "code_verifier": verifier,
        },
    )
    response.raise_for_status()
    tokens = response.json()
    return SignedIn(tokens["access_token"], tokens.get("refresh_token"), tokens.get("id_token"))


def main(argv: list[str] | None = None) -> int:
    """`python -m devstack.identity sign-in LOGIN`: an access token for the gateway from the provider `make run`
    started, as the site app would get it."""
    parser = argparse.ArgumentParser(prog="python -m devstack.identity")
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("sign-in", help="sign in at the development provider; print the access token")
    command.add_argument("login", help="an account of the provider, e.g. investigator.nfh")
    command.add_argument("--issuer", default="http://127.0.0.1:8100")
    command.add_argument("--max-age", type=int, help="sign in again unless the last sign-in is this recent")
    args = parser.parse_args(argv)
    try:
        signed_in = asyncio.run(sign_in(args.issuer, args.login, max_age=args.max_age))
    except (httpx.HTTPError, RuntimeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(signed_in.access_token)
    return 0


if __name__ == "__main__":
    sys.exit(main())


async def sign_in_at_provider(page: "Page", login: str, password: str = "any password will do here") -> None:
    """The development provider's sign-in page filled as a person would (any password is taken): a browser test's
    or a benchmark's first sign-in, or the fresh one before a signature."""
    await page.wait_for_selector("input[name=login]")
    await page.fill("input[name=login]", login)
    await page.fill("input[name=password]", password)
    await page.click("button[type=submit]")
