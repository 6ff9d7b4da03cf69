"""The dead-letter stream: which message a handler could not process, and why; never blocking the rest.

A dead letter names the original (stream, sequence, subject) instead of copying it: the event stays
in the legal record, and clinical content is not duplicated into a second stream.

Once the cause is fixed (a new version that reads the schema, a repaired read model), the service
that owns the handler replays its dead letters: each original is handed to the handler again, and
a success is marked in the dead-letter stream (`Trial-Dead-Letter-Resolves`), so it is listed no more.
"""

import json
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog
from nats.aio.msg import Msg
from nats.js import JetStreamContext

from shared.contracts.events import RecordedEvent, decode_envelope
from shared.runtime.eventstore import DEAD_LETTER_PREFIX, DEAD_LETTER_STREAM, EVENTS_STREAM, MSG_ID, DirectGets
from shared.runtime.logging import error_summary
from shared.runtime.metrics import DEAD_LETTERS

REASON = "Trial-Dead-Letter-Reason"
HANDLER = "Trial-Dead-Letter-Handler"
ORIGINAL_SUBJECT = "Trial-Original-Subject"
ORIGINAL_SEQUENCE = "Trial-Original-Sequence"
RESOLVES = "Trial-Dead-Letter-Resolves"

log = structlog.get_logger(__name__)


def dead_letter_subject(kind: str, name: str) -> str:
    return f"{DEAD_LETTER_PREFIX}.{kind}.{name}"


async def dead_letter(js: JetStreamContext, msg: Msg, *, kind: str, name: str, reason: str) -> int:
    """Publish a reference to the message with the reason; once per handler and message (deduplicated)."""
    sequence = msg.metadata.sequence.stream
    headers = {
        MSG_ID: f"{kind}:{name}:{sequence}",
        REASON: reason[:1000],
        HANDLER: f"{kind}:{name}",
        ORIGINAL_SUBJECT: msg.subject,
        ORIGINAL_SEQUENCE: str(sequence),
    }
    reference = {"stream": msg.metadata.stream, "sequence": sequence, "subject": msg.subject, "reason": reason[:1000]}
    ack = await js.publish(dead_letter_subject(kind, name), json.dumps(reference).encode(), headers=headers)
    DEAD_LETTERS.labels(handler=f"{kind}:{name}").inc()
    return ack.seq


@dataclass(frozen=True)
class DeadLetter:
    sequence: int
    handler: str
    original_subject: str
    original_sequence: int
    reason: str


async def dead_letters(
    js: JetStreamContext, *, handler: str | None = None, include_resolved: bool = False
) -> list[DeadLetter]:
    """The dead letters not yet replayed (optionally of one handler, e.g. `projection:subjects`), oldest first."""
    subject = dead_letter_subject(*handler.split(":", 1)) if handler else f"{DEAD_LETTER_PREFIX}.>"
    found: list[DeadLetter] = []
    resolved: set[int] = set()
    direct = DirectGets(js, DEAD_LETTER_STREAM)
    try:
        batches = [batch async for batch in direct.after(subject, 0, batch=256, timeout=5.0)]
    finally:
        await direct.close()
    for batch in batches:
        for msg in batch:
            headers = msg.headers
            if RESOLVES in headers:
                resolved.add(int(headers[RESOLVES]))
            else:
                found.append(
                    DeadLetter(
                        sequence=msg.sequence,
                        handler=headers.get(HANDLER, ""),
                        original_subject=headers.get(ORIGINAL_SUBJECT, ""),
                        original_sequence=int(headers.get(ORIGINAL_SEQUENCE, "0")),
                        reason=headers.get(REASON, ""),
                    )
                )
    return [d for d in found if include_resolved or d.sequence not in resolved]


@dataclass
class Replay:
    replayed: list[DeadLetter] = field(default_factory=list)
    failed: list[tuple[DeadLetter, str]] = field(default_factory=list)


async def replay(js: JetStreamContext, handler: str, handle: Callable[[RecordedEvent], Awaitable[None]]) -> Replay:
    """Hand each unresolved dead letter's original to `handle` again; mark the ones it now processes."""
    outcome = Replay()
    for letter in await dead_letters(js, handler=handler):
        try:
            await handle(await original(js, letter.original_sequence))
        except Exception as exc:
            reason = error_summary(exc)
            log.error("dead_letter_replay_failed", handler=handler, sequence=letter.original_sequence, reason=reason)
            outcome.failed.append((letter, reason))
            continue
        headers = {
            MSG_ID: f"resolved:{handler}:{letter.sequence}",
            HANDLER: handler,
            RESOLVES: str(letter.sequence),
            ORIGINAL_SUBJECT: letter.original_subject,
            ORIGINAL_SEQUENCE: str(letter.original_sequence),
        }
        await js.publish(dead_letter_subject(*handler.split(":", 1)), b"{}", headers=headers)
        log.info("dead_letter_replayed", handler=handler, sequence=letter.original_sequence)
        outcome.replayed.append(letter)
    return outcome


async def original(js: JetStreamContext, sequence: int) -> RecordedEvent:
    """The event at `sequence` in the record, by a direct get; `UndecodableEvent` if no code can read it."""
    raw = await js.get_msg(EVENTS_STREAM, seq=sequence, direct=True)
    assert raw.data is not None and raw.subject is not None
    return RecordedEvent(sequence=sequence, nats_subject=raw.subject, envelope=decode_envelope(raw.data))


def print_replay(outcome: Replay) -> int:
    """For the services' `dead-letters --replay`: what was replayed, what still fails; 1 if any does."""
    for d in outcome.replayed:
        print(f"replayed\t{d.handler}\t{d.original_subject}#{d.original_sequence}")
    for d, reason in outcome.failed:
        print(f"FAILED\t{d.handler}\t{d.original_subject}#{d.original_sequence}\t{reason}")
    print(f"{len(outcome.replayed)} replayed, {len(outcome.failed)} still failing", file=sys.stderr)
    return 1 if outcome.failed else 0


def print_letters(letters: list[DeadLetter]) -> None:
    for d in letters:
        print(f"{d.sequence}\t{d.handler}\t{d.original_subject}#{d.original_sequence}\t{d.reason}")
    print(f"{len(letters)} dead letter(s)", file=sys.stderr)
