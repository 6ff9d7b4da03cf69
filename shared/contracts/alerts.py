"""SAE alerts on the TRIAL_ALERTS stream: the message the safety team receives, and its durable consumer."""

import contextlib
from enum import StrEnum
from uuid import UUID

import nats.js.errors
from nats.js import JetStreamContext, api
from pydantic import AwareDatetime, BaseModel, ConfigDict

from shared.contracts.forms import SeriousnessCriterion
from shared.runtime.consumers import drifted
from shared.runtime.eventstore import ALERTS_PREFIX, ALERTS_STREAM, MSG_ID

# The safety team's durable consumer: every alert, delivered again until it is acknowledged.
SAFETY_TEAM_CONSUMER = "safety-team"


class AlertKind(StrEnum):
    RAISED = "sae"
    OVERDUE = "sae-overdue"


class SaeAlertMessage(BaseModel):
    """What the safety team sees: who, what, how bad, since when. No personal data beyond the subject id."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: AlertKind
    alert_id: UUID
    ae_id: UUID
    site: str
    subject: str
    term: str
    grade: int
    seriousness: tuple[SeriousnessCriterion, ...]
    site_aware_at: AwareDatetime
    reported_at: AwareDatetime
    raised_at: AwareDatetime
    late: bool
    escalation: int = 0

    @property
    def nats_subject(self) -> str:
        return f"{ALERTS_PREFIX}.{self.kind.value}.{self.site}"

    @property
    def message_id(self) -> str:
        return f"{self.kind.value}:{self.alert_id}:{self.escalation}"


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
