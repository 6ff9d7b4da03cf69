"""`python -m services.safety watch`: the safety team's terminal. Alerts as they arrive, acknowledged from here.

Reads the durable `safety-team` consumer on TRIAL_ALERTS. An alert's message is acknowledged to
JetStream only once its clinical acknowledgement is recorded (through the gateway, as the safety
officer whose token this tool holds), so an alert nobody took on keeps coming back.
"""

import asyncio
import contextlib
import sys
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import httpx
import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from pydantic import ValidationError

from shared.contracts.alerts import ALERTS_STREAM, SAFETY_TEAM_CONSUMER, AlertKind, SaeAlertMessage
from shared.contracts.protocol import ProtocolDefinition
from shared.runtime import bus
from shared.runtime.eventstore import PullFeed


def describe(alert: SaeAlertMessage, *, now: datetime, again: bool, protocol: ProtocolDefinition | None = None) -> str:
    """One line per alert; the site's awareness in the site's own time (and UTC), as the 24 h clock runs."""
    age = now - alert.raised_at
    hours, minutes = divmod(int(age.total_seconds()) // 60, 60)
    flags = [
        f"OVERDUE x{alert.escalation}" if alert.kind is AlertKind.OVERDUE else "SAE",
        *(["LATE REPORT"] if alert.late else []),
        *(["again"] if again else []),
    ]
    site = protocol.site(alert.site) if protocol else None
    aware = alert.site_aware_at.astimezone(UTC)
    if site is not None:
        local = alert.site_aware_at.astimezone(ZoneInfo(site.time_zone))
        aware_at = f"{local:%Y-%m-%d %H:%M} {site.time_zone} ({aware:%H:%M} UTC)"
    else:
        aware_at = f"{aware:%Y-%m-%d %H:%M} UTC"
    return (
        f"[{str(alert.alert_id)[:8]}] {' | '.join(flags)} — {alert.site} {alert.subject}: {alert.term}, "
        f"grade {alert.grade}, {', '.join(alert.seriousness) or 'grade 5'}; site aware "
        f"{aware_at}; alert age {hours}h{minutes:02d}m"
    )


class AlertWatcher:
    def __init__(
        self,
        gateway: httpx.AsyncClient,
        show: Callable[[str], None] = print,
        protocol: ProtocolDefinition | None = None,
    ) -> None:
        self._gateway = gateway
        self._show = show
        self._protocol = protocol
        self.pending: dict[uuid.UUID, list[Msg]] = {}

    async def acknowledged(self, alert_id: uuid.UUID) -> bool:
        response = await self._gateway.get(f"/v1/safety/alerts/{alert_id}")
        return response.status_code == 200 and response.json().get("acknowledged_at") is not None

    async def receive(self, msg: Msg) -> SaeAlertMessage | None:
        try:
            alert = SaeAlertMessage.model_validate_json(msg.data)
        except ValidationError:
            self._show(f"unreadable alert message {msg.metadata.sequence.stream}; left for operations")
            await msg.term()
            return None
        if await self.acknowledged(alert.alert_id):
            await msg.ack()  # taken on already (here or elsewhere): stop delivering it
            return None
        self.pending.setdefault(alert.alert_id, []).append(msg)
        again = msg.metadata.num_delivered > 1
        self._show(describe(alert, now=datetime.now(UTC), again=again, protocol=self._protocol))
        return alert

    async def acknowledge(self, prefix: str) -> bool:
        matches = [a for a in self.pending if str(a).startswith(prefix)]
        if len(matches) != 1:
            self._show(f"'{prefix}' matches {len(matches)} open alerts; give more of the id")
            return False
        alert_id = matches[0]
        response = await self._gateway.post(
            f"/v1/safety/alerts/{alert_id}/acknowledgement", headers={"Idempotency-Key": f"ack-{alert_id}"}
        )
        if response.status_code != 201:
            self._show(f"acknowledgement of {alert_id} failed: {response.status_code} {response.text}")
            return False
        for msg in self.pending.pop(alert_id):
            with contextlib.suppress(nats.errors.Error):
                await msg.ack()
        self._show(f"acknowledged {alert_id}")
        return True


async def consume(js: JetStreamContext, watcher: AlertWatcher, stop: asyncio.Event) -> None:
    async with PullFeed(js, ALERTS_STREAM, SAFETY_TEAM_CONSUMER, batch=10) as feed:
        while not stop.is_set():
            for msg in await feed.next():
                await watcher.receive(msg)


async def watch(nats_url: str, gateway_url: str, token: str, protocol: ProtocolDefinition | None = None) -> None:
    nc = await bus.connect(nats_url, name="trial-safety-watch")
    stop = asyncio.Event()
    async with httpx.AsyncClient(base_url=gateway_url, headers={"Authorization": f"Bearer {token}"}) as gateway:
        watcher = AlertWatcher(gateway, protocol=protocol)
        consumer = asyncio.create_task(consume(nc.jetstream(), watcher, stop))
        print("watching SAE alerts; type 'ack <id>' to acknowledge, 'quit' to leave", flush=True)
        loop = asyncio.get_running_loop()
        while not consumer.done():
            line = (await loop.run_in_executor(None, sys.stdin.readline)).strip()
            if line in ("quit", "exit") or (line == "" and sys.stdin.closed):
                break
            if line.startswith("ack "):
                await watcher.acknowledge(line.split(maxsplit=1)[1])
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer
    await nc.drain()
