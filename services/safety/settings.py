"""Safety service settings, from the environment."""

from datetime import timedelta

from pydantic import Field

from shared.runtime.settings import TrialSettings


class SafetySettings(TrialSettings):
    command_queue: str = "safety"
    # An alert nobody acknowledged within this time is escalated, and again at each further interval.
    sae_acknowledgement_minutes: float = Field(60.0, gt=0)
    escalation_check_seconds: float = Field(15.0, gt=0)
    # Every serious AE in the record is checked for its alert this often; one without, serious for longer than the
    # grace (the reaction's own time to raise it), is raised late and alarmed.
    alert_reconciliation_seconds: float = Field(30.0, gt=0)
    alert_reconciliation_grace_seconds: float = Field(20.0, ge=0)

    @property
    def acknowledgement_interval(self) -> timedelta:
        return timedelta(minutes=self.sae_acknowledgement_minutes)
