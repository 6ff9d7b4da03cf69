"""`make kube-smoke`: the dev overlay run here as a cluster would run it, with podman, then used and hurt.

What `podman kube play` (4.3) plays it plays: each Deployment, with the ConfigMaps it reads. What it cannot play is
run from the same objects, as their controllers would run them, and the report says so:
- a StatefulSet: its pod `<name>-0` with its claim `data-<name>-0` (kube play skips StatefulSets);
- the migration Job: its containers in order, init containers first, each run to completion as a pod of the Job's
  template (kube play skips Jobs, and 4.3 fails a pod whose init container exits);
- secret and projected volumes: podman 4.3 mounts only hostPath, configMap, emptyDir and claim volumes, so each
  pod's secret files are written as the kubelet writes them (owner root; with an fsGroup, that group, read added;
  the mode asked) and mounted read-only from the host;
- a Service: an address of its own on the pods' network (added to the bridge), its name resolving to it in every
  pod (hostAliases), and kube-proxy's part done here: each new connection to a port of the Service goes to a
  ready pod it selects, in turn; a pod leaves before it is stopped;
- probes: run here against each pod (HTTP to the pod's address, `exec` in its container), as the kubelet runs them.
Not played, and said so in the report: see NOT_PLAYED.

Then, through the gateway's Service: every pod ready by its own probes; a consent, a screening, a randomization
and an SAE, whose alert the safety team's consumer receives with the safety team's own credentials; `trial export`
run as a Job's pod; each of two services' processes SIGKILLed under a load of writes and brought back by the restart
policy; every Deployment's pod replaced, one at a time, by a pod of a new image tag while the writes go on (the
manifests' maxSurge 1, maxUnavailable 0: the new pod ready before the old one leaves the Service and is stopped
within its grace period). Last, the record is checked as the crash test checks it (chaos/verify.py): every 201's
facts once and nothing else from any key, a retry answered the same, every SAE alert raised once, and every 5xx a
documented 503 with Retry-After. Figures in deploy/kube-smoke.json, for the README.
"""

import argparse
import asyncio
import base64
import collections
import copy
import functools
import ipaddress
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from chaos.load import Answer, Load
from chaos.verify import (
    Findings,
    check_alerts_raised,
    check_answers,
    check_read_models,
    check_retries,
    consumers_behind,
)
from deploy.image import ROOT, podman, render
from services.gateway.settings import key_ring
from shared.contracts.alerts import ALERTS_STREAM, SAFETY_TEAM_CONSUMER, AlertKind, SaeAlertMessage
from shared.contracts.protocol import load_protocol
from shared.runtime import bus
from shared.runtime.eventstore import EVENTS_PREFIX, EventStore, PullFeed
from shared.runtime.settings import DEFAULT_PROTOCOL_FILE

NETWORK = "trial-dev"
# The pods' addresses from the lower half of the network (podman hands them out in turn, run after run), the
# Services' from the upper half, so that the two never meet.
SUBNET = ipaddress.ip_network("10.90.0.0/24")
POD_ADDRESSES = ipaddress.ip_network("10.90.0.0/25")
NOT_PLAYED = {
    "Ingress": "no ingress controller here: the Services are used instead",
    "NetworkPolicy": "podman's bridge network enforces no policy",
    "PodDisruptionBudget": "no eviction API: the rolling update stops one pod at a time itself",
    "ServiceAccount": "no API server (and every pod sets automountServiceAccountToken: false)",
    "Namespace": "no API server: the pods share one podman network instead",
}
# How often a probe is tried while a pod is not ready: often enough to time readiness, seldom enough to leave the
# cores to the pods (the kubelet's period is the manifests' 2–10 s).
PROBE_SECONDS = 0.5
KILLED = ("gateway", "safety")  # the door every write comes through, and the one that raises SAE alerts
REPORT = ROOT / "deploy" / "kube-smoke.json"


def say(text: str) -> None:
    print(f"kube-smoke: {text}", flush=True)


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def template_of(workload: dict[str, Any]) -> dict[str, Any]:
    template: dict[str, Any] = workload["spec"]["template"]
    return template


