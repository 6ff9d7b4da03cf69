"""`trial <verb>` (or `python -m ops <verb>`): one door for operators, which finds its way.

Against `make run`'s system it reads the credentials the system keeps in its data folder (`access.json`,
written at start; `TRIAL_DATA_DIR`, default `data/`), and runs each verb as the service that owns it, with
that service's own bus user and database role. Elsewhere (a Kubernetes Job with the service's secrets) it
takes the same settings the service itself reads: from the environment (`NATS_URL`, `DATABASE_URL`,
`RANDOMIZATION_SEED`) or from the files of its secrets folder (`SECRETS_DIR`), which it leaves files.

Every failure is one sentence and a non-zero exit within seconds: the bus and the database are tried with
short timeouts before a verb starts, and what a verb needs is checked before it runs.
"""

import argparse
import asyncio
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import nats.errors

from shared.contracts.access import Role
from shared.contracts.amendments import load_amendment
from shared.contracts.protocol import InvalidProtocolDefinition
from shared.runtime import bus
from shared.runtime.settings import PROJECT_ROOT

ACCESS_FILE = "access.json"
CHECK_SECONDS = 3.0


class CannotRun(Exception):
    """What stops a verb, said in one sentence for the operator."""


@dataclass(frozen=True)
class Access:
    """How to reach the system as each service: bus URLs by bus user, database URLs by service."""

    nats_urls: dict[str, str] = field(default_factory=dict)
    database_urls: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    where: str = "the environment"

    def nats_url(self, user: str) -> str:
        url = self.nats_urls.get(user) or self.env.get("NATS_URL") or os.environ.get("NATS_URL") or mounted("nats_url")
        if not url:
            raise CannotRun(f"no bus credential for {user} in {self.where}: set NATS_URL")
        return url

    def database_url(self, service: str) -> str:
        url = (
            self.database_urls.get(service)
            or self.env.get("DATABASE_URL")
            or os.environ.get("DATABASE_URL")
            or mounted("database_url")
        )
        if not url:
            raise CannotRun(f"no database credential for {service} in {self.where}: set DATABASE_URL")
        return url


def data_dir() -> Path:
    return Path(os.environ.get("TRIAL_DATA_DIR", PROJECT_ROOT / "data"))


def write_access(folder: Path, access: dict[str, object]) -> Path:
    """Called by `make run` at start: what `trial` needs to act as each service, readable by the owner only."""
    path = folder / ACCESS_FILE
    folder.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    path.write_text(json.dumps(access, indent=2))
    return path


def mounted(name: str) -> str | None:
    """A setting from the service's secrets folder (SECRETS_DIR: one file per setting, as Kubernetes mounts them)."""
    folder = os.environ.get("SECRETS_DIR")
    path = Path(folder) / name if folder else None
    return path.read_text().strip() if path is not None and path.is_file() else None


def find_access() -> Access:
    """The local system's access file when there is one and no server is named in the environment (or in the
    secrets folder a Kubernetes Job mounts)."""
    path = data_dir() / ACCESS_FILE
    named = os.environ.get("NATS_URL") or mounted("nats_url")
    if named or not path.exists():
        if not named:
            raise CannotRun(f"no system found: {path} does not exist (start one with `make run`, or set NATS_URL)")
        return Access()
    try:
        found = json.loads(path.read_text())
        return Access(found["nats_urls"], found["database_urls"], found.get("env", {}), where=str(path))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise CannotRun(
            f"{path} cannot be read ({type(exc).__name__}); start the system again with `make run`"
        ) from exc


async def _quiet(_error: Exception) -> None:
    """The refusal is said once, by the caller; nats-py would print a traceback for it."""


async def check_bus(url: str, user: str) -> None:
    try:
        nc = await bus.connect(
            url,
            name=f"trial-check-{user}",
            connect_timeout=CHECK_SECONDS,
            allow_reconnect=False,
            max_reconnect_attempts=0,
            error_cb=_quiet,
        )
        await nc.close()
    except (nats.errors.Error, OSError, TimeoutError) as exc:
        reason = "credentials refused" if "authorization" in str(exc).lower() else type(exc).__name__
        raise CannotRun(f"the bus at {_host(url)} does not take {user} ({reason})") from exc


async def check_database(url: str, service: str) -> None:
    try:
        conn = await asyncpg.connect(url, timeout=CHECK_SECONDS)
        await conn.close()
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        raise CannotRun(f"the database does not take {service}'s role ({type(exc).__name__}: {exc})") from exc


def _host(url: str) -> str:
    return url.rsplit("@", 1)[-1]


@dataclass(frozen=True)
class Verb:
    """A verb: the service it runs as, what it needs, and the service command it runs."""

    service: str
    command: Sequence[str]
    needs_bus: bool = True
    needs_database: bool = False
    needs_seed: bool = False


