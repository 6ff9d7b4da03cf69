"""`trial <verb>` against a system started as `make run` starts it: every verb finds its credentials in the
data folder and runs as its service; every failure is one sentence and a non-zero exit within seconds."""

import json
import os
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import httpx
import pytest
import yaml

from tests.amendment import amendment
from tests.integration.conftest import MakeRun

pytestmark = pytest.mark.integration

TRIAL = str(Path(sys.executable).parent / "trial")  # the console script the project installs


@pytest.fixture(scope="module")
def data_dir(make_run: MakeRun) -> Path:
    return make_run.data


def trial(*args: str, data: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL")} | {"TRIAL_DATA_DIR": str(data)}
    return subprocess.run([TRIAL, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)


def test_every_verb_runs_as_its_service_with_the_credentials_kept_in_the_data_folder(
    data_dir: Path, tmp_path: Path
) -> None:
    token = trial("token", "--role", "monitor", data=data_dir)
    assert token.returncode == 0 and token.stdout.strip().count(".") == 2, token.stderr
    exported = trial("export", "--out", str(tmp_path / "exports"), data=data_dir)
    assert exported.returncode == 0, exported.stderr
    assert {"dm.csv", "dv.csv", "adsl.csv", "adeff.csv", "define.json", "odm.xml"} <= {
        p.name for p in (tmp_path / "exports").iterdir()
    }
    for verb in (["rebuild"], ["dead-letters"], ["dead-letters", "--service", "safety"], ["missed-visits"]):
        done = trial(*verb, data=data_dir)
        assert done.returncode == 0, (verb, done.stdout, done.stderr)
    listed = tmp_path / "allocation-list.csv"
    assert trial("allocation-list", "--out", str(listed), data=data_dir).returncode == 0
    verified = trial("allocation-list", "--verify", str(listed), data=data_dir)
    assert verified.returncode == 0 and verified.stdout.startswith("OK"), verified.stdout + verified.stderr


def test_a_person_signed_in_at_make_runs_identity_provider_is_let_in_by_its_gateway(make_run: MakeRun) -> None:
    issuer = make_run.identity_provider
    signed_in = subprocess.run(
        [sys.executable, "-m", "devstack.identity", "sign-in", "site-coordinator.nfh", "--issuer", issuer],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert signed_in.returncode == 0, signed_in.stderr
    gateway = make_run.gateway
    bearer = {"Authorization": f"Bearer {signed_in.stdout.strip()}"}
    assert httpx.get(f"{gateway}/v1/sites/NFH/subjects", headers=bearer, timeout=10).status_code == 200
    assert httpx.get(f"{gateway}/v1/sites/GZ2/subjects", headers=bearer, timeout=10).status_code == 403
    # The web app beside it sends a browser to sign in at that provider.
    sign_in = httpx.get(f"{make_run.web}/", timeout=10, follow_redirects=True)
    assert sign_in.url.host == "127.0.0.1" and str(sign_in.url).startswith(f"{issuer}/"), sign_in.url
    assert 'name="login"' in sign_in.text


def one_sentence_within_seconds(result: subprocess.CompletedProcess[str], started: float, expected: str) -> None:
    assert time.monotonic() - started < 15, "never a hang"
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and expected in result.stderr, result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_in_a_kubernetes_job_a_verb_reads_the_service_s_mounted_secrets(data_dir: Path, tmp_path: Path) -> None:
    """As a Job's pod runs it: no data folder, the service's credentials as files in SECRETS_DIR, none in the
    environment."""
    access = json.loads((data_dir / "access.json").read_text())
    secrets = tmp_path / "secrets"
    secrets.mkdir()
    (secrets / "nats_url").write_text(access["nats_urls"]["reporting"] + "\n")
    (secrets / "database_url").write_text(access["database_urls"]["reporting"])
    env = {k: v for k, v in os.environ.items() if k not in ("NATS_URL", "DATABASE_URL")}
    env |= {"TRIAL_DATA_DIR": str(tmp_path / "nothing"), "SECRETS_DIR": str(secrets)}
    exported = subprocess.run(
        [TRIAL, "export", "--out", str(tmp_path / "exports")], env=env, capture_output=True, text=True, timeout=120
    )
    assert exported.returncode == 0, exported.stderr
    assert "dm.csv" in {p.name for p in (tmp_path / "exports").iterdir()}


def test_without_a_system_the_answer_says_how_to_start_one(tmp_path: Path) -> None:
    started = time.monotonic()
    result = trial("rebuild", data=tmp_path)
    one_sentence_within_seconds(result, started, "no system found")


def test_refused_credentials_are_said_at_once_not_retried_for_half_a_minute(data_dir: Path, tmp_path: Path) -> None:
    access = json.loads((data_dir / "access.json").read_text())
    access["nats_urls"] = {user: url.replace("@", "x@", 1) for user, url in access["nats_urls"].items()}
    (tmp_path / "access.json").write_text(json.dumps(access))
    started = time.monotonic()
    result = trial("missed-visits", data=tmp_path)
    one_sentence_within_seconds(result, started, "credentials refused")


def test_the_allocation_list_without_its_seed_is_refused_before_anything_runs(data_dir: Path, tmp_path: Path) -> None:
    access = json.loads((data_dir / "access.json").read_text())
    del access["env"]["RANDOMIZATION_SEED"]
    (tmp_path / "access.json").write_text(json.dumps(access))
    started = time.monotonic()
    result = trial("allocation-list", "--out", str(tmp_path / "list.csv"), data=tmp_path)
    one_sentence_within_seconds(result, started, "needs RANDOMIZATION_SEED")


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["allocation-list", "--verify", "nowhere/list.csv"], "is not a file"),
        (["allocation-list", "--out", "nowhere/list.csv"], "does not exist: create it first"),
        (["export", "--out", "nowhere/deeper/exports"], "does not exist: create it first"),
    ],
)
def test_a_missing_file_or_folder_is_one_sentence_not_a_traceback(
    data_dir: Path, tmp_path: Path, args: list[str], expected: str
) -> None:
    started = time.monotonic()
    result = trial(*[a.replace("nowhere", str(tmp_path / "nowhere")) for a in args], data=data_dir)
    one_sentence_within_seconds(result, started, expected)