def every_container(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


@dataclass
class Pod:
    """A pod played here: its podman name, its containers as the manifest declares them, its address."""

    name: str
    labels: dict[str, str]
    spec: dict[str, Any]
    address: str
    started: float
    ready_after: float | None = None

    def port(self, port: int | str) -> int:
        """A port by number, or by the name a container gives it."""
        if isinstance(port, int):
            return port
        return next(
            int(p["containerPort"])
            for c in self.spec["containers"]
            for p in c.get("ports", ())
            if p.get("name") == port
        )

    def container(self, name: str) -> str:
        return f"{self.name}-{name}"

    def logs(self, lines: int = 40) -> str:
        said = [podman("logs", "--tail", str(lines), self.container(c["name"]), capture=True, check=False)
                for c in self.spec["containers"]]  # fmt: skip
        return "\n".join(s.stdout + s.stderr for s in said)


@dataclass
class Cluster:
    """The rendered dev overlay, played on one podman network by this process as the cluster's controllers."""

    objects: list[dict[str, Any]]
    work: Path
    image: str  # the project's image here, for the name the overlay gives it (kustomize's `images:`)
    services: dict[str, "Service"] = field(default_factory=dict)
    proxies: "Proxies" = field(default_factory=lambda: Proxies())
    played: dict[str, str] = field(default_factory=dict)  # object → how it ran here
    live: dict[str, Pod] = field(default_factory=dict)  # the pods running, by name
    # One client for every HTTP probe, as the kubelet keeps one: a client per probe would spend this process's
    # time (and the Services' thread's share of the interpreter) on making TLS contexts.
    prober: httpx.AsyncClient = field(default_factory=httpx.AsyncClient)

    def named(self, kind: str, name: str) -> dict[str, Any]:
        return next(o for o in of_kind(self.objects, kind) if o["metadata"]["name"] == name)

    def secret(self, name: str) -> dict[str, str]:
        secret = self.named("Secret", name)
        return {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()} | (
            secret.get("stringData") or {}
        )

    def reached(self, url: str) -> str:
        """A URL the pods use, by a Service's name, as this host reaches it: by the Service's address."""
        parts = urllib.parse.urlsplit(url)
        login = f"{parts.username}:{parts.password}@" if parts.username else ""
        service = self.services[parts.hostname or ""]
        return parts._replace(netloc=f"{login}{service.address}:{parts.port or 80}").geturl()

    # What the kubelet does that podman 4.3 does not.

    def mount_secrets(self, pod: str, spec: dict[str, Any]) -> None:
        """Each secret or projected volume of the pod made a folder of files on the host, mounted read-only."""
        group = spec.get("securityContext", {}).get("fsGroup")
        for volume in spec.get("volumes", []):
            if "secret" in volume:
                declared = volume["secret"]
                sources = [{"secret": {"name": declared["secretName"], "items": declared.get("items")}}]
            elif "projected" in volume:
                declared = volume["projected"]
                sources = volume["projected"]["sources"]
            else:
                continue
            folder = self.work / "volumes" / pod / volume["name"]
            folder.mkdir(parents=True)
            for source in sources:
                data = self.secret(source["secret"]["name"])
                for item in source["secret"].get("items") or [{"key": k, "path": k} for k in data]:
                    path = folder / item["path"]
                    path.write_text(data[item["key"]])
                    mode = item.get("mode", declared.get("defaultMode", 0o644))
                    if group is not None:  # the kubelet's volume ownership: the fsGroup's, readable by it
                        os.chown(path, 0, group)
                        mode |= 0o440
                    path.chmod(mode)
            name = volume["name"]
            volume.clear()
            volume |= {"name": name, "hostPath": {"path": str(folder), "type": "Directory"}}
            for container in every_container(spec):
                for mount in container.get("volumeMounts", []):
                    if mount["name"] == name:
                        mount["readOnly"] = True

    async def probe(self, pod: Pod, container: dict[str, Any], probe: dict[str, Any]) -> bool:
        if "httpGet" in probe:
            get = probe["httpGet"]
            try:
                answer = await self.prober.get(
                    f"http://{pod.address}:{pod.port(get['port'])}{get.get('path', '/')}",
                    timeout=probe.get("timeoutSeconds", 1),
                )
            except httpx.HTTPError:
                return False
            return 200 <= answer.status_code < 400
        if "exec" in probe:
            command = ["exec", pod.container(container["name"]), *probe["exec"]["command"]]
            return (await asyncio.to_thread(podman, *command, capture=True, check=False)).returncode == 0
        raise ValueError(f"{pod.name}: a probe this smoke does not run: {sorted(probe)}")

    async def ready(self, pod: Pod, timeout: float = 120.0) -> float:
        """Seconds from the pod's start until each container's readiness probe passes (the kubelet's Ready)."""
        deadline = time.monotonic() + timeout
        for container in pod.spec["containers"]:
            probe = container.get("readinessProbe") or container.get("startupProbe")
            while probe is not None and not await self.probe(pod, container, probe):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{pod.name}/{container['name']} not ready in {timeout:.0f} s:\n{pod.logs()}")
                await asyncio.sleep(PROBE_SECONDS)
        pod.ready_after = round(time.monotonic() - pod.started, 1)
        for service in self.services.values():
            service.add(pod)
        return pod.ready_after

    def unready(self, pod: Pod) -> None:
        """Out of every Service, as when its readiness fails or it is being deleted."""
        for service in self.services.values():
            service.remove(pod)

    def retire(self, pod: Pod) -> None:
        """Out of every Service, then SIGTERM and, after the grace period, SIGKILL: a pod deleted."""
        self.unready(pod)
        grace = pod.spec.get("terminationGracePeriodSeconds", 30)
        # Its containers first, as the kubelet stops them: `podman pod stop` would take the pod's network away
        # with them, under a process still finishing its work over it.
        containers = [pod.container(c["name"]) for c in pod.spec["containers"]]
        podman("stop", "--time", str(grace), *containers, capture=True)
        podman("pod", "stop", pod.name, capture=True)
        self.keep_logs(pod)
        podman("pod", "rm", "--force", pod.name, capture=True)
        del self.live[pod.name]

    def keep_logs(self, pod: Pod) -> None:
        """The pod's logs, kept in the work folder beyond the pod (logs/<pod>.log)."""
        (self.work / "logs").mkdir(exist_ok=True)
        (self.work / "logs" / f"{pod.name}.log").write_text(pod.logs(lines=100000))

    def unmounted_writes(self, pod: Pod) -> list[str]:
        """Each path a container of the project's image can write that no writable mount of its manifest
        accounts for (the kernel's /dev, /proc and /sys aside): with a read-only root, there must be none."""
        found = []
        for container in pod.spec["containers"]:
            mounts = [m["mountPath"] for m in container.get("volumeMounts", []) if not m.get("readOnly")]
            listed = podman(
                "exec", pod.container(container["name"]), "find", "/", "(", "-path", "/proc", "-o", "-path", "/sys",
                "-o", "-path", "/dev", ")", "-prune", "-o", "-writable", "-print", capture=True, check=False,
            ).stdout.split()  # fmt: skip
            found += [
                f"{container['name']}: {p}" for p in listed if not any(p == m or p.startswith(m + "/") for m in mounts)
            ]
        return found

    # Playing.

    @property
    def overlay_image(self) -> str:
        """The project's image as the overlay names it: what every Deployment runs."""
        image: str = template_of(of_kind(self.objects, "Deployment")[0])["spec"]["containers"][0]["image"]
        return image

    def play(
        self, workload: dict[str, Any], pod_name: str, *, claims: tuple[dict[str, Any], ...] = (), image: str = ""
    ) -> Pod:
        """`podman kube play` of one workload (a Deployment, or a Pod made from another object) with the ConfigMaps
        and its claims, on the network, every Service's name in its hosts."""
        workload = copy.deepcopy(workload)
        template = workload if workload["kind"] == "Pod" else template_of(workload)
        declared = copy.deepcopy(template["spec"])
        spec = template["spec"]
        self.mount_secrets(pod_name, spec)
        for container in every_container(spec):
            if container["image"] == self.overlay_image:
                container["image"] = image or self.image
            container["imagePullPolicy"] = "IfNotPresent"  # no registry here: the images `make image` made
            # podman 4.3 publishes each containerPort on the host, which a cluster never does: pods are reached
            # at their own addresses instead, as in a cluster.
            container.pop("ports", None)
        spec["hostAliases"] = [{"ip": s.address, "hostnames": [s.name]} for s in self.services.values()]
        playing = self.work / f"{pod_name}.yaml"
        playing.write_text(yaml.safe_dump_all([*of_kind(self.objects, "ConfigMap"), *claims, workload]))
        started = time.monotonic()
        played = podman("kube", "play", "--network", NETWORK, str(playing), capture=True, check=False)
        if played.returncode != 0:
            raise RuntimeError(f"{pod_name}: podman kube play failed: {played.stderr.strip()}")
        infra = json.loads(podman("pod", "inspect", pod_name, capture=True).stdout)["InfraContainerID"]
        networks = podman("inspect", infra, "--format", "{{json .NetworkSettings.Networks}}", capture=True).stdout
        address = json.loads(networks)[NETWORK]["IPAddress"]
        self.live[pod_name] = Pod(pod_name, template["metadata"].get("labels", {}), declared, address, started)
        return self.live[pod_name]

    def stateful(self, name: str) -> Pod:
        """A StatefulSet's one pod, `<name>-0`, and its claims, as the StatefulSet controller makes them."""
        stateful = self.named("StatefulSet", name)
        pod_name = f"{name}-0"
        template = copy.deepcopy(template_of(stateful))
        claims = []
        for claim in stateful["spec"].get("volumeClaimTemplates", []):
            claim_name = f"{claim['metadata']['name']}-{pod_name}"
            claims.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": claim_name},
                           "spec": claim["spec"]})  # fmt: skip
            template["spec"].setdefault("volumes", []).append(
                {"name": claim["metadata"]["name"], "persistentVolumeClaim": {"claimName": claim_name}}
            )
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": pod_name, **template["metadata"]},
               "spec": template["spec"] | {"restartPolicy": "Always"}}  # fmt: skip
        self.played[f"StatefulSet/{name}"] = (
            f"as pod {pod_name}, claims {', '.join(c['metadata']['name'] for c in claims)}"
        )
        return self.play(pod, pod_name, claims=tuple(claims))

    async def completed(self, name: str, template: dict[str, Any], container: dict[str, Any]) -> None:
        """One container of a pod template run to completion as a pod of its own; a non-zero exit is a failure."""
        spec = {k: v for k, v in template["spec"].items() if k not in ("initContainers", "containers")}
        pod_object = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
                      "spec": spec | {"containers": [container], "restartPolicy": "Never"}}  # fmt: skip
        pod = self.play(pod_object, name)
        container_name = pod.container(container["name"])
        deadline = time.monotonic() + 180
        while (state := podman("inspect", container_name, "--format", "{{.State.Status}} {{.State.ExitCode}}",
                               capture=True).stdout.split())[0] not in ("exited", "stopped"):  # fmt: skip
            if time.monotonic() > deadline:
                raise RuntimeError(f"{name}: still running after 180 s:\n{pod.logs()}")
            await asyncio.sleep(0.5)
        if state[1] != "0":
            raise RuntimeError(f"{name}: exited {state[1]}:\n{pod.logs()}")
        self.keep_logs(pod)
        podman("pod", "rm", "--force", name, capture=True)
        del self.live[name]

    async def job(self, name: str) -> list[str]:
        job = self.named("Job", name)
        template = template_of(job)
        steps = every_container(template["spec"])
        for step in steps:
            await self.completed(f"{name}-{step['name']}", template, step)
        self.played[f"Job/{name}"] = f"its containers in order, each as a pod: {', '.join(s['name'] for s in steps)}"
        return [s["name"] for s in steps]

    def deployment(self, name: str, image: str, revision: str) -> Pod:
        """A Deployment's pod, played by podman, with the image set (as kustomize's `images:` sets it)."""
        deployment = copy.deepcopy(self.named("Deployment", name))
        deployment["metadata"]["name"] = f"{name}-{revision}"  # a ReplicaSet's pods are named by their revision
        self.played[f"Deployment/{name}"] = "podman kube play"
        return self.play(deployment, f"{name}-{revision}-pod-0", image=image)


