"""The Kubernetes manifests, offline: rendered by kustomize, valid against the API schemas, linted,
policy-scanned, and holding the security and availability properties ops rely on."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from prometheus_client import REGISTRY

import shared.runtime.metrics  # noqa: F401 - registers the metrics the alerts refer to
from deploy.image import render
from devstack.servers import NatsCluster
from devstack.stack import APPS
from ops.bus_permissions import nats_authorization
from services.gateway.settings import GatewaySettings
from shared.contracts.photographs import MAX_BYTES as PHOTOGRAPH_BYTES

pytestmark = pytest.mark.deploy

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
KUBERNETES_VERSION = "1.32.0"
# CloudNativePG's and the Prometheus operator's kinds: their schemas ship with the operators, not with
# Kubernetes; their required fields are asserted below instead.
OPERATOR_KINDS = {"Cluster", "ScheduledBackup", "PodMonitor", "PrometheusRule"}
WORKLOADS = {"Deployment", "StatefulSet", "Job"}


@pytest.fixture(scope="module", params=["dev", "prod"])
def overlay(request: pytest.FixtureRequest) -> tuple[str, list[dict[str, Any]]]:
    return request.param, render(request.param)


def containers(obj: dict[str, Any]) -> list[dict[str, Any]]:
    spec = obj["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def by_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def test_every_object_is_valid_against_the_kubernetes_schemas(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = overlay
    checked = 0
    for obj in objects:
        if obj["kind"] in OPERATOR_KINDS:
            continue
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)
        checked += 1
    assert checked >= 20


def test_every_container_runs_non_root_read_only_unprivileged_with_limits(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    _, objects = overlay
    workloads = [o for o in objects if o["kind"] in WORKLOADS]
    assert workloads
    for obj in workloads:
        pod = obj["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, obj["metadata"]["name"]
        assert pod.get("automountServiceAccountToken") is False, obj["metadata"]["name"]
        for c in containers(obj):
            where = f"{obj['kind']}/{obj['metadata']['name']}/{c['name']}"
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True and sc["runAsUser"] >= 10000, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["allowPrivilegeEscalation"] is False and sc.get("privileged", False) is False, where
            assert sc["capabilities"]["drop"] == ["ALL"], where
            assert {"cpu", "memory"} <= set(c["resources"]["limits"]), where
            assert {"cpu", "memory"} <= set(c["resources"]["requests"]), where
            assert not [e for e in c.get("env", []) if "secretKeyRef" in e.get("valueFrom", {})], (
                f"{where}: secrets as files"
            )


def test_every_long_running_container_has_probes_on_real_health_endpoints(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    _, objects = overlay
    for obj in by_kind(objects, "Deployment") + by_kind(objects, "StatefulSet"):
        for c in containers(obj):
            for probe in ("livenessProbe", "readinessProbe"):
                assert probe in c, f"{obj['metadata']['name']}: {probe}"
    for obj in by_kind(objects, "Deployment"):
        [c] = containers(obj)
        assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
        assert "startupProbe" in c


def test_prod_runs_everything_twice_spread_across_nodes_with_a_budget_and_an_autoscaled_gateway() -> None:
    objects = render("prod")
    deployments = by_kind(objects, "Deployment")
    assert len(deployments) == len(APPS)
    budgets = {
        p["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] for p in by_kind(objects, "PodDisruptionBudget")
    }
    for d in deployments:
        name = d["metadata"]["name"]
        assert d["spec"]["replicas"] >= 2, name
        spread = d["spec"]["template"]["spec"]["topologySpreadConstraints"]
        assert any(
            s["topologyKey"] == "kubernetes.io/hostname" and s["whenUnsatisfiable"] == "DoNotSchedule" for s in spread
        )
        assert name in budgets, f"{name} has no PodDisruptionBudget"
        assert d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0, "rollouts never drop below capacity"
    [hpa] = by_kind(objects, "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "gateway" and hpa["spec"]["minReplicas"] >= 2
    [config] = by_kind(objects, "ConfigMap")
    assert config["data"]["STREAM_REPLICAS"] == "3"
    [cluster] = by_kind(objects, "Cluster")
    assert cluster["spec"]["instances"] == 3 and cluster["spec"]["backup"]["barmanObjectStore"]["destinationPath"]
    [backup] = by_kind(objects, "ScheduledBackup")
    assert backup["spec"]["cluster"]["name"] == cluster["metadata"]["name"]


def test_prod_takes_tokens_from_the_identity_provider_only_and_lets_the_gateway_reach_it() -> None:
    objects = render("prod")
    [config] = by_kind(objects, "ConfigMap")
    settings = GatewaySettings(oidc_issuer=config["data"]["OIDC_ISSUER"], oidc_audience=config["data"]["OIDC_AUDIENCE"])
    assert settings.signing_keys() == {}, "no development issuer beside the provider"
    [gateway] = [d for d in by_kind(objects, "Deployment") if d["metadata"]["name"] == "gateway"]
    mounted = [s["secret"]["name"] for v in gateway["spec"]["template"]["spec"]["volumes"] if "projected" in v
               for s in v["projected"]["sources"]]  # fmt: skip
    assert "trial-gateway-token-keys" not in mounted and "trial-command-keys" in mounted
    [egress] = [p for p in by_kind(objects, "NetworkPolicy") if p["metadata"]["name"] == "gateway-to-identity-provider"]
    [selected] = egress["spec"]["podSelector"]["matchExpressions"]
    assert selected["key"] == "app.kubernetes.io/name" and set(selected["values"]) == {"gateway", "web"}
    assert egress["spec"]["egress"][0]["ports"] == [{"protocol": "TCP", "port": 443}]


def test_networking_is_denied_by_default_and_opened_flow_by_flow(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    _, objects = overlay
    policies = {p["metadata"]["name"]: p for p in by_kind(objects, "NetworkPolicy")}
    deny = policies["default-deny"]["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny and "egress" not in deny
    assert {"allow-dns", "gateway-from-ingress", "trial-to-nats", "nats-from-trial"} <= set(policies)


def test_a_migration_job_provisions_streams_and_schemas_before_the_services(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    _, objects = overlay
    [job] = by_kind(objects, "Job")
    steps = [c["args"] for c in containers(job)]
    assert steps == [["ops.provision"], ["services.reporting", "migrate"], ["services.gateway", "migrate"]]


def test_each_ingress_admits_the_largest_body_the_app_takes_and_no_more_than_a_margin_above(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    """A scalp photograph is the largest body: the ingress must let it through (else a 413 the app never sees),
    and let nothing much larger reach the app (which refuses it anyway, after reading it)."""
    units = {"k": 1024, "m": 1024**2}
    for ingress in by_kind(overlay[1], "Ingress"):
        said = ingress["metadata"]["annotations"]["nginx.ingress.kubernetes.io/proxy-body-size"]
        size = int(said[:-1]) * units[said[-1].lower()]
        assert PHOTOGRAPH_BYTES < size <= PHOTOGRAPH_BYTES + 2 * units["m"], (ingress["metadata"]["name"], said)


def test_the_yaml_is_lint_clean() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "yamllint",
            "-c",
            str(ROOT / ".yamllint.yaml"),
            "-f",
            "parsable",
            str(ROOT / "deploy"),
            str(ROOT / "protocol"),
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout


# The dev overlay runs on a laptop cluster with the public nats and postgres images by tag; prod pins
# every image by digest (make release-images) and is scanned with no check skipped.
SKIPPED = {"dev": ["--skip-check", "CKV_K8S_43"], "prod": []}


def test_the_policy_scan_finds_nothing(tmp_path: Path) -> None:
    checkov = ROOT / ".tools" / "checkov" / "bin" / "checkov"
    assert checkov.exists(), "make's policy tools install checkov from deploy/policy-requirements.txt"
    passed = 0
    for overlay, skipped in SKIPPED.items():
        folder = tmp_path / overlay
        folder.mkdir()
        (folder / f"{overlay}.yaml").write_text(yaml.safe_dump_all(render(overlay)))
        result = subprocess.run(
            [
                str(checkov),
                "-d",
                str(folder),
                "--config-file",
                str(ROOT / "deploy" / "checkov.yaml"),
                *skipped,
                "-o",
                "json",
                "--quiet",
            ],
            capture_output=True,
            text=True,
        )
        report = json.loads(result.stdout)
        summary = report["summary"] if isinstance(report, dict) else report[0]["summary"]
        assert summary["failed"] == 0, (overlay, result.stdout[-2000:])
        passed += summary["passed"]
    assert passed > 1000


def test_prod_runs_every_image_by_digest_set_by_the_release_step(tmp_path: Path) -> None:
    images = {c["image"] for o in render("prod") if o["kind"] in WORKLOADS for c in containers(o)}
    assert images and all(re.fullmatch(r"[a-z0-9./-]+@sha256:[0-9a-f]{64}", i) for i in images), images
    overlays = tmp_path / "overlays"
    shutil.copytree(K8S / "overlays" / "prod", overlays / "prod")
    shutil.copytree(K8S / "base", tmp_path / "base")
    released = "registry.example.org/trial/trial-backend@sha256:" + "ab" * 32
    subprocess.run(
        [sys.executable, str(ROOT / "deploy" / "pin_images.py"), released],
        check=True,
        capture_output=True,
        env={"PATH": "", "TRIAL_PROD_KUSTOMIZATION": str(overlays / "prod" / "kustomization.yaml")},
    )
    out = subprocess.run(
        ["kubectl", "kustomize", str(overlays / "prod")], capture_output=True, text=True, check=True
    ).stdout
    assert {c["image"] for o in yaml.safe_load_all(out) if o and o["kind"] in WORKLOADS for c in containers(o)} == {
        released
    }


def secret_files(deployment: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """File name under /run/secrets/trial → (secret, key), from the projected secrets volume."""
    [volume] = [v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "secrets"]
    return {
        item["path"]: (source["secret"]["name"], item["key"])
        for source in volume["projected"]["sources"]
        for item in source["secret"]["items"]
    }


def test_every_service_connects_as_its_own_bus_user_and_database_role_and_the_web_app_to_neither(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    _, objects = overlay
    [config] = [o for o in by_kind(objects, "ConfigMap") if o["metadata"]["name"] == "trial-config"]
    assert "NATS_URL" not in config["data"], "the bus URL carries a credential: it comes from a secret"
    for deployment in by_kind(objects, "Deployment"):
        name = deployment["metadata"]["name"]
        files = secret_files(deployment)
        if name == "web":  # the web app reaches the gateway only: no bus, no database, its session key alone
            assert files == {"web_session_key": ("trial-web-session", "key")}
            continue
        assert files["nats_url"] == ("trial-nats-users", name)
        expected_db = {"gateway": "trial-db-gateway", "reporting": "trial-db-projections"}.get(name)
        assert files.get("database_url", (None, None))[0] == expected_db, name


def test_the_development_bus_authorization_is_the_one_the_code_defines() -> None:
    auth = K8S / "overlays" / "dev" / "nats-auth"
    passwords = json.loads((auth / "passwords.json").read_text())
    assert (auth / "auth.conf").read_text() == nats_authorization(passwords)


def test_prod_encrypts_bus_and_database_connections_and_declares_the_service_roles() -> None:
    objects = render("prod")
    [config] = by_kind(objects, "ConfigMap")
    assert config["data"]["SSL_CERT_FILE"].startswith("/run/secrets/trial-ca/")
    for deployment in by_kind(objects, "Deployment"):
        mounts = deployment["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
        assert any(m["name"] == "trial-ca" for m in mounts), deployment["metadata"]["name"]
    [cluster] = by_kind(objects, "Cluster")
    assert {r["name"] for r in cluster["spec"]["managed"]["roles"]} == {"trial_projections", "trial_gateway"}
    values = yaml.safe_load((K8S / "overlays" / "prod" / "nats-values.yaml").read_text())
    assert values["config"]["nats"]["tls"]["enabled"] and values["config"]["cluster"]["tls"]["enabled"]
    assert values["config"]["merge"]["$include"].endswith("auth.conf")


def test_prod_nats_is_the_cluster_the_cluster_tests_run(tmp_path: Path) -> None:
    """Three nodes spread over hosts, fsync before every acknowledgement, every stream on each node: what
    `tests/chaos/test_cluster.py` and `make chaos CLUSTER=3` run (`NatsCluster`, `STREAM_REPLICAS`)."""
    values = yaml.safe_load((K8S / "overlays" / "prod" / "nats-values.yaml").read_text())
    tested = NatsCluster(tmp_path)
    assert values["config"]["cluster"]["enabled"] and values["config"]["cluster"]["replicas"] == len(tested.nodes)
    assert values["config"]["jetstream"]["enabled"] and values["config"]["jetstream"]["fileStore"]["enabled"]
    assert not values["config"]["jetstream"]["memoryStore"]["enabled"]
    node = next(iter(tested.nodes.values()))
    assert values["config"]["merge"]["jetstream"]["sync_interval"] == "always"
    assert "sync_interval: always" in node.config() and node.cluster is not None
    spread = values["podTemplate"]["topologySpreadConstraints"]["kubernetes.io/hostname"]
    assert (spread["maxSkew"], spread["whenUnsatisfiable"]) == (1, "DoNotSchedule")
    assert values["podDisruptionBudget"]["enabled"]
    [config] = by_kind(render("prod"), "ConfigMap")
    assert int(config["data"]["STREAM_REPLICAS"]) == len(tested.nodes)


def test_every_service_runs_and_is_scraped_for_metrics_on_its_health_port(
    overlay: tuple[str, list[dict[str, Any]]],
) -> None:
    name, objects = overlay
    [config] = [o for o in by_kind(objects, "ConfigMap") if o["metadata"]["name"] == "trial-config"]
    port = int(config["data"]["HEALTH_PORT"])
    deployments = {d["metadata"]["name"]: d for d in by_kind(objects, "Deployment")}
    assert set(deployments) == set(APPS)
    for service, deployment in deployments.items():
        template = deployment["spec"]["template"]
        assert template["metadata"]["annotations"] == {
            "prometheus.io/scrape": "true",
            "prometheus.io/port": str(port),
            "prometheus.io/path": "/metrics",
        }, service
        [container] = template["spec"]["containers"]
        assert {"name": "health", "containerPort": port, "protocol": "TCP"} in container["ports"], service
    [policy] = [p for p in by_kind(objects, "NetworkPolicy") if p["metadata"]["name"] == "metrics-from-monitoring"]
    assert policy["spec"]["podSelector"]["matchLabels"] == {"app.kubernetes.io/part-of": "trial-backend"}
    assert policy["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": port}]
    if name == "prod":
        [monitor] = by_kind(objects, "PodMonitor")
        assert monitor["spec"]["selector"]["matchLabels"] == {"app.kubernetes.io/part-of": "trial-backend"}
        assert monitor["spec"]["podMetricsEndpoints"] == [{"port": "health", "path": "/metrics", "interval": "15s"}]


def test_prod_alerts_use_only_metrics_the_services_export() -> None:
    [rules] = by_kind(render("prod"), "PrometheusRule")
    alerts = {r["alert"]: r for group in rules["spec"]["groups"] for r in group["rules"]}
    assert {"TrialSaeAlertUnacknowledged", "TrialSaeReactionLagging", "TrialDeadLetter"} <= set(alerts)
    exported = {s.name for family in REGISTRY.collect() for s in family.samples} | {
        family.name + suffix for family in REGISTRY.collect() for suffix in ("", "_total")
    }
    for name, rule in alerts.items():
        used = set(re.findall(r"\btrial_[a-z_]+", rule["expr"]))
        assert used and used <= exported, (name, used - exported)
        assert rule["labels"]["severity"] in {"critical", "warning"} and rule["annotations"]["summary"]


def dockerfile() -> dict[str, Any]:
    """What the image provides, read from the Dockerfile's final stage: its user, ports, entrypoint, the project
    folders it copies in (under its WORKDIR) and the environment it sets."""
    final = (ROOT / "Dockerfile").read_text().split("\nFROM ")[-1]
    copied = re.findall(r"^COPY (\w+) \./\w+$", (ROOT / "Dockerfile").read_text(), re.M)
    user, group = re.search(r"^USER (\d+):(\d+)$", final, re.M).groups()  # type: ignore[union-attr]
    return {
        "user": int(user),
        "group": int(group),
        "ports": {int(p) for line in re.findall(r"^EXPOSE (.+)$", final, re.M) for p in line.split()},
        "entrypoint": json.loads(re.search(r"^ENTRYPOINT (.+)$", final, re.M).group(1)),  # type: ignore[union-attr]
        "folders": set(copied),
        "workdir": re.search(r"^WORKDIR (\S+)$", final, re.M).group(1),  # type: ignore[union-attr]
    }


def test_the_overlays_ask_the_image_only_for_what_it_provides(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    """A command, a port, a user, a file named in the environment: each must be in the image; a mounted path must
    not hide the image's own code."""
    name, objects = overlay
    image = dockerfile()
    assert image["entrypoint"] == ["python", "-m"] and image["folders"] >= {"shared", "services", "ops", "protocol"}
    settings = {k: v for cm in by_kind(objects, "ConfigMap") for k, v in cm.get("data", {}).items()}
    ours = [(o, c) for o in objects if o["kind"] in WORKLOADS for c in containers(o) if "trial-backend" in c["image"]]
    assert len(ours) >= 9, "every service, the web app and the migration"
    for obj, c in ours:
        where = f"{name}: {obj['kind']}/{obj['metadata']['name']}/{c['name']}"
        assert "command" not in c, f"{where}: the image's entrypoint (python -m) runs the module its args name"
        module = c["args"][0]
        package = ROOT.joinpath(*module.split("."))
        assert module.split(".")[0] in image["folders"], f"{where}: {module} is not copied into the image"
        assert (package / "__main__.py").is_file() or package.with_suffix(".py").is_file(), f"{where}: no {module}"
        ports = {p["containerPort"] for p in c.get("ports", [])}
        assert ports <= image["ports"], f"{where}: ports {sorted(ports - image['ports'])} are not exposed"
        pod = obj["spec"]["template"]["spec"]["securityContext"]
        for context in (pod, c["securityContext"]):
            assert context.get("runAsUser", image["user"]) == image["user"], f"{where}: another user"
            assert context.get("runAsGroup", image["group"]) == image["group"], f"{where}: another group"
        mounts = [m["mountPath"] for m in c.get("volumeMounts", [])]
        hidden = [m for m in mounts if m == "/" or image["workdir"].startswith(m) or m.startswith(image["workdir"])]
        assert not hidden, f"{where}: {hidden} would hide the image's code"
        env = settings | {e["name"]: e.get("value", "") for e in c.get("env", [])}
        for key, value in env.items():
            if not str(value).startswith("/"):
                continue
            mounted = any(str(value).startswith(m) for m in mounts)
            in_image = (
                str(value).startswith(image["workdir"] + "/")
                and (ROOT / str(value).removeprefix(image["workdir"] + "/")).exists()
            )
            assert mounted or in_image, f"{where}: {key}={value} is neither mounted nor in the image"


