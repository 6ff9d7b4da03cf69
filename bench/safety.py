"""SAE alert latency: from the gateway's 201 to the safety team's subscriber, beside a raw NATS round trip."""

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import httpx
import nats
from nats.aio.msg import Msg
from tqdm import tqdm

from bench.measure import Summary, now_ms
from shared.alerts import SaeAlertMessage

SITES = ("NFH", "GZ2", "SZ3")


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
            for i in tqdm(range(n), desc="SAE latency", unit="SAE"):
                site = SITES[i % len(SITES)]
                subject = f"{site}-{500 + i // len(SITES):03d}"
                auth = {"Authorization": f"Bearer {tokens[site]}"}
                consent = {
                    "consent_form_version": "1.0",
                    "signed_on": datetime.now(UTC).date().isoformat(),
                    "obtained_by": "bench",
                    "signed_by_subject": True,
                }
                await client.post(
                    f"/v1/sites/{site}/subjects/{subject}/consent",
                    json=consent,
                    headers=auth | {"Idempotency-Key": f"bench-consent-{uuid.uuid4()}"},
                )
                sae = {
                    "term": "Wound dehiscence",
                    "onset_date": datetime.now(UTC).date().isoformat(),
                    "site_aware_at": (datetime.now(UTC) - timedelta(minutes=30)).isoformat(),
                    "grade": 3,
                    "seriousness": ["hospitalization_or_prolongation"],
                    "relationship": {"fat_graft": "possible", "hair_transplantation": "possible"},
                    "action_taken": "hospitalized",
                    "outcome": "recovering",
                }
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
