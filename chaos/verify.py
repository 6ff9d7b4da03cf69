"""After the load and the crashes: what a regulator's auditor and the safety officer would check.

Every 201 has its facts in the record exactly once and nothing else came of its key; a retry gets
the first answer again; the read models equal a rebuild from the record; every SAE raised one alert,
delivered until acknowledged; and nothing is left pending, in flight or dead-lettered.
"""

import asyncio
import collections
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import nats.errors
import nats.js.errors
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api
from prometheus_client.parser import text_string_to_metric_families

from chaos.load import ISSUER, Answer, Load
from devstack.servers import database_urls
from devstack.system import LocalSystem
from services.gateway.idempotency import command_id, key_scope
from services.reporting.projections import all_projections
from shared.contracts.alerts import ALERTS_PREFIX, ALERTS_STREAM, SAFETY_TEAM_CONSUMER, AlertKind, SaeAlertMessage
from shared.contracts.events import RecordedEvent
from shared.contracts.protocol import load_protocol
from shared.runtime import bus
from shared.runtime.deadletters import dead_letters
from shared.runtime.eventstore import EVENTS_PREFIX, EVENTS_STREAM, EventStore, PullFeed
from shared.runtime.postgres import create_pool
from shared.runtime.projections import read_checkpoint, rebuild
from shared.runtime.settings import DEFAULT_PROTOCOL_FILE


@dataclass
class Findings:
    problems: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def check(self, ok: bool, problem: str) -> None:
        if not ok:
            self.problems.append(problem)


async def verify(
    system: LocalSystem, load: Load, *, ack_wait: float, settle_seconds: float = 60.0, say: Callable[[str], None]
) -> Findings:
    findings = Findings()
    nc = await bus.connect(system.nats_url, name="trial-chaos-verify")
    try:
        js = nc.jetstream()
        say("waiting for every consumer and read model to catch up")
        await settled(nc, js, system, settle_seconds, findings)
        events = (await EventStore(js).load(f"{EVENTS_PREFIX}.>")).events
        findings.counts["events"] = len(events)
        say(f"checking {len(load.answers)} answers against {len(events)} events")
        check_answers(load.answers, events, findings)
        say("sending every recorded request again with its key")
        await check_retries(system.gateway_url, load, findings)
        say("checking SAE alerts: once each, delivered until acknowledged")
        await check_alerts(js, load.answers, ack_wait, findings)
        say("rebuilding the read models from the record and comparing")
        await check_read_models(js, database_urls(system.database_url)["reporting"], findings)
        await check_nothing_left(js, system, findings)
        findings.counts["append_conflicts_retried"] = await conflicts_retried(system, findings)
    finally:
        await nc.close()
    return findings


async def consumers_behind(nc: Client, js: JetStreamContext) -> dict[str, tuple[int, int] | str]:
    """Each durable consumer of the record still at work (pending, unacknowledged), or not answering.

    Asked one by one, by the names the metadata layer holds: in a cluster the consumer list leaves out, without
    an error, every consumer whose leader does not answer in time (the server's `missing`, which nats.py drops),
    and a list that forgets a consumer still redelivering would call the system settled too soon.
    """
    reply = json.loads((await nc.request(f"$JS.API.CONSUMER.NAMES.{EVENTS_STREAM}", b"{}", timeout=5)).data)
    behind: dict[str, tuple[int, int] | str] = {}
    for name in reply.get("consumers") or ():
        try:
            info = await js.consumer_info(EVENTS_STREAM, name, timeout=2)
        except (nats.errors.TimeoutError, nats.js.errors.Error) as exc:
            behind[name] = f"no answer ({type(exc).__name__})"
            continue
        if info.config.durable_name and (info.num_pending or info.num_ack_pending):
            behind[name] = (info.num_pending or 0, info.num_ack_pending or 0)
    return behind


