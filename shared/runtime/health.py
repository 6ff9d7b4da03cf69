"""Liveness, readiness and metrics over HTTP on every service's health port, for Kubernetes and Prometheus.

`/healthz`: the event loop answers. `/readyz`: every dependency check passes (NATS connected,
Postgres reachable, ...). `/metrics`: Prometheus text format. Plain asyncio, no framework: it must
keep answering when little else does.
"""

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable

import asyncpg
import structlog
from nats.aio.client import Client

from shared.runtime.metrics import exposition

log = structlog.get_logger(__name__)

Check = Callable[[], Awaitable[bool]]
# Brings gauges read from elsewhere (e.g. open SAE alerts from a read model) up to date before a scrape.
Refresh = Callable[[], Awaitable[None]]


def nats_connected(nc: Client) -> Check:
    async def check() -> bool:
        return bool(nc.is_connected)

    return check


def postgres_reachable(pool: asyncpg.Pool) -> Check:
    async def check() -> bool:
        return bool(await pool.fetchval("SELECT 1") == 1)

    return check


class HealthServer:
    def __init__(
        self, port: int | None, checks: dict[str, Check], *, host: str = "0.0.0.0", refresh: Refresh | None = None
    ) -> None:
        self._port = port
        self._host = host
        self._checks = checks
        self._refresh = refresh
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        """Listen on the port; without one (HEALTH_PORT unset) there is nothing to serve."""
        if self._port is None:
            return
        self._server = await asyncio.start_server(self._serve, self._host, self._port)
        log.info("health_listening", port=self._port)

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def ready(self) -> dict[str, bool]:
        results = {}
        for name, check in self._checks.items():
            try:
                results[name] = bool(await asyncio.wait_for(check(), 2.0))
            except Exception:
                results[name] = False
        return results

    async def _refreshed(self) -> None:
        if self._refresh is None:
            return
        try:
            await asyncio.wait_for(self._refresh(), 2.0)
        except Exception as exc:  # the metrics that need no refresh are still worth serving
            log.warning("metrics_refresh_failed", error=type(exc).__name__)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request_line = await asyncio.wait_for(reader.readline(), 5.0)
            path = request_line.decode("latin-1").split(" ")[1] if request_line.count(b" ") >= 2 else ""
            content_type = "application/json"
            if path == "/healthz":
                status, body = 200, b'{"status":"ok"}'
            elif path == "/readyz":
                results = await self.ready()
                ok = all(results.values())
                status = 200 if ok else 503
                body = json.dumps({"status": "ready" if ok else "not ready", "checks": results}).encode()
            elif path == "/metrics":
                await self._refreshed()
                status, (body, content_type) = 200, exposition()
            else:
                status, body = 404, b'{"status":"not found"}'
            reason = {200: "OK", 404: "Not Found", 503: "Service Unavailable"}[status]
            writer.write(
                f"HTTP/1.1 {status} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {len(body)}\r\n"
                f"Connection: close\r\n\r\n".encode()
                + body
            )
            await writer.drain()
        except (TimeoutError, ConnectionError, IndexError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
