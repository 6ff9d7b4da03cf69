"""The whole system on this machine, on servers of its own: started, provisioned, and any part killed and restarted.

`make run`, `make bench` and `make chaos` use it; so do the crash tests. Every service connects as
its own least-privilege user and role, as in Kubernetes.
"""

import subprocess
import sys
from pathlib import Path

from devstack.servers import (
    EmbeddedNats,
    EmbeddedPostgres,
    NatsCluster,
    database_urls,
    env_with,
    free_port,
    local_secrets,
)
from devstack.stack import SERVICES, ServiceProcesses
from ops.bus_permissions import PERMISSIONS

SERVERS = ("nats", "postgres")
COMPONENTS = SERVERS + SERVICES


class LocalSystem:
    def __init__(
        self,
        data: Path,
        *,
        gateway_port: int | None = None,
        nats_port: int | None = None,
        second_replicas: tuple[str, ...] = (),
        cluster: int = 1,
        **env: str,
    ) -> None:
        self.data = data
        # A second replica of these services runs beside the first (`screening#2`), as in production.
        self.replicas = tuple(f"{name}#2" for name in second_replicas)
        # One nats-server, or a JetStream cluster (`nats-1`, `nats-2`, …) with every stream replicated on each node.
        self.nats: EmbeddedNats | NatsCluster = (
            NatsCluster(data / "nats", size=cluster, port=nats_port)
            if cluster > 1
            else EmbeddedNats(data / "nats", port=nats_port or free_port())
        )
        self.stream_replicas = cluster
        self.postgres = EmbeddedPostgres(data / "postgres")
        self.gateway_port = gateway_port or free_port()
        self.extra_env = env
        self.services: ServiceProcesses | None = None
        self.database_url = ""

    @property
    def gateway_url(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def nats_url(self) -> str:
        """The administrator's: provisioning and inspection, never a service."""
        return self.nats.url

    def start(self, *, log_dir: Path | None = None) -> None:
        self.nats.start()
        self.database_url = self.postgres.start()
        env = (
            env_with(
                NATS_URL=self.nats.url,
                DATABASE_URL=self.database_url,
                GATEWAY_PORT=str(self.gateway_port),
                STREAM_REPLICAS=str(self.stream_replicas),
            )
            | local_secrets(self.data)
            | self.extra_env
        )
        roles = database_urls(self.database_url)
        # Streams and read-model schema exist before any service takes traffic.
        owner = env | {"DATABASE_URL": roles["migrate"]}
        for step in (["ops.provision"], ["services.reporting", "migrate"], ["services.gateway", "migrate"]):
            subprocess.run([sys.executable, "-m", *step], env=owner, check=True, capture_output=True)
        nats_urls = {user: self.nats.url_for(user) for user in PERMISSIONS}
        self.services = ServiceProcesses(env, log_dir=log_dir, nats_urls=nats_urls, database_urls=roles)
        self.services.start(*SERVICES, *self.replicas)
        self.services.wait_ready(self.gateway_url)

    @property
    def components(self) -> tuple[str, ...]:
        """What can be killed and restarted: the servers (each node of a cluster) and the services."""
        if isinstance(self.nats, NatsCluster):
            return (*self.nats.nodes, "postgres", *SERVICES)
        return COMPONENTS

    def kill(self, component: str) -> None:
        """SIGKILL: no shutdown of any kind, as when a node or container dies."""
        if component == "nats" or component in self._nodes():
            self._nodes().get(component, self.nats).kill()
        elif component == "postgres":
            self.postgres.kill()
        else:
            self._processes().kill(component)

    def restart(self, component: str) -> None:
        if component == "nats" or component in self._nodes():
            self._nodes().get(component, self.nats).start()
        elif component == "postgres":
            self.postgres.restart()
        else:
            self._processes().start(component)

    def _nodes(self) -> dict[str, EmbeddedNats]:
        return self.nats.nodes if isinstance(self.nats, NatsCluster) else {}

    def check_alive(self) -> None:
        """Raises when a service exited on its own."""
        self._processes().check_alive()

    def stop(self) -> None:
        if self.services is not None:
            self.services.stop()
        self.postgres.stop()
        self.nats.stop()

    def _processes(self) -> ServiceProcesses:
        if self.services is None:
            raise RuntimeError("the system has not started")
        return self.services
