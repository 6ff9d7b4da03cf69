"""Reporting service settings, from the environment."""

from shared.runtime.settings import TrialSettings


class ReportingSettings(TrialSettings):
    pool_size: int = 4
