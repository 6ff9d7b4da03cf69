"""Visits service settings, from the environment."""

from pydantic import Field

from shared.runtime.settings import TrialSettings


class VisitsSettings(TrialSettings):
    command_queue: str = "visits"
    missed_visit_check_seconds: float = Field(3600.0, gt=0, description="how often closed windows are checked")
