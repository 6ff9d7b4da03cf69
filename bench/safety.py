"""SAE alert latency: from the gateway's 201 to the safety team's subscriber, beside a raw NATS round trip."""

import asyncio
import uuid

import httpx
import nats
from nats.aio.msg import Msg

from bench.measure import Summary, now_ms
from devstack.examples import CONSENT, serious_adverse_event
from shared.contracts.alerts import SaeAlertMessage
from shared.runtime.progress import progress


async def raw_round_trip(nats_url: str, n: int) -> Summary:
    """Core NATS request/reply to an echo responder: the floor under any command or alert hop."""
    nc = await nats.connect(nats_url)
    try:
        inbox = f"bench.echo.{uuid.uuid4().hex}"

        async def echo(msg: Msg) -> None:
            await msg.respond(msg.data)

        await nc.subscribe(inbox, cb=echo)
        samples = []
        for _ in range(n):
            start = now_ms()
            await nc.request(inbox, b"x" * 512, timeout=2)
            samples.append(now_ms() - start)
        return Summary.of(samples)
    finally:
        await nc.close()


async def sae_latency(gateway_url: str, nats_url: str, tokens: dict[str, str], n: int) -> dict[str, Summary]:
    """Report n SAEs one after another; time each until its alert reaches a subscriber of trial.alerts.sae.>."""
    nc = await nats.connect(nats_url)
    arrived: dict[str, float] = {}
    waiters: dict[str, asyncio.Event] = {}

    async def on_alert(msg: Msg) -> None:
        alert = SaeAlertMessage.model_validate_json(msg.data)
        arrived[str(alert.ae_id)] = now_ms()
        waiters.setdefault(str(alert.ae_id), asyncio.Event()).set()

    await nc.subscribe("trial.alerts.sae.>", cb=on_alert)
    from_201: list[float] = []
    from_request: list[float] = []
    try:
        async with httpx.AsyncClient(base_url=gateway_url, timeout=15) as client:
            sites = sorted(tokens)
            bar = progress(total=n, desc="SAE latency", unit="SAE")
            for i in range(n):
                bar.update()
                site = sites[i % len(sites)]
                subject = f"{site}-{500 + i // len(sites):03d}"
                auth = {"Authorization": f"Bearer {tokens[site]}"}
                await client.post(
                    f"/v1/sites/{site}/subjects/{subject}/consent",
                    json=CONSENT,
                    headers=auth | {"Idempotency-Key": f"bench-consent-{uuid.uuid4()}"},
                )
                sae = serious_adverse_event(term="Wound dehiscence")
                sent = now_ms()
                response = await client.post(
                    f"/v1/sites/{site}/subjects/{subject}/adverse-events",
                    json=sae,
                    headers=auth | {"Idempotency-Key": f"bench-sae-{uuid.uuid4()}"},
                )
                answered = now_ms()
                response.raise_for_status()
                ae_id = response.json()["ae_id"]
                await asyncio.wait_for(waiters.setdefault(ae_id, asyncio.Event()).wait(), 30)
                from_201.append(max(0.0, arrived[ae_id] - answered))
                from_request.append(arrived[ae_id] - sent)
    finally:
        await nc.close()
    return {"after_201": Summary.of(from_201), "after_request": Summary.of(from_request)}
