"""The README's shell blocks run as they stand, one after the other in one shell, against the system `make run`
starts: only the gateway's address is the test system's own (the README's is `make run`'s default port)."""

import re
import subprocess
from pathlib import Path

import pytest

from shared.runtime.settings import PROJECT_ROOT
from tests.integration.conftest import MakeRun

pytestmark = pytest.mark.integration

README = PROJECT_ROOT / "README.md"
BLOCK = re.compile(r"^```sh\n(.*?)^```", re.DOTALL | re.MULTILINE)
README_GATEWAY = "http://127.0.0.1:8000"


def shell_blocks() -> list[str]:
    return BLOCK.findall(README.read_text())


def test_the_readmes_shell_blocks_run_as_printed(make_run: MakeRun, tmp_path: Path) -> None:
    blocks = shell_blocks()
    assert len(blocks) >= 2 and README_GATEWAY in blocks[0], "Try it, and the data-management loop"
    script = "set -euo pipefail\n" + "\n".join(blocks).replace(README_GATEWAY, make_run.gateway)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "TRIAL_DATA_DIR": str(make_run.data)}
    done = subprocess.run(
        ["bash", "-c", script], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, f"stdout:\n{done.stdout[-4000:]}\nstderr:\n{done.stderr[-4000:]}"
    assert '"eligible":true' in done.stdout and '"arm":' in done.stdout
    assert done.stdout.rstrip().endswith("}") and '"query_id"' in done.stdout, "the query closed, last"
