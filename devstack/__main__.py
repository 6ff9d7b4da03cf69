"""`make run`: the whole system on this machine. Embedded servers unless NATS_URL / DATABASE_URL are set."""

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

from devstack.examples import CONSENT
from devstack.identity import (
    GATEWAY_AUDIENCE,
    REDIRECT_URI,
    IdentityProvider,
    development_accounts,
    web_app_env,
    web_callback,
)
from devstack.servers import EmbeddedNats, EmbeddedPostgres, NatsCluster, database_urls, env_with, local_secrets
from devstack.stack import ServiceProcesses
from ops.bus_permissions import PERMISSIONS
from ops.cli import write_access
from services.gateway.auth import SITE_ROLES, Role, issue_token
from services.gateway.settings import GatewaySettings
from shared.contracts.protocol import load_protocol
from shared.runtime.settings import DEFAULT_PROTOCOL_FILE, PROJECT_ROOT


def main() -> int:
    data = Path(os.environ.get("TRIAL_DATA_DIR", PROJECT_ROOT / "data"))
    port = os.environ.get("GATEWAY_PORT", "8000")
    nats = postgres = None
    identity: IdentityProvider | None = None
    stopping = False

    def on_signal(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    # Ctrl-C, a stop, or the terminal closed (SIGHUP): everything is stopped in order. Should this process be killed
    # outright, every child ends with it all the same (`ends_with_its_starter`).
    for ending in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(ending, on_signal)
    services: ServiceProcesses | None = None
    try:
        nats_url = os.environ.get("NATS_URL")
        nats_urls: dict[str, str] = {}
        cluster = int(os.environ.get("CLUSTER") or 1)
        if not nats_url:
            nats_port = int(os.environ.get("NATS_PORT", "4222"))
            nats = (
                NatsCluster(data / "nats-cluster", size=cluster, port=nats_port)
                if cluster > 1
                else EmbeddedNats(data / "nats", port=nats_port)
            )
            nats_url = nats.start()
            nats_urls = {user: nats.url_for(user) for user in PERMISSIONS}
            servers = f"a {cluster}-node JetStream cluster" if cluster > 1 else "nats-server"
            say(f"{servers} (fsync before ack, a user per service) from port {nats.port}, data in {nats.data_dir}")
        database_url = os.environ.get("DATABASE_URL")
        roles: dict[str, str] = {}
        if not database_url:
            postgres = EmbeddedPostgres(data / "postgres")
            database_url = postgres.start()
            roles = database_urls(database_url)
            say(f"PostgreSQL at {database_url}, data in {postgres.data_dir}")
        protocol = load_protocol(Path(os.environ.get("PROTOCOL_FILE") or DEFAULT_PROTOCOL_FILE))
        web_port = int(os.environ.get("WEB_PORT", "8200"))
        identity = IdentityProvider(
            data / "identity",
            development_accounts(protocol),
            port=int(os.environ.get("IDENTITY_PORT", "8100")),
            redirect_uris=(REDIRECT_URI, web_callback(web_port)),
        )
        say(f"OpenID Connect provider (development sign-in) at {identity.start()}")
        env = env_with(
            **local_secrets(data),
            OIDC_ISSUER=identity.issuer,
            OIDC_AUDIENCE=GATEWAY_AUDIENCE,
            **web_app_env(web_port=web_port, gateway_url=f"http://127.0.0.1:{port}"),
            NATS_URL=nats_url,
            DATABASE_URL=database_url,
            GATEWAY_PORT=port,
            LOG_FORMAT="console",
            RANDOMIZATION_SEED=os.environ.get("RANDOMIZATION_SEED") or local_test_seed(data),
            STREAM_REPLICAS=str(cluster),
        )
        # What `trial <verb>` needs to act as each service against this system, kept with its data.
        write_access(
            data,
            {
                "nats_urls": nats_urls,
                "database_urls": roles,
                "env": {k: env[k] for k in ("NATS_URL", "DATABASE_URL", "SECRETS_DIR", "RANDOMIZATION_SEED")},
            },
        )
        # Streams and read-model schema exist before any service takes traffic.
        subprocess.run([sys.executable, "-m", "ops.provision"], env=env, check=True)
        migrate = env | {"DATABASE_URL": roles.get("migrate", database_url)}
        subprocess.run([sys.executable, "-m", "services.reporting", "migrate"], env=migrate, check=True)
        subprocess.run([sys.executable, "-m", "services.gateway", "migrate"], env=migrate, check=True)
        services = ServiceProcesses(env, nats_urls=nats_urls, database_urls=roles)
        services.start()
        gateway = f"http://127.0.0.1:{port}"
        services.wait_ready(gateway)
        services.start("web")
        print_welcome(gateway, nats_urls.get("safety-team"), services.health_ports, env)
        print_sign_in(identity, f"http://127.0.0.1:{web_port}")
        while not stopping:
            services.check_alive()
            time.sleep(0.2)
    finally:
        say("\nstopping…")
        if services is not None:
            services.stop()
        if postgres is not None:
            postgres.stop()
        if nats is not None:
            nats.stop()
        if identity is not None:
            identity.stop()
        say("stopped; data kept for the next start")
    return 0


def say(text: str) -> None:
    """Lines on the terminal, if there still is one. Closed (it refuses writes), everything goes on regardless, and
    whatever is said from then on goes nowhere: the terminal can close at any moment, mid-line included."""
    try:
        print(text, flush=True)
    except OSError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def local_test_seed(data: Path) -> str:
    """A test-kind seed made once for this checkout and kept with its data, so the list stays the same."""
    path = data / "randomization-test-seed"
    if not path.exists():
        data.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_hex(32))
        path.chmod(0o600)
    return path.read_text().strip()


