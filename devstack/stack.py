"""Each service as its own process (`python -m services.<name>`), as Kubernetes runs them; stopped cleanly."""

import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import IO

from devstack.servers import ends_with_its_starter, free_port, stop_process

# Start order: read models first, then the deciders, the door last. Stopped in reverse.
SERVICES = ("reporting", "screening", "randomization", "safety", "visits", "datamanagement", "gateway")
# Everything that runs: the services, and the web app in front of the gateway (one Deployment each).
APPS = (*SERVICES, "web")


class ServiceProcesses:
    def __init__(
        self,
        env: dict[str, str],
        *,
        log_dir: Path | None = None,
        nats_urls: dict[str, str] | None = None,
        database_urls: dict[str, str] | None = None,
    ) -> None:
        self.env = env
        self.log_dir = log_dir
        # Each service connects as itself, where the servers have a user per service.
        self.nats_urls = nats_urls or {}
        self.database_urls = database_urls or {}
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        # Probes and /metrics of each process, on a port of its own (kept across restarts).
        self.health_ports: dict[str, int] = {}

    def start(self, *names: str, ready_within: float | None = 60.0) -> None:
        """Start services by name (`randomization#2` is a second replica of `randomization`) and wait until
        each is ready: its handlers subscribed, its servers reachable (`ready_within=None`: don't wait)."""
        started = names or SERVICES
        for name in started:
            out: IO[bytes] | None = None
            if self.log_dir is not None:
                self.log_dir.mkdir(parents=True, exist_ok=True)
                out = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - held by the child
            service = name.partition("#")[0]
            env = self.env | ({"NATS_URL": self.nats_urls[service]} if service in self.nats_urls else {})
            env |= {"DATABASE_URL": self.database_urls[service]} if service in self.database_urls else {}
            env |= {"HEALTH_PORT": str(self.health_ports.setdefault(name, free_port()))}
            self.processes[name] = subprocess.Popen(
                [sys.executable, "-m", f"services.{service}"],
                env=env,
                stdout=out,
                stderr=out,
                start_new_session=True,  # Ctrl-C reaches the supervisor only; it stops us in order
                preexec_fn=ends_with_its_starter(),  # ... and if it is killed, we end too
            )
        if ready_within is not None:
            for name in started:
                self.wait_service_ready(name, ready_within)

    def wait_service_ready(self, name: str, timeout: float = 60.0) -> None:
        """Until the service's own `/readyz` answers 200: a restarted service answers commands from then on."""
        self._wait_until_ready(f"http://127.0.0.1:{self.health_ports[name]}/readyz", f"service {name}", timeout)

    def wait_ready(self, gateway_url: str, timeout: float = 60.0) -> None:
        self._wait_until_ready(f"{gateway_url}/readyz", f"gateway at {gateway_url}", timeout)

    def _wait_until_ready(self, url: str, what: str, timeout: float) -> None:
        """Polls `url` until it answers 200; raises at once when one of our services has exited."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                with urllib.request.urlopen(url, timeout=1) as response:
                    if response.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.05)
        raise TimeoutError(f"{what} not ready in {timeout:.0f}s")

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise RuntimeError(f"service {name} exited with {process.returncode}")

    def stop(self, *names: str, timeout: float = 20.0) -> dict[str, int]:
        """SIGTERM in reverse start order, waiting for each to drain; returns exit codes."""
        codes: dict[str, int] = {}
        for name in reversed([n for n in self.processes if not names or n in names]):
            process = self.processes.pop(name)
            stop_process(process, timeout)
            codes[name] = process.returncode
        return codes

    def metrics_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.health_ports[name]}/metrics"

    def kill(self, name: str) -> None:
        process = self.processes.pop(name)
        process.kill()
        process.wait()
