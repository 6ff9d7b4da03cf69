"""What every command-handling service shares: its broker, its event store, and one way to answer a command."""

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar

import nats.errors
import structlog
from faststream import BaseMiddleware, StreamMessage
from faststream.nats import NatsBroker, NatsUserPassword
from faststream.nats.prometheus import NatsPrometheusMiddleware
from prometheus_client import REGISTRY

from shared.contracts.amendments import ProtocolVersions
from shared.contracts.attestation import CommandVerifier, InvalidKey, Unattested
from shared.contracts.casebook import refuse_if_locked
from shared.contracts.commands import ActorContext, Command, CommandContext, CommandReply, Rejection
from shared.contracts.events import (
    DatabaseLocked,
    DomainEvent,
    EventMetadata,
    ProtocolAmendmentDeployed,
    RecordedEvent,
)
from shared.contracts.protocol import ProtocolDefinition, load_protocol
from shared.contracts.rules import RuleViolation, UnknownSubject
from shared.runtime import bus
from shared.runtime.decisions import Clock, Decide, TooMuchContention, decide_and_append, utc_now
from shared.runtime.eventstore import (
    EventStore,
    History,
    event_subject,
    streams_ready,
    subject_history,
    trial_history,
)
from shared.runtime.health import HealthServer, nats_connected
from shared.runtime.logging import error_summary
from shared.runtime.metrics import COMMANDS
from shared.runtime.projections import TRANSIENT
from shared.runtime.reactions import Reaction, ReactionRunner
from shared.runtime.settings import TrialSettings
from shared.runtime.versions import HeldVersions

log = structlog.get_logger(__name__)

# What a command answers beyond the event ids, read from the events it recorded.
ResultOf = Callable[[tuple[RecordedEvent, ...]], dict[str, object]]
# A service's state of one subject, as its domain module folds it from the subject's history.
S = TypeVar("S")


def attested_commands(verifier: CommandVerifier | None) -> type[BaseMiddleware]:
    """Every command handler runs only for a command the gateway vouched for; anything else gets an empty
    reply at once (the gateway answers 503) and is logged and counted, without its content. Without a
    verifying key nothing is vouched for."""

    class AttestedCommands(BaseMiddleware):
        async def consume_scope(self, call_next: Callable[[Any], Awaitable[Any]], msg: StreamMessage[Any]) -> Any:
            subject = msg.raw_message.subject
            try:
                if verifier is None:
                    raise Unattested("no verifying key configured")
                verifier.verify(subject, msg.body, msg.headers)
            except Unattested as exc:
                log.error("command_unattested", command=subject, reason=str(exc))
                COMMANDS.labels(outcome="unattested").inc()
                return None
            return await call_next(msg)

    return AttestedCommands


def build_broker(settings: TrialSettings, name: str, *, answers_commands: bool = True) -> NatsBroker:
    """The service's broker; one that answers commands does not start without the gateway's public key."""
    if answers_commands and not settings.command_verify_keys:
        raise InvalidKey("COMMAND_VERIFY_KEYS is not set: the gateway's public key(s), 'kid:<base64url>'")
    verifier = CommandVerifier(settings.command_verify_keys) if settings.command_verify_keys else None
    login = bus.credentials(settings.nats_url)
    return NatsBroker(
        bus.bare_servers(settings.nats_url),
        name=f"trial-{name}",
        inbox_prefix=bus.inbox_prefix(settings.nats_url),
        security=NatsUserPassword(*login) if login else None,
        **bus.LIVENESS,
        error_cb=bus.said_by_the_server,
        # SIGTERM: stop taking messages, let in-flight handlers finish, then close.
        graceful_timeout=15.0,
        max_reconnect_attempts=-1,
        logger=None,
        # Messages received and handled, with durations and exceptions, per handler: on /metrics.
        middlewares=(
            NatsPrometheusMiddleware(registry=REGISTRY, app_name=f"trial-{name}"),
            attested_commands(verifier),
        ),
    )


