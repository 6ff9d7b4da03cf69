"""Pin the prod overlay's images to the digests a release built and scanned: `make release-images
IMAGES="registry.example.org/trial/trial-backend@sha256:<64 hex>"` (one or more, space separated;
each name as the base names the image). The cluster then runs exactly what was checked; a tag can never
move under it."""

import os
import re
import sys
from pathlib import Path

PROD = Path(
    os.environ.get("TRIAL_PROD_KUSTOMIZATION")
    or Path(__file__).resolve().parent / "k8s" / "overlays" / "prod" / "kustomization.yaml"
)
PINNED = re.compile(r"^(?P<name>[a-z0-9][a-z0-9._:/-]*)@(?P<digest>sha256:[0-9a-f]{64})$")


def pin(kustomization: Path, pins: list[str]) -> None:
    """Set each image's digest in place: the file keeps its layout and comments."""
    text = kustomization.read_text()
    for entry in pins:
        match = PINNED.match(entry)
        if match is None:
            raise SystemExit(f"not IMAGE@sha256:<64 hex>: {entry}")
        entry_re = re.compile(rf"(- name: {re.escape(match['name'])}\n\s+digest: )sha256:[0-9a-f]{{64}}")
        text, found = entry_re.subn(rf"\g<1>{match['digest']}", text)
        if not found:
            raise SystemExit(f"no image {match['name']} with a digest in {kustomization}")
    kustomization.write_text(text)


if __name__ == "__main__":
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    pin(PROD, sys.argv[1:])
    print(f"pinned in {PROD}")
