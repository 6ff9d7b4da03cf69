"""Reporting service settings, from the environment."""

from pydantic import Field

from shared.runtime.settings import TrialSettings


class ReportingSettings(TrialSettings):
    pool_size: int = 4
    # How often the service looks for the database lock, to make the exports as of it (once).
    lock_check_seconds: float = Field(5.0, gt=0)