@dataclass
class ServiceRuntime:
    """Built once by the service's `app.py`; handlers reach the store and protocol through it."""

    name: str
    settings: TrialSettings
    broker: NatsBroker
    protocol: ProtocolDefinition
    clock: Clock = utc_now
    _store: EventStore | None = field(default=None, init=False)
    _health: HealthServer | None = field(default=None, init=False)
    _reactions: list[Callable[[], Reaction]] = field(default_factory=list, init=False)
    _running: list[tuple[ReactionRunner, asyncio.Task[None]]] = field(default_factory=list, init=False)
    _clocks: list[tuple[float, Callable[[], Awaitable[object]], str]] = field(default_factory=list, init=False)
    _ticking: list[asyncio.Task[None]] = field(default_factory=list, init=False)
    _database_lock: DatabaseLocked | None = field(default=None, init=False)
    # Every version of the protocol as last read from the record.
    _versions: HeldVersions | None = field(default=None, init=False)

    @classmethod
    def create(
        cls, name: str, settings: TrialSettings, *, clock: Clock = utc_now, answers_commands: bool = True
    ) -> "ServiceRuntime":
        """`answers_commands=False` for a one-off job of the service that only records facts itself."""
        # An invalid protocol definition stops start-up here, with the field named.
        broker = build_broker(settings, name, answers_commands=answers_commands)
        return cls(name, settings, broker, load_protocol(settings.protocol_file), clock)

    async def start(self) -> None:
        """Before any handler subscribes: connect, make sure the streams exist, open the store."""
        await self.broker.connect()
        js = self.broker.connection.jetstream()
        await streams_ready(js)
        self._store = EventStore(js)
        self._health = HealthServer(
            self.settings.health_port,
            {"nats": nats_connected(self.broker.connection), "handlers": self._handlers_subscribed},
        )
        await self._health.start()
        for build in self._reactions:
            runner = ReactionRunner(build(), js, check_seconds=self.settings.consumer_check_seconds)
            self._running.append((runner, asyncio.create_task(runner.run())))
        self._ticking = [asyncio.create_task(self._tick(*clock)) for clock in self._clocks]
        log.info("service_started", service=self.name, protocol_version=self.protocol.version)

    def react_with(self, build: Callable[[], Reaction]) -> None:
        """Run a reaction on its durable consumer from start to stop; `build` makes it once the store is open."""
        self._reactions.append(build)

    def every(self, seconds: float, job: Callable[[], Awaitable[object]], *, name: str) -> None:
        """A clock: run `job` at start and then every `seconds` until stop (missed visits, escalations, the
        time-based edit checks). Each job is idempotent and safe on every replica; a failure the next tick may
        not meet is logged as `<name>_failed`."""
        self._clocks.append((seconds, job, name))

    async def _tick(self, seconds: float, job: Callable[[], Awaitable[object]], name: str) -> None:
        while True:
            try:
                await job()
            except TRANSIENT as exc:
                log.warning(f"{name}_failed", error=error_summary(exc))
            await asyncio.sleep(seconds)

    async def _handlers_subscribed(self) -> bool:
        """Ready means commands are answered: every handler subscribed and the server has seen it."""
        if not self.broker.running:
            return False
        await self.broker.connection.flush(timeout=1)
        return True

    async def stop(self) -> None:
        # A clock has nothing in hand worth waiting for; a reaction finishes the message in hand before it stops.
        for task in self._ticking:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for runner, _ in self._running:
            runner.stop()
        for _, task in self._running:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._health is not None:
            await self._health.stop()
        log.info("service_stopped", service=self.name)

    @property
    def store(self) -> EventStore:
        if self._store is None:
            raise RuntimeError("the service has not started")
        return self._store

    async def database_lock(self) -> DatabaseLocked | None:
        """The database lock for analysis, once recorded: read directly until then, kept once seen (never lifted)."""
        if self._database_lock is None:
            recorded = await self.store.last(event_subject(None, self.protocol.trial_id, DatabaseLocked.event_type))
            if recorded is not None and isinstance(recorded.data, DatabaseLocked):
                self._database_lock = recorded.data
        return self._database_lock

    async def versions(self, site: str | None = None, day: date | None = None) -> ProtocolVersions:
        """Every version of the protocol: the definition file's and each amendment recorded since (`HeldVersions`:
        read again only when needed for this site on this day, or for a trial-level decision)."""
        if self._versions is None:
            self._versions = HeldVersions(self.protocol, self._deployed, self.clock)
        return await self._versions.at(site, day)

    async def _deployed(self) -> list[ProtocolAmendmentDeployed]:
        history = await self.store.load(trial_history(self.protocol.trial_id, ProtocolAmendmentDeployed.event_type))
        return [e.data for e in history.events if isinstance(e.data, ProtocolAmendmentDeployed)]

    async def protocol_at(self, site: str, day: date) -> ProtocolDefinition:
        """The version of the protocol in force at the site on this day: what governs a form dated then."""
        return (await self.versions(site, day)).in_force(site, day)

    async def protocol_now(self, site: str) -> ProtocolDefinition:
        """The version of the protocol in force at the site now (what the service's own checks run under there)."""
        return await self.protocol_at(site, self.protocol.local_date(site, self.clock()))

    def today(self, ctx: CommandContext) -> date:
        """The date at the command's site when it arrived: "today" for every rule about its forms."""
        return self.protocol.local_date(ctx.site, ctx.received_at)

    def trial_metadata(self, *, correlation_id: str) -> EventMetadata:
        """For trial-level facts the service records on its own (no site, the trial id as subject)."""
        return EventMetadata.recorded_by(
            self.name,
            site=None,
            subject=self.protocol.trial_id,
            correlation_id=correlation_id,
            protocol_version=(
                self._versions.held.in_force_somewhere(self.clock()) if self._versions else self.protocol
            ).version,
        )

    def metadata(self, ctx: ActorContext, *, version: str, reason: str | None = None) -> EventMetadata:
        """Who did it and why; about the command's subject, or about the trial for a command that names none."""
        site, subject = (ctx.site, ctx.subject) if isinstance(ctx, CommandContext) else (None, self.protocol.trial_id)
        return EventMetadata(
            source=f"/trial/{self.name}",
            site=site,
            subject=subject,
            actor=ctx.actor,
            actor_role=ctx.role,
            actor_site=ctx.actor_site,
            actor_token=ctx.token_id,
            correlation_id=ctx.correlation_id,
            protocol_version=version,
            causation_id=str(ctx.command_id),
            reason=reason,
        )

    async def decide(
        self,
        command: Command[Any],
        replay: Callable[[Sequence[RecordedEvent]], S],
        rule: Callable[..., Sequence[DomainEvent]],
        *,
        result: ResultOf | None = None,
        while_locked: bool = False,
        known_subject: bool = False,
        under: Callable[[S], ProtocolDefinition] | None = None,
        **facts: object,
    ) -> CommandReply:
        """The one shape of every command about one subject: load its history, replay it into the service's
        state, let one domain rule decide on that state and the form (`rule(state, form, **facts)`), append what
        it decides. (A trial-wide decision calls `execute` with its own filter.) A correction's reason travels in
        the envelope, where the audit trail shows it. A locked casebook takes nothing (423) but what is taken
        `while_locked`: safety information, the unlock. A command on a subject's records (`known_subject`: queries,
        verification, signatures, locks) finds a subject with no history unknown (404); a site form there is
        refused by the protocol's own rule (no consent yet: 409).

        `under`: the version of the protocol that decides, from the subject's state (a correction keeps its
        record's version); the rule is given it as `protocol`, and the facts name it. Without it a decision is made
        under the version in force at the site today."""
        ctx, form = command.context, command.form
        chosen: list[ProtocolDefinition] = []

        def decide(history: History) -> Sequence[DomainEvent]:
            if known_subject and not history.events:
                raise UnknownSubject(f"no subject {ctx.subject} at site {ctx.site}", field="subject")
            if not while_locked:
                refuse_if_locked(history.events)
            state = replay(history.events)
            if under is None:
                return rule(state, form, **facts)
            chosen[:] = [under(state)]
            return rule(state, form, **facts, protocol=chosen[0])

        return await self.execute(
            ctx,
            subject_filter=subject_history(ctx.site, ctx.subject),
            decide=decide,
            result=result,
            reason=getattr(form, "reason", None),
            decided_under=(lambda: chosen[0].version) if under is not None else None,
        )

    async def execute(
        self,
        ctx: ActorContext,
        *,
        subject_filter: str,
        decide: Decide,
        result: ResultOf | None = None,
        reason: str | None = None,
        decided_under: Callable[[], str] | None = None,
    ) -> CommandReply:
        """Decide and append, and turn the outcome into the reply the gateway expects, with the time it took.
        The facts name the protocol version `decided_under` says, else the one in force at the site today (the
        latest, for a decision about the whole trial)."""
        started = time.perf_counter()
        reply = await self._reply(
            ctx, subject_filter=subject_filter, decide=decide, result=result, reason=reason, decided_under=decided_under
        )
        return reply.model_copy(update={"decided_ms": round(1000 * (time.perf_counter() - started), 2)})

    async def _reply(
        self,
        ctx: ActorContext,
        *,
        subject_filter: str,
        decide: Decide,
        result: ResultOf | None,
        reason: str | None,
        decided_under: Callable[[], str] | None,
    ) -> CommandReply:
        bound = log.bind(
            correlation_id=ctx.correlation_id, command_id=str(ctx.command_id), site=getattr(ctx, "site", None)
        )
        try:
            if isinstance(ctx, CommandContext):
                in_force = await self.protocol_at(ctx.site, self.today(ctx))
            else:
                in_force = (await self.versions()).in_force_somewhere(self.clock())
            outcome = await decide_and_append(
                self.store,
                subject_filter=subject_filter,
                decide=decide,
                meta=self.metadata(ctx, version=in_force.version, reason=reason),
                command_id=ctx.command_id,
                clock=self.clock,
                decided_under=decided_under,
            )
        except RuleViolation as violation:
            (bound.error if violation.alarm else bound.info)("command_refused", rule=violation.rule)
            COMMANDS.labels(outcome="refused").inc()
            return CommandReply(accepted=False, rejection=Rejection.of(violation))
        except (TooMuchContention, nats.errors.Error, TimeoutError) as exc:
            # What the server said, when it said something (a JetStream API error's code and description).
            bound.warning("command_unavailable", error=type(exc).__name__, detail=str(exc) or None)
            COMMANDS.labels(outcome="unavailable").inc()
            return CommandReply(accepted=False, unavailable=True)
        except Exception:
            # E.g. a history this version cannot read: never a silent success, never a hang for the caller.
            bound.exception("command_failed")
            COMMANDS.labels(outcome="failed").inc()
            return CommandReply(accepted=False, unavailable=True)
        COMMANDS.labels(outcome="replayed" if outcome.replayed else "accepted").inc()
        # Built from the recorded events, so a replayed command answers exactly as the first time.
        answer = result(outcome.events) if result else {}
        # The events' types only: what was decided (eligibility, arm, values) is in the record, never in a log.
        bound.info("command_accepted", events=[e.envelope.type for e in outcome.events], replayed=outcome.replayed)
        return CommandReply(
            accepted=True,
            event_ids=[e.envelope.id for e in outcome.events],
            last_sequence=outcome.events[-1].sequence if outcome.events else None,
            replayed=outcome.replayed,
            result=answer,
        )