class Service:
    """A Service as kube-proxy serves it: at its own address, each new connection to one of its ports goes to a
    ready pod it selects, in turn; a pod taken out gets no new connection, and its open ones end when it ends them."""

    def __init__(self, declared: dict[str, Any], address: str) -> None:
        self.name: str = declared["metadata"]["name"]
        self.selector: dict[str, str] = declared["spec"].get("selector") or {}
        self.ports: list[dict[str, Any]] = declared["spec"]["ports"]
        self.address = address
        self.endpoints: list[Pod] = []
        self._turn = 0
        self._servers: list[asyncio.Server] = []

    async def start(self) -> None:
        for port in self.ports:
            serve = functools.partial(self._connection, target=port.get("targetPort", port["port"]))
            self._servers.append(await asyncio.start_server(serve, self.address, port["port"]))

    def close(self) -> None:
        for server in self._servers:
            server.close()

    def add(self, pod: Pod) -> None:
        if (
            self.selector
            and all(pod.labels.get(k) == v for k, v in self.selector.items())
            and pod not in self.endpoints
        ):
            self.endpoints.append(pod)

    def remove(self, pod: Pod) -> None:
        if pod in self.endpoints:
            self.endpoints.remove(pod)

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, target: int | str) -> None:
        self._turn += 1
        try:
            pod = self.endpoints[self._turn % len(self.endpoints)]
            upstream_reader, upstream_writer = await asyncio.open_connection(pod.address, pod.port(target))
        except (ZeroDivisionError, OSError):
            writer.close()  # no ready pod: the connection is refused, as by a Service without endpoints
            return

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except OSError:
                pass
            finally:
                sink.close()

        try:
            await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))
        except asyncio.CancelledError:  # the Service closed under an open connection: the connection ends with it
            writer.close()
            upstream_writer.close()


