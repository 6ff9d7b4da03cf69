"""The services carry only what they use: the statistics and plotting libraries (about 100 MB together) are
imported when a report is computed, never by a service starting up."""

import subprocess
import sys

import pytest

HEAVY = ("numpy", "scipy", "matplotlib")


@pytest.mark.parametrize(
    "module",
    [
        "services.gateway.app",
        "services.reporting.app",
        "services.screening.app",
        "services.randomization.app",
        "services.visits.app",
        "services.safety.app",
        "services.datamanagement.app",
    ],
)
def test_starting_a_service_imports_no_statistics_or_plotting_library(module: str) -> None:
    probe = f"import sys, {module}; print(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60)
    assert loaded.stdout.strip() == "", f"{module} loads {loaded.stdout.strip()} at start"
