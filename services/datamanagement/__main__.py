"""`python -m services.datamanagement`: run the data management service; SIGTERM drains in-flight commands."""

from services.datamanagement.app import NAME, build_app
from services.datamanagement.settings import DataManagementSettings
from shared.runtime.runner import run_faststream

if __name__ == "__main__":
    run_faststream(NAME, build_app, DataManagementSettings)