def run(verb: Verb, access: Access, extra: Sequence[str]) -> int:
    env = {**os.environ, **access.env, "LOG_LEVEL": os.environ.get("LOG_LEVEL", "WARNING")}
    # A credential from the secrets folder stays a file: the service reads it there itself, never from its
    # environment.
    if verb.needs_bus:
        url = access.nats_url(verb.service)
        asyncio.run(asyncio.wait_for(check_bus(url, verb.service), CHECK_SECONDS * 2))
        env |= {"NATS_URL": url} if url != mounted("nats_url") else {}
    if verb.needs_database:
        url = access.database_url(verb.service)
        asyncio.run(asyncio.wait_for(check_database(url, verb.service), CHECK_SECONDS * 2))
        env |= {"DATABASE_URL": url} if url != mounted("database_url") else {}
    if verb.needs_seed and not env.get("RANDOMIZATION_SEED"):
        raise CannotRun("the allocation list needs RANDOMIZATION_SEED (make run keeps one in its data folder)")
    return subprocess.run([sys.executable, "-m", *verb.command, *extra], env=env, check=False).returncode


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="trial", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    verbs = top.add_subparsers(dest="verb", required=True, metavar="VERB")
    verbs.add_parser("rebuild", help="rebuild every read model from the record and compare it with the live one")
    export = verbs.add_parser("export", help="write the SDTM and ADaM datasets and define.json to a folder")
    export.add_argument("--out", type=Path, help="the folder (default: exports/ in the data folder)")
    letters = verbs.add_parser("dead-letters", help="list what a handler could not process; --replay hands it back")
    letters.add_argument("--service", choices=["reporting", "safety"], default="reporting")
    letters.add_argument("--replay", action="store_true", help="hand each letter to its handler again")
    missed = verbs.add_parser("missed-visits", help="record every visit whose window closed without a record")
    missed.add_argument("--today", help="one date for every site (default: each site's own today)")
    listing = verbs.add_parser("allocation-list", help="export the concealed allocation list, or verify a copy")
    action = listing.add_mutually_exclusive_group(required=True)
    action.add_argument("--out", type=Path, help="write the list (CSV) to this file (keep it out of the checkout)")
    action.add_argument("--verify", type=Path, metavar="CSV", help="check a copy against the commitment on the record")
    amendment = verbs.add_parser(
        "amendment",
        help="print the body that deploys an amendment (POST /v1/protocol/amendments, as a data manager), read from "
        "its file and the definition file it names, or say what is wrong with them",
    )
    amendment.add_argument("file", type=Path)
    token = verbs.add_parser("token", help="issue a token for the development issuer (make run)")
    token.add_argument("--role", required=True, choices=[r.value for r in Role])
    token.add_argument("--site")
    token.add_argument("--hours", type=float, default=8.0)
    token.add_argument("--name", help="the holder's printed name (shown under an electronic signature)")
    return top


def writable_folder(folder: Path, *, made_if_missing: bool = False) -> Path:
    """A folder that exists (or, `made_if_missing`, whose parent does) and may be written."""
    existing = folder.absolute().parent if made_if_missing and not folder.exists() else folder.absolute()
    if not existing.is_dir():
        raise CannotRun(f"the folder {existing} does not exist: create it first")
    if not os.access(existing, os.W_OK):
        raise CannotRun(f"the folder {existing} cannot be written")
    return folder


def plan(args: argparse.Namespace) -> tuple[Verb, list[str]]:
    match args.verb:
        case "rebuild":
            return Verb("reporting", ["services.reporting", "rebuild"], needs_database=True), []
        case "export":
            # The bus too: once the database is locked, the exports are replayed from the record as of the lock.
            verb = Verb("reporting", ["services.reporting", "export"], needs_database=True)
            out = writable_folder(args.out or data_dir() / "exports", made_if_missing=True)
            return verb, ["--out", str(out)]
        case "dead-letters":
            command = [f"services.{args.service}", "dead-letters"]
            verb = Verb(args.service, command, needs_database=args.service == "reporting")
            return verb, ["--replay"] if args.replay else []
        case "missed-visits":
            return Verb("visits", ["services.visits", "missed-visits"]), ["--today", args.today] if args.today else []
        case "allocation-list" if args.verify:
            if not args.verify.is_file():
                raise CannotRun(f"{args.verify} is not a file: give the CSV that `trial allocation-list --out` wrote")
            return Verb("randomization", ["services.randomization", "verify"], needs_seed=False), [str(args.verify)]
        case "allocation-list":
            writable_folder(args.out.absolute().parent)  # the list's own folder
            return Verb("randomization", ["services.randomization", "export"], needs_seed=True), [
                "--out",
                str(args.out),
            ]
        case _:
            token = ["--role", args.role, "--hours", str(args.hours), *(["--site", args.site] if args.site else [])]
            token += ["--name", args.name] if args.name else []
            return Verb("gateway", ["services.gateway", "token"], needs_bus=False), token


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.verb == "amendment":  # read from files alone: nothing of the system is needed
            print(json.dumps(load_amendment(args.file), ensure_ascii=False))
            return 0
        verb, extra = plan(args)
        return run(verb, find_access(), extra)
    except (CannotRun, InvalidProtocolDefinition) as exc:
        print(f"trial {args.verb}: {exc}", file=sys.stderr)
        return 2
    except TimeoutError:
        print(f"trial {args.verb}: no answer from the system within {CHECK_SECONDS * 2:.0f} s", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