async def first_subject(load: Load, safety_team_url: str) -> dict[str, Any]:
    """One subject through the trial, by the gateway's Service, to an SAE; its alert as the safety team gets it."""
    site = load.sites[0]
    subject = f"{site}-001"
    token = load.token(site)
    answers: list[Answer] = []
    async with httpx.AsyncClient(base_url=load.gateway_url, timeout=10) as http:
        for form, route, body in load.steps(serious=True):
            path = f"/v1/sites/{site}/subjects/{subject}/{route}"
            answer = await load.send(http, token, form, site, subject, path, body)
            if not answer.recorded:
                raise RuntimeError(f"{form} for {subject}: {answer.status} {answer.body}")
            answers.append(answer)
            load.answers.append(answer)
    ae_id = answers[-1].body["ae_id"]
    reported = time.monotonic()
    nc = await bus.connect(safety_team_url, name="trial-kube-smoke-safety-team")
    try:
        async with PullFeed(nc.jetstream(), ALERTS_STREAM, SAFETY_TEAM_CONSUMER, batch=16) as inbox:
            while time.monotonic() - reported < 30:
                for msg in await inbox.next():
                    alert = SaeAlertMessage.model_validate_json(msg.data)
                    await msg.ack_sync()
                    if alert.kind is AlertKind.RAISED and str(alert.ae_id) == ae_id:
                        return {
                            "subject": subject,
                            "answers": {a.form: a.status for a in answers},
                            "arm": answers[2].body.get("arm"),
                            "sae_alert_after_its_201_s": round(time.monotonic() - reported, 2),
                        }
    finally:
        await nc.close()
    raise RuntimeError(f"no SAE alert for {ae_id} reached the safety team in 30 s")


