"""`shared/` is in layers: the contracts the services agree on, how a service runs, and the read models' contract.
An import only runs down: `contracts` imports neither of the others, `runtime` never the read models, and nothing
in `shared/` imports a service, an operator command or the dev stack. The reports are the reporting service's."""

import ast
from pathlib import Path

import pytest

SHARED = Path(__file__).resolve().parents[3] / "shared"

# What each layer may import from the project, beside itself.
MAY_IMPORT = {
    "contracts": ("shared.contracts",),
    "runtime": ("shared.contracts", "shared.runtime"),
    "readmodels": ("shared.contracts", "shared.runtime", "shared.readmodels"),
}
PROJECT = ("shared", "services", "ops", "devstack", "bench", "chaos", "deploy", "tests")


def imported(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name.split(".")[0] in PROJECT}


@pytest.mark.parametrize("layer", sorted(MAY_IMPORT))
def test_imports_in_shared_run_down_its_layers(layer: str) -> None:
    wrong = {
        f"{path.relative_to(SHARED.parent)}: {name}"
        for path in sorted((SHARED / layer).rglob("*.py"))
        for name in imported(path)
        if not name.startswith(MAY_IMPORT[layer])
    }
    assert not wrong, f"imports against the layers: {sorted(wrong)}"


def test_the_read_models_contract_builds_no_report() -> None:
    """Report builders (SDTM, ODM, ADaM, CONSORT, pictures) live in `services/reporting/reports/`."""
    builders = {
        f"{path.name}: {name}"
        for path in (SHARED / "readmodels").glob("*.py")
        for name in imported(path) | {path.stem}
        if name.split(".")[-1] in {"sdtm", "odm", "adam", "consort", "endpoints", "pictures", "datasets", "trial"}
    }
    assert not builders, sorted(builders)
