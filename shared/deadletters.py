"""The dead-letter stream: which message a handler could not process, and why; never blocking the rest.

A dead letter names the original (stream, sequence, subject) instead of copying it: the event stays
in the legal record, and clinical content is not duplicated into a second stream.
"""

import argparse
import asyncio
import json
import sys
from dataclasses import dataclass

import nats
import nats.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext, api

from shared.eventstore import DEAD_LETTER_PREFIX, MSG_ID
from shared.metrics import DEAD_LETTERS
from shared.settings import TrialSettings, load_settings

REASON = "Trial-Dead-Letter-Reason"
HANDLER = "Trial-Dead-Letter-Handler"
ORIGINAL_SUBJECT = "Trial-Original-Subject"
ORIGINAL_SEQUENCE = "Trial-Original-Sequence"


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


async def dead_letters(js: JetStreamContext, *, handler: str | None = None) -> list[DeadLetter]:
    """Every dead letter so far (optionally of one handler, e.g. `projection:subjects`), oldest first."""
    subject = dead_letter_subject(*handler.split(":", 1)) if handler else f"{DEAD_LETTER_PREFIX}.>"
    sub = await js.subscribe(subject, ordered_consumer=True, deliver_policy=api.DeliverPolicy.ALL)
    found: list[DeadLetter] = []
    try:
        while True:
            try:
                msg = await sub.next_msg(timeout=1)
            except nats.errors.TimeoutError:
                break  # nothing (more) to read
            headers = msg.headers or {}
            found.append(
                DeadLetter(
                    sequence=msg.metadata.sequence.stream,
                    handler=headers.get(HANDLER, ""),
                    original_subject=headers.get(ORIGINAL_SUBJECT, ""),
                    original_sequence=int(headers.get(ORIGINAL_SEQUENCE, "0")),
                    reason=headers.get(REASON, ""),
                )
            )
            if msg.metadata.num_pending == 0:
                break
    finally:
        await sub.unsubscribe()
    return found


async def _list(handler: str | None) -> list[DeadLetter]:
    nc = await nats.connect(load_settings(TrialSettings).nats_url.split(","), name="trial-dead-letters")
    try:
        return await dead_letters(nc.jetstream(), handler=handler)
    finally:
        await nc.close()


def main() -> int:
    """`python -m shared.deadletters [--handler KIND:NAME]`: list what no handler could process, and why."""
    parser = argparse.ArgumentParser(prog="python -m shared.deadletters", description=main.__doc__)
    parser.add_argument("--handler", help="only this handler's, e.g. projection:subjects or reaction:sae-alerts")
    args = parser.parse_args()
    letters = asyncio.run(_list(args.handler))
    for d in letters:
        print(f"{d.sequence}\t{d.handler}\t{d.original_subject}#{d.original_sequence}\t{d.reason}")
    print(f"{len(letters)} dead letter(s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