def test_an_amendment_whose_definition_file_is_missing_is_one_sentence_not_a_traceback(tmp_path: Path) -> None:
    header = {k: v for k, v in amendment({"NFH": date(2027, 3, 2)}).items() if k != "definition"}
    (tmp_path / "amendment.yaml").write_text(yaml.safe_dump(header | {"protocol": "missing.yaml"}))
    started = time.monotonic()
    result = trial("amendment", str(tmp_path / "amendment.yaml"), data=tmp_path)
    one_sentence_within_seconds(result, started, "missing.yaml")


def test_an_unknown_role_is_refused_by_trial_itself(tmp_path: Path) -> None:
    result = trial("token", "--role", "surgeon", data=tmp_path)
    assert result.returncode == 2
    assert result.stderr.startswith("usage: trial token") and "python -m" not in result.stderr, result.stderr
    assert "invalid choice: 'surgeon'" in result.stderr


def test_the_exports_trial_writes_are_the_bytes_the_gateway_serves(make_run: MakeRun, tmp_path: Path) -> None:
    written = trial("export", "--out", str(tmp_path / "exports"), data=make_run.data)
    assert written.returncode == 0, written.stderr
    bearer = trial("token", "--role", "data_manager", data=make_run.data).stdout.strip()
    files = sorted(p for p in (tmp_path / "exports").iterdir() if p.suffix in (".csv", ".json"))
    assert "define.json" in {p.name for p in files}
    for path in files:
        name = path.name if path.suffix == ".json" else f"{path.stem.upper()}.csv"
        served = httpx.get(
            f"{make_run.gateway}/v1/reports/exports/{name}", headers={"Authorization": f"Bearer {bearer}"}, timeout=30
        )
        assert served.status_code == 200, (name, served.text)
        assert served.content == path.read_bytes(), name
