"""`python -m services.screening`: run the screening service; SIGTERM drains in-flight commands."""

from services.screening.app import NAME, build_app
from services.screening.settings import ScreeningSettings
from shared.runtime.runner import run_faststream

if __name__ == "__main__":
    run_faststream(NAME, build_app, ScreeningSettings)