async def settled(nc: Client, js: JetStreamContext, system: LocalSystem, timeout: float, findings: Findings) -> None:
    """Every durable consumer of the record has nothing pending and every projection is at the end, twice in a
    row a second apart (a node back from a partition may answer once for a term that has ended)."""
    deadline = time.monotonic() + timeout
    quiet_since: float | None = None
    pool = await create_pool(database_urls(system.database_url)["reporting"], max_size=1)
    names = [p.name for p in all_projections(load_protocol(DEFAULT_PROTOCOL_FILE))]
    try:
        while True:
            last = (await js.stream_info(EVENTS_STREAM)).state.last_seq
            behind = await consumers_behind(nc, js)
            for name in names:
                position = await read_checkpoint(pool, name)
                if position < last:
                    behind[f"projection {name}"] = (last - position, 0)
            if behind:
                quiet_since = None
            elif quiet_since is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since >= 1.0:
                return
            if time.monotonic() > deadline:
                findings.problems.append(f"stuck after {timeout:.0f}s (pending, unacknowledged): {behind}")
                return
            await asyncio.sleep(0.25)
    finally:
        await pool.close()


def check_answers(answers: list[Answer], events: tuple[RecordedEvent, ...], findings: Findings) -> None:
    by_id = collections.Counter(str(e.envelope.id) for e in events)
    by_command: dict[str, set[str]] = collections.defaultdict(set)
    for e in events:
        if e.envelope.causationid:
            by_command[e.envelope.causationid].add(str(e.envelope.id))
    statuses = collections.Counter(a.status for a in answers)
    findings.counts |= {f"answers_{status}": n for status, n in sorted(statuses.items())}
    findings.counts["requests_retried"] = sum(a.attempts > 1 for a in answers)
    for a in answers:
        findings.check(a.status < 500, f"{a.form} {a.subject}: final answer {a.status}: {a.body}")
        produced = by_command.get(str(command_id(key_scope(ISSUER, a.actor, a.site), a.key)), set())
        if a.recorded:
            ids = set(a.body["event_ids"])
            for event_id in ids:
                findings.check(by_id[event_id] == 1, f"{a.form} {a.subject}: event {event_id} ×{by_id[event_id]}")
            findings.check(
                produced == ids, f"{a.form} {a.subject}: key produced {sorted(produced)}, answered {sorted(ids)}"
            )
        else:
            findings.check(not produced, f"{a.form} {a.subject}: refused ({a.status}) yet recorded {sorted(produced)}")
    findings.check(all(n == 1 for n in by_id.values()), "an event id appears twice in the record")


async def check_retries(gateway_url: str, load: Load, findings: Findings) -> None:
    """The same key again: the first answer (a 201 byte for byte, a refusal by status and rule), no new fact."""
    async with httpx.AsyncClient(base_url=gateway_url, timeout=15) as http:
        tokens = {site: load.token(site) for site in load.sites}
        semaphore = asyncio.Semaphore(8)

        async def again(a: Answer) -> None:
            async with semaphore:
                response = await http.post(
                    a.path,
                    json=a.request,
                    headers={"Authorization": f"Bearer {tokens[a.site]}", "Idempotency-Key": a.key},
                )
            same = (response.status_code, response.json()) == (a.status, a.body)
            if (
                a.status != 201
            ):  # an invalid form is refused before its key is claimed: again, with a new correlation id
                same = (response.status_code, response.json().get("rule")) == (a.status, a.body.get("rule"))
            findings.check(
                same,
                f"{a.form} {a.subject}: retry answered {response.status_code} {response.text[:200]}, first {a.status}",
            )

        await asyncio.gather(*(again(a) for a in load.answers))
    findings.counts["retries_checked"] = len(load.answers)


def _answers_for(answers: list[Answer], subjects: dict[str, str]) -> list[tuple[str, str, int, str | None]]:
    """What the sites were answered about these subjects: what a mismatch is explained by."""
    wanted = set(subjects.values())
    return [(a.subject, a.form, a.status, a.body.get("rule")) for a in answers if a.subject in wanted]


async def check_alerts(js: JetStreamContext, answers: list[Answer], ack_wait: float, findings: Findings) -> None:
    raised = await check_alerts_raised(js, answers, findings)
    # The safety team's own consumer: every alert, again after the ack wait, and no more once acknowledged.
    async with PullFeed(js, ALERTS_STREAM, SAFETY_TEAM_CONSUMER, batch=64) as inbox:
        first = await drain(inbox)
        await asyncio.sleep(ack_wait + 0.5)
        second = await drain(inbox)
        findings.check(set(first) == set(raised), "the safety team's consumer did not deliver every SAE alert")
        findings.check(set(second) == set(first), "unacknowledged SAE alerts were not delivered again")
        for msg in second.values():
            await msg.ack_sync()
        await asyncio.sleep(ack_wait + 0.5)
        findings.check(not await drain(inbox), "acknowledged SAE alerts were delivered again")


