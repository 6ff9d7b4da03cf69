# Everything installs from this repository's own files: uv from PyPI, then the locked environment.
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
PY := $(VENV)/bin/python
export UV_PROJECT_ENVIRONMENT := $(VENV)
# Byte-compile at install: where PYTHONDONTWRITEBYTECODE is set nothing is ever cached, and every service
# start (every restart, every pod) would compile all its imports again (about 1 s per service here).
export UV_COMPILE_BYTECODE := 1

.PHONY: setup browser load-tool run test screenshots test-unit lint format bench chaos clean-data release-images image kube-smoke release

$(UV):
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet uv==$(UV_VERSION)

$(VENV)/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --frozen --quiet
	touch $@

# The policy scanner pins libraries the project's tests can't share: it gets an environment of its own.
$(TOOLS)/checkov/.synced: deploy/policy-requirements.txt | $(UV)
	$(UV) venv --quiet --allow-existing $(TOOLS)/checkov --python python3
	VIRTUAL_ENV=$(TOOLS)/checkov $(UV) pip sync --quiet deploy/policy-requirements.txt
	touch $@

# A real browser for the report-page test: Debian's chromium, which Playwright drives (its own browser
# download is not used). Installed when missing, as root (CI is root); otherwise say what to do.
browser:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
		|| { echo "chromium is missing and could not be installed: run 'apt-get install -y chromium' as root"; exit 1; }

# A compiled HTTP load generator for the benchmarks (Debian's wrk), so the load does not take the cores it
# measures. Installed when missing, as root; otherwise say what to do.
load-tool:
	@command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; } \
		|| { echo "wrk is missing and could not be installed: run 'apt-get install -y wrk' as root"; exit 1; }

# The development OpenID Connect provider (node-oidc-provider, devstack/identity/), from its lock file. Node and
# npm come with the machine image; installed from Debian when missing, as root; otherwise say what to do.
IDENTITY := devstack/identity
$(IDENTITY)/node_modules/.installed: $(IDENTITY)/package.json $(IDENTITY)/package-lock.json
	@command -v npm >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nodejs npm >/dev/null; } \
		|| { echo "node and npm are missing and could not be installed: run 'apt-get install -y nodejs npm' as root"; exit 1; }
	npm ci --prefix $(IDENTITY) --no-audit --no-fund --loglevel=error
	touch $@

# axe-core, the accessibility checker the browser tests inject into every page, from its lock file.
AXE := tests/e2e/axe
$(AXE)/node_modules/.installed: $(AXE)/package.json $(AXE)/package-lock.json $(IDENTITY)/node_modules/.installed
	npm ci --prefix $(AXE) --no-audit --no-fund --loglevel=error
	touch $@

setup: $(VENV)/.synced $(TOOLS)/checkov/.synced $(IDENTITY)/node_modules/.installed
	$(PY) -m compileall -q -j0 shared services ops devstack chaos bench deploy

# `make run CLUSTER=3`: the same system on a three-node JetStream cluster (streams replicated on each node).
run: setup
	CLUSTER=$(CLUSTER) $(PY) -m devstack

test: setup browser $(AXE)/node_modules/.installed
	$(PY) -m pytest

# The web app's main pages in a real browser, for the README (docs/screenshots/).
screenshots: setup browser $(AXE)/node_modules/.installed
	@fc-list :lang=zh | grep -q . || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-wqy-zenhei >/dev/null; } \
		|| echo "no Chinese font: run 'apt-get install -y fonts-wqy-zenhei' as root for the Chinese labels in the pictures"
	mkdir -p docs/screenshots
	SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(PY) -m pytest -q tests/e2e/test_web.py tests/e2e/test_web_day.py

test-unit: setup
	$(PY) -m pytest tests/unit

bench: setup load-tool browser
	$(PY) -m bench $(if $(CLUSTER),--cluster $(CLUSTER))
	$(PY) -m bench.pages

# Every component SIGKILLed under load, three rounds; `make test` runs one shorter round. `make chaos
# CLUSTER=3`: on a three-node cluster, the event stream's leader, a follower and the metadata leader killed
# and a node cut off, each round.
chaos: setup
	$(PY) -m chaos $(if $(CLUSTER),--cluster $(CLUSTER))

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: setup
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

clean-data:
	rm -rf data

# The project's image with podman (Debian's podman, runc and debootstrap, installed when missing, as root): the
# Dockerfile's base pulled where a registry answers, else made from Debian's packages; its size, start-up and
# bill of materials in deploy/image.json and deploy/sbom.cdx.json.
image: setup
	@command -v podman >/dev/null && command -v runc >/dev/null && command -v debootstrap >/dev/null \
		|| { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap >/dev/null; } \
		|| { echo "podman is missing and could not be installed: run 'apt-get install -y podman runc debootstrap' as root"; exit 1; }
	$(PY) -m deploy.image

# The dev overlay played with podman from the images `make image` built, then used and hurt: a subject to an SAE
# alert, `trial export` as a Job, SIGKILLs and a rolling update under writes, the record checked (deploy/kube_smoke.py).
kube-smoke: setup
	@test -f deploy/image.json || { echo "no image: run 'make image' first"; exit 1; }
	$(PY) -m deploy.kube_smoke

# The release: the image `make image` built pushed to TO (a registry's name:tag, or oci:DIR:TAG), and the prod
# overlay pinned to the digest the push reports: make release TO=registry.example.org/trial/trial-backend:0.2.0
release: setup
	@test -n "$(TO)" || { echo "say where: make release TO=REGISTRY/NAME:TAG"; exit 1; }
	$(PY) -m deploy.image --release $(TO)

# Pin prod to the release's image digests: make release-images IMAGES="trial-backend=REGISTRY/NAME@sha256:..."
release-images: setup
	$(PY) deploy/pin_images.py $(IMAGES)
