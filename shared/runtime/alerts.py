"""Publishing an SAE alert, and the safety team's durable consumer that receives them (`shared.contracts.alerts`
is the message)."""

import contextlib

import nats.js.errors
from nats.js import JetStreamContext, api

from shared.contracts.alerts import ALERTS_PREFIX, ALERTS_STREAM, SAFETY_TEAM_CONSUMER, SaeAlertMessage
from shared.runtime.consumers import drifted
from shared.runtime.eventstore import MSG_ID


async def publish_alert(js: JetStreamContext, alert: SaeAlertMessage) -> int:
    """Durable (stream-stored, fsynced) and once per alert and escalation, however often it is re-published."""
    ack = await js.publish(
        alert.nats_subject, alert.model_dump_json().encode(), stream=ALERTS_STREAM, headers={MSG_ID: alert.message_id}
    )
    return ack.seq


def safety_team_consumer(*, ack_wait: float = 60.0) -> api.ConsumerConfig:
    return api.ConsumerConfig(
        durable_name=SAFETY_TEAM_CONSUMER,
        filter_subject=f"{ALERTS_PREFIX}.>",
        deliver_policy=api.DeliverPolicy.ALL,
        ack_policy=api.AckPolicy.EXPLICIT,
        ack_wait=ack_wait,
        max_deliver=-1,
    )


async def provision_safety_team_consumer(js: JetStreamContext, *, ack_wait: float = 60.0) -> None:
    """Exists before the first alert, so no alert waits for someone to start watching."""
    config = safety_team_consumer(ack_wait=ack_wait)
    # If it exists with another acknowledgement wait (chosen by ops), it is kept as it is; one that delivers
    # otherwise is an alarm (the safety service keeps checking it too).
    with contextlib.suppress(nats.js.errors.BadRequestError):
        await js.add_consumer(ALERTS_STREAM, config=config)
    await drifted(js, ALERTS_STREAM, config)