async def kill(cluster: Cluster, pod: Pod) -> dict[str, Any]:
    """SIGKILL to the pod's process, as the kernel's OOM killer sends it: its restart policy starts it again, and
    it is back in its Services when its readiness probe passes."""
    name = pod.container(pod.spec["containers"][0]["name"])
    pid, restarts = podman("inspect", name, "--format", "{{.State.Pid}} {{.RestartCount}}", capture=True).stdout.split()
    cluster.unready(pod)
    os.kill(int(pid), signal.SIGKILL)
    pod.started = time.monotonic()
    while podman("inspect", name, "--format", "{{.RestartCount}}", capture=True).stdout.strip() == restarts:
        if time.monotonic() - pod.started > 60:
            raise RuntimeError(f"{name}: not restarted 60 s after SIGKILL")
        await asyncio.sleep(0.2)
    return {"container": name, "back_and_ready_s": await cluster.ready(pod)}


async def rolling_update(cluster: Cluster, pods: dict[str, Pod], image: str, revision: str) -> dict[str, Any]:
    """Each Deployment in turn, as its strategy says (maxSurge 1, maxUnavailable 0): a pod of the new revision,
    ready and in its Services, then the old one out of them and stopped within its grace period."""
    replaced = {}
    started = time.monotonic()
    for name, old in list(pods.items()):
        new = await asyncio.to_thread(cluster.deployment, name, image, revision)
        await cluster.ready(new)
        stopping = time.monotonic()
        await asyncio.to_thread(cluster.retire, old)
        replaced[name] = {
            "new_pod_ready_s": new.ready_after,
            "old_pod_stopped_s": round(time.monotonic() - stopping, 1),
        }
        pods[name] = new
        say(f"{name}: {new.name} ready in {new.ready_after} s, {old.name} stopped")
    return {"services": replaced, "seconds": round(time.monotonic() - started, 1)}


