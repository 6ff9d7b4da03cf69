"""Screening service settings, from the environment."""

from shared.runtime.settings import TrialSettings


class ScreeningSettings(TrialSettings):
    command_queue: str = "screening"
