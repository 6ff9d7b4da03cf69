"""Data management service settings, from the environment."""

from shared.runtime.settings import TrialSettings


class DataManagementSettings(TrialSettings):
    command_queue: str = "datamanagement"
    # Time-based checks (an SAE's follow-up overdue) are run over the subjects again this often.
    edit_check_sweep_seconds: float = 600.0
    # How soon after a site's day begins an amendment taking effect that day is recorded in force there. (What
    # governs each form is the amendment's effective date itself, from the first form of the day.)
    amendment_check_seconds: float = 60.0