def print_welcome(gateway: str, safety_team_url: str | None, health_ports: dict[str, int], env: dict[str, str]) -> None:
    settings = GatewaySettings(_secrets_dir=env["SECRETS_DIR"])
    protocol = load_protocol(settings.protocol_file or DEFAULT_PROTOCOL_FILE)
    site = protocol.sites[0].code
    lines = [f"\nGateway: {gateway}  (OpenAPI: {gateway}/openapi.json)\n\nDemo tokens (8 hours):"]
    for role in Role:
        token = issue_token(
            settings.signing_keys(),
            issuer=settings.token_issuer,
            role=role,
            site=site if role in SITE_ROLES else None,
            hours=8,
            actor=f"demo-{role.value}",
        )
        lines.append(f"  {role.value}{f' ({site})' if role in SITE_ROLES else ''}:\n    {token}")
    form = json.dumps(CONSENT | {"signed_on": date.today().isoformat()})
    lines.append(
        "\nTry (TOKEN=the site_coordinator token above):\n"
        f"  curl -s -X POST {gateway}/v1/sites/{site}/subjects/{site}-001/consent \\\n"
        '    -H "Authorization: Bearer $TOKEN" -H "Idempotency-Key: demo-consent-001" \\\n'
        '    -H "Content-Type: application/json" \\\n'
        f"    -d '{form}'\n"
        f'  curl -s {gateway}/v1/sites/{site}/subjects/{site}-001 -H "Authorization: Bearer $TOKEN"\n'
        + (
            f"\nSafety team's terminal:\n  NATS_URL='{safety_team_url}' GATEWAY_URL={gateway} \\\n"
            "    SAFETY_TOKEN=<the safety_officer token> .venv/bin/python -m services.safety watch\n"
            if safety_team_url
            else ""
        )
        + "\nMetrics (Prometheus; /healthz and /readyz beside them):\n"
        + "".join(f"  {name:<14} http://127.0.0.1:{port}/metrics\n" for name, port in health_ports.items())
        + "\nCtrl-C stops everything."
    )
    say("\n".join(lines))


def print_sign_in(identity: IdentityProvider, web: str) -> None:
    logins = ", ".join(a.login for a in identity.accounts)
    say(
        f"\nWeb app: {web}  (sign in as one of the accounts below)\n"
        f"\nOr as a person signed in at the identity provider ({identity.issuer}; any password), e.g.:\n"
        "  TOKEN=$(.venv/bin/python -m devstack.identity sign-in site-coordinator.nfh)\n"
        f"  accounts: {logins}"
    )


if __name__ == "__main__":
    sys.exit(main())