def test_every_secret_file_is_readable_by_the_user_that_mounts_it(overlay: tuple[str, list[dict[str, Any]]]) -> None:
    """The kubelet writes secret files owned by root, with the mode asked; only a pod's fsGroup, made their group
    with read added, lets a non-root user read a file whose mode gives others nothing (0400 is unreadable by
    uid 10001 without it)."""
    name, objects = overlay
    checked = 0
    for obj in (o for o in objects if o["kind"] in WORKLOADS):
        pod = obj["spec"]["template"]["spec"]
        for volume in pod.get("volumes", []):
            declared = volume.get("secret") or volume.get("projected")
            if declared is None:
                continue
            items = [i for s in volume.get("projected", {}).get("sources", []) for i in s["secret"].get("items", [])]
            modes = {i.get("mode", declared.get("defaultMode", 0o644)) for i in items or [declared]}
            readable_by_others = all(mode & 0o004 for mode in modes)
            where = f"{name}: {obj['kind']}/{obj['metadata']['name']} volume {volume['name']}"
            assert readable_by_others or "fsGroup" in pod["securityContext"], f"{where}: unreadable without fsGroup"
            checked += 1
    assert checked >= 9


def test_a_dead_client_s_sessions_and_advisory_locks_end_within_a_minute_and_a_half() -> None:
    """A projection's leader holds a PostgreSQL advisory lock for as long as its session lives; a node that dies
    without closing its connections would keep it (and the projection stalled) until TCP keepalive gives up."""
    settings = {}
    for obj in render("dev"):
        if obj["kind"] == "StatefulSet" and obj["metadata"]["name"] == "postgres":
            args = obj["spec"]["template"]["spec"]["containers"][0]["args"]
            settings["dev"] = dict(a.split("=", 1) for a in args[2::2])
    for obj in render("prod"):
        if obj["kind"] == "Cluster":
            settings["prod"] = obj["spec"]["postgresql"]["parameters"]
    assert set(settings) == {"dev", "prod"}
    for name, given in settings.items():
        idle, interval, count = (int(given[f"tcp_keepalives_{k}"]) for k in ("idle", "interval", "count"))
        assert 0 < idle + interval * count <= 90, name