async def check_alerts_raised(js: JetStreamContext, answers: list[Answer], findings: Findings) -> set[str]:
    """Every SAE answered 201 raised one alert, and no alert was raised for anything else; the AEs alerted."""
    serious = {a.body["ae_id"] for a in answers if a.recorded and a.body.get("serious")}
    raised: collections.Counter[str] = collections.Counter()
    subjects: dict[str, str] = {}
    sub = await js.subscribe(f"{ALERTS_PREFIX}.>", ordered_consumer=True, deliver_policy=api.DeliverPolicy.ALL)
    try:
        pending = (await js.stream_info(ALERTS_STREAM)).state.messages
        for _ in range(pending):
            alert = SaeAlertMessage.model_validate_json((await sub.next_msg(timeout=5)).data)
            if alert.kind is AlertKind.RAISED:
                raised[str(alert.ae_id)] += 1
                subjects[str(alert.ae_id)] = alert.subject
    finally:
        await sub.unsubscribe()
    findings.counts["sae_reported"] = len(serious)
    findings.check(not serious - set(raised), f"SAEs answered 201 without an alert: {sorted(serious - set(raised))}")
    unanswered = {ae_id: subjects[ae_id] for ae_id in set(raised) - serious}
    findings.check(
        not unanswered, f"alerts no answer accounts for: {unanswered}; answers: {_answers_for(answers, unanswered)}"
    )
    findings.check(
        all(n == 1 for n in raised.values()), f"alerts raised twice: {[k for k, n in raised.items() if n > 1]}"
    )
    return set(raised)


async def drain(inbox: PullFeed) -> dict[str, Msg]:
    """Every alert the consumer delivers now, by AE, left unacknowledged."""
    found: dict[str, Msg] = {}
    while True:
        msgs = await inbox.next()
        if not msgs:
            return found
        for msg in msgs:
            alert = SaeAlertMessage.model_validate_json(msg.data)
            if alert.kind is AlertKind.RAISED:
                found[str(alert.ae_id)] = msg
            else:
                await msg.ack()


async def check_read_models(js: JetStreamContext, reporting_url: str, findings: Findings) -> None:
    pool = await create_pool(reporting_url, max_size=2)
    try:
        results = await rebuild(all_projections(load_protocol(DEFAULT_PROTOCOL_FILE)), js, pool)
    finally:
        await pool.close()
    for name, result in results.items():
        findings.check(
            result.equal and result.live_sequence == result.last_sequence,
            f"read model {name} differs from its rebuild (live at {result.live_sequence} of {result.last_sequence})",
        )
    findings.counts["read_models_compared"] = len(results)


async def conflicts_retried(system: LocalSystem, findings: Findings) -> int:
    """Decisions taken again because the history a replica held was stale (since each one's last start)."""
    assert system.services is not None
    total = 0.0
    async with httpx.AsyncClient(timeout=5) as http:
        for name in system.services.processes:
            try:
                text = (await http.get(system.services.metrics_url(name))).text
            except httpx.TransportError as exc:
                findings.problems.append(f"{name}: no metrics ({type(exc).__name__})")
                continue
            total += sum(
                s.value
                for family in text_string_to_metric_families(text)
                for s in family.samples
                if s.name == "trial_append_conflicts_retried_total"
            )
    return int(total)


async def check_nothing_left(js: JetStreamContext, system: LocalSystem, findings: Findings) -> None:
    letters = await dead_letters(js)
    findings.check(not letters, f"dead letters: {[(d.handler, d.original_sequence, d.reason) for d in letters]}")
    pool = await create_pool(database_urls(system.database_url)["migrate"], max_size=1)
    try:
        in_flight = await pool.fetchval("SELECT count(*) FROM idempotency_keys WHERE state = 'in_flight'")
    finally:
        await pool.close()
    findings.check(in_flight == 0, f"{in_flight} idempotency keys left in flight")
    try:
        system.check_alive()
    except RuntimeError as exc:
        findings.problems.append(str(exc))
