"""Data management service settings, from the environment."""

from shared.runtime.settings import TrialSettings


class DataManagementSettings(TrialSettings):
    command_queue: str = "datamanagement"
    # Time-based checks (an SAE's follow-up overdue) are run over the subjects again this often.
    edit_check_sweep_seconds: float = 600.0
