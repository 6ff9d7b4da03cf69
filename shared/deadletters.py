"""The dead-letter stream: a message no handler could process, kept whole with why, never blocking the rest."""

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
    """Publish the original message with the reason; once per handler and message (deduplicated)."""
    sequence = msg.metadata.sequence.stream
    headers = {
        MSG_ID: f"{kind}:{name}:{sequence}",
        REASON: reason[:1000],
        HANDLER: f"{kind}:{name}",
        ORIGINAL_SUBJECT: msg.subject,
        ORIGINAL_SEQUENCE: str(sequence),
    }
    ack = await js.publish(dead_letter_subject(kind, name), msg.data, headers=headers)
    return ack.seq
