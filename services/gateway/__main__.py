"""`python -m services.gateway [serve]` runs the gateway; `... token --role R [--site S] [--hours N]` prints a token."""

import argparse
import asyncio
import signal
import sys

import uvicorn

from services.gateway.app import create_app, migrate
from services.gateway.auth import Role, TokenRequestInvalid, issue_token
from services.gateway.settings import GatewaySettings, UnsafeConfiguration
from shared.contracts.attestation import InvalidKey
from shared.runtime.logging import configure_logging
from shared.runtime.settings import load_settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.gateway")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="run the HTTP gateway (default)")
    commands.add_parser("migrate", help="apply the gateway's database migrations and exit")
    token = commands.add_parser("token", help="print a signed token for a role")
    token.add_argument("--role", required=True, choices=[r.value for r in Role])
    token.add_argument("--site", help="site code, for site roles")
    token.add_argument("--hours", type=float, default=8.0)
    token.add_argument("--actor", help="staff code the token stands for (default: generated)")
    token.add_argument("--name", help="the holder's printed name (shown under an electronic signature)")
    args = parser.parse_args(argv)
    settings = load_settings(GatewaySettings)
    if args.command == "token":
        try:
            if args.hours > settings.token_max_hours:
                raise TokenRequestInvalid(f"hours must be at most {settings.token_max_hours:g}")
            print(
                issue_token(
                    settings.signing_keys(),
                    issuer=settings.token_issuer,
                    role=Role(args.role),
                    site=args.site,
                    hours=args.hours,
                    actor=args.actor,
                    name=args.name,
                )
            )
        except (TokenRequestInvalid, UnsafeConfiguration) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0
    configure_logging(settings.log_level, settings.log_format, service="gateway")
    if args.command == "migrate":
        asyncio.run(migrate(settings))
        return 0
    # uvicorn drains, runs the lifespan shutdown, then re-raises SIGTERM/SIGINT to the previous handler:
    # by then every request is answered, so that handler reports a clean exit.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: sys.exit(0))
    try:
        app = create_app(settings)
    except (UnsafeConfiguration, InvalidKey) as exc:
        print(f"gateway: refusing to start: {exc}", file=sys.stderr)
        return 2
    uvicorn.run(
        app,
        host=settings.gateway_host,
        port=settings.gateway_port,
        loop="uvloop",
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=15,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
