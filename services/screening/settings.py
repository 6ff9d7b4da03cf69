"""Screening service settings, from the environment."""

from shared.settings import TrialSettings


class ScreeningSettings(TrialSettings):
    command_queue: str = "screening"