async def verify(
    load: Load, admin_url: str, reporting_url: str, findings: Findings, settle_seconds: float = 60.0
) -> None:
    """The record after the faults, as the crash test checks it, once every consumer of the record has caught up:
    every answer against the record, every SAE alert, every request again, the read models against a rebuild."""
    nc = await bus.connect(admin_url, name="trial-kube-smoke-verify")
    try:
        js = nc.jetstream()
        deadline = time.monotonic() + settle_seconds
        while behind := await consumers_behind(nc, js):
            if time.monotonic() > deadline:
                findings.problems.append(f"consumers still behind after {settle_seconds:.0f} s: {behind}")
                break
            await asyncio.sleep(0.5)
        events = (await EventStore(js).load(f"{EVENTS_PREFIX}.>")).events
        findings.counts["events"] = len(events)
        check_answers(load.answers, events, findings)
        await check_alerts_raised(js, load.answers, findings)
        await check_read_models(js, reporting_url, findings)
    finally:
        await nc.close()
    await check_retries(load.gateway_url, load, findings)
    other = {said: n for said, n in load.not_now.items() if said.startswith("5") and said != "503 with Retry-After"}
    findings.check(not other, f"5xx answers other than a 503 with Retry-After: {other}")


async def export(cluster: Cluster) -> dict[str, Any]:
    """`trial export` as a Job's pod of the reporting service's template: its credentials, a folder for the files."""
    out = cluster.work / "exports"
    out.mkdir()
    reporting = copy.deepcopy(template_of(cluster.named("Deployment", "reporting")))
    os.chown(out, reporting["spec"]["securityContext"]["runAsUser"], reporting["spec"]["securityContext"]["runAsGroup"])
    container = reporting["spec"]["containers"][0]
    for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
        container.pop(probe, None)
    container["args"] = ["ops", "export", "--out", "/exports"]
    container["volumeMounts"].append({"name": "exports", "mountPath": "/exports"})
    reporting["spec"]["volumes"].append({"name": "exports", "hostPath": {"path": str(out), "type": "Directory"}})
    await cluster.completed("trial-export", reporting, container)
    files = sorted(p.name for p in out.iterdir())
    if "dm.csv" not in files:
        raise RuntimeError(f"trial export wrote no dm.csv: {files}")
    return {"files": len(files), "subjects_in_DM": len((out / "dm.csv").read_text().splitlines()) - 1}


def clear() -> None:
    """What an earlier run left: its pods, its claims' volumes, its network (and the Services' addresses on it)."""
    listed = podman("pod", "ps", "--filter", f"network={NETWORK}", "--format", "{{.Name}}", capture=True, check=False)
    for name in listed.stdout.split():
        podman("pod", "rm", "--force", "--time", "0", name, capture=True, check=False)
    for volume in podman("volume", "ls", "--format", "{{.Name}}", capture=True).stdout.split():
        if volume.startswith("data-") and volume.endswith("-0"):
            podman("volume", "rm", "--force", volume, capture=True, check=False)
    podman("network", "rm", "--force", NETWORK, capture=True, check=False)


