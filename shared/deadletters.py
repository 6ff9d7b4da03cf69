"""The dead-letter stream: which message a handler could not process, and why; never blocking the rest.

A dead letter names the original (stream, sequence, subject) instead of copying it: the event stays
in the legal record, and clinical content is not duplicated into a second stream.
"""

import json

from nats.aio.msg import Msg
from nats.js import JetStreamContext

from shared.eventstore import DEAD_LETTER_PREFIX, MSG_ID

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
    return ack.seq
