"""SAE alerts on the TRIAL_ALERTS stream: the message the safety team receives, where, and its consumer's name.
Publishing one and provisioning the consumer are `shared.runtime.alerts`."""

from enum import StrEnum
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict

from shared.contracts.forms import SeriousnessCriterion

ALERTS_STREAM = "TRIAL_ALERTS"
ALERTS_PREFIX = "trial.alerts"

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