class Proxies:
    """kube-proxy's part, on a thread of its own as it is a process of its own: the Services go on serving while
    this process waits on podman (a pod's graceful stop takes up to its grace period)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="services", daemon=True)

    def start(self, services: dict[str, Service]) -> None:
        self._thread.start()
        for service in services.values():
            asyncio.run_coroutine_threadsafe(service.start(), self.loop).result()

    def call(self, function: Any, *args: Any) -> None:
        self.loop.call_soon_threadsafe(function, *args)

    def stop(self, services: dict[str, Service]) -> None:
        """Every Service closed, and every connection through it."""

        async def closed() -> None:
            for service in services.values():
                service.close()
            links = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for link in links:
                link.cancel()
            await asyncio.gather(*links, return_exceptions=True)

        if self._thread.is_alive():
            asyncio.run_coroutine_threadsafe(closed(), self.loop).result()
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join()
        self.loop.close()


def services(objects: list[dict[str, Any]]) -> dict[str, Service]:
    """Each Service at an address of its own, at the top of the network (the pods' are in the lower half)."""
    return {
        declared["metadata"]["name"]: Service(declared, str(SUBNET[-2 - number]))
        for number, declared in enumerate(of_kind(objects, "Service"))
    }


def hardware_address(interface: str) -> str:
    return Path(f"/sys/class/net/{interface}/address").read_text().strip()


def open_services(cluster: Cluster) -> tuple[str, str]:
    """The Services' addresses added to the network's bridge (which podman makes with its first pod), and served.

    The bridge's hardware address is pinned first, as a node's pod bridge keeps one (the CNI bridge plugin sets it;
    netavark does from 1.9, and this machine's is older). A Linux bridge left to itself takes the lowest address of
    its ports, so a pod leaving the network (a Job's pod, an old pod of a rolling update) could change it: every
    other pod's neighbour entry for the Services' addresses would then name a port that is gone, and their
    connections to the Services would hang until those entries expire, 40 to 100 s later."""
    bridge = json.loads(podman("network", "inspect", NETWORK, capture=True).stdout)[0]["network_interface"]
    address = hardware_address(bridge)
    subprocess.run(["ip", "link", "set", "dev", bridge, "address", address], check=True)
    for service in cluster.services.values():
        subprocess.run(["ip", "address", "add", f"{service.address}/32", "dev", bridge], check=True)
    cluster.proxies.start(cluster.services)
    return bridge, address


async def smoke(tag: str, *, keep: bool) -> dict[str, Any]:
    image = f"localhost/{tag}"
    podman("tag", image, f"{image}-next")
    objects = render("dev")
    clear()
    podman("network", "create", "--subnet", str(SUBNET), "--ip-range", str(POD_ADDRESSES), NETWORK, capture=True)
    cluster = Cluster(objects, Path(tempfile.mkdtemp(prefix="trial-kube-smoke-")), image)
    report: dict[str, Any] = {"image": tag, "next_image": f"{tag}-next"}
    try:
        cluster.services = services(objects)
        say("the StatefulSets' pods: nats-0, postgres-0")
        servers = {name: cluster.stateful(name) for name in ("nats", "postgres")}
        bridge, pinned = open_services(cluster)
        for pod in servers.values():
            await cluster.ready(pod)
        say("the migration Job: " + ", ".join(await cluster.job("trial-migrate")))
        names = [d["metadata"]["name"] for d in of_kind(objects, "Deployment")]
        pods = {name: cluster.deployment(name, image, "r1") for name in names}
        await asyncio.gather(*(cluster.ready(pod) for pod in pods.values()))
        report["ready_s"] = {name: pod.ready_after for name, pod in (servers | pods).items()}
        report["writable_beyond_the_mounts"] = [path for pod in pods.values() for path in cluster.unmounted_writes(pod)]
        say("ready, seconds from pod start: " + ", ".join(f"{k} {v}" for k, v in report["ready_s"].items()))
        report["played"] = (
            cluster.played
            | {
                f"ConfigMap/{o['metadata']['name']}": "podman kube play, with each workload"
                for o in of_kind(objects, "ConfigMap")
            }
            | {
                f"Secret/{o['metadata']['name']}": "its files, as the kubelet writes them, mounted from the host"
                for o in of_kind(objects, "Secret")
            }
            | {
                f"Service/{name}": f"at {service.address}, its name in every pod's hosts, connections to its ready pods"
                for name, service in cluster.services.items()
            }
        )
        report["not_played"] = {
            f"{o['kind']}/{o['metadata']['name']}": NOT_PLAYED[o["kind"]] for o in objects if o["kind"] in NOT_PLAYED
        }
        for kind, why in NOT_PLAYED.items():
            names = [o["metadata"]["name"] for o in of_kind(objects, kind)]
            say(f"not played: {kind} {', '.join(names)}: {why}")
        users = cluster.secret("trial-nats-users")
        admin_url = cluster.reached(users["admin"])
        gateway_url = cluster.reached(cluster.named("ConfigMap", "trial-config")["data"]["GATEWAY_URL"])
        keys = key_ring(cluster.secret("trial-gateway-token-keys")["keys"])
        sites = tuple(s.code for s in load_protocol(DEFAULT_PROTOCOL_FILE).sites)
        load = Load(gateway_url, keys, sites, clients=4)
        report["first_subject"] = await first_subject(load, cluster.reached(users["safety-team"]))
        say(f"a subject through the trial to an SAE, its alert received by the safety team: {report['first_subject']}")
        report["export"] = await export(cluster)
        say(f"trial export, as a Job's pod: {report['export']}")
        stop = asyncio.Event()
        writes = asyncio.create_task(load.run(stop))
        await asyncio.sleep(5)
        report["killed"] = []
        for name in KILLED:
            report["killed"].append(killed := await kill(cluster, pods[name]))
            say(f"SIGKILL: {killed}")
            await asyncio.sleep(3)
        say(f"a rolling update to {tag}-next under load")
        report["rolling_update"] = await rolling_update(cluster, pods, f"{image}-next", "r2")
        await asyncio.sleep(3)
        stop.set()
        await writes
        findings = Findings()
        reporting_url = cluster.reached(cluster.secret("trial-db-projections")["uri"])
        await verify(load, admin_url, reporting_url, findings)
        report["writes"] = {
            "answers": dict(collections.Counter(str(a.status) for a in load.answers)),
            "refused": dict(
                collections.Counter(f"{a.status} {a.body.get('rule')}" for a in load.answers if not a.recorded)
            ),
            "retried_not_now": dict(load.not_now),
            "connections_retried": load.transport_errors,
        } | findings.counts
        report["problems"] = findings.problems + [
            f"writable beyond its mounts: {path}" for path in report["writable_beyond_the_mounts"]
        ]
        if (now := hardware_address(bridge)) != pinned:
            report["problems"].append(f"the network's bridge changed its hardware address, {pinned} → {now}")
        return report
    finally:
        await cluster.prober.aclose()
        cluster.proxies.stop(cluster.services)
        for pod in cluster.live.values():
            cluster.keep_logs(pod)
        say(f"every pod's log: {cluster.work / 'logs'}")
        if not keep:
            clear()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.kube_smoke", description=__doc__)
    built = ROOT / "deploy" / "image.json"
    parser.add_argument(
        "--image", default=json.loads(built.read_text())["image"] if built.exists() else None,
        help="the image `make image` built (default: the one deploy/image.json names)",
    )  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="leave the pods running afterwards")
    args = parser.parse_args()
    if not args.image:
        print("no image: run `make image` first", file=sys.stderr)
        return 2
    report = asyncio.run(smoke(args.image, keep=args.keep))
    REPORT.write_text(json.dumps(report, indent=2) + "\n")
    for problem in report["problems"]:
        say(f"PROBLEM: {problem}")
    say(("passed" if not report["problems"] else "FAILED") + f": {REPORT.relative_to(ROOT)}")
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
