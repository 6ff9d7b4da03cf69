"""Every dataset the trial exports by name, SDTM domains and ADaM datasets: one table for the HTTP exports
and the export command, one CSV layout, one define-style description."""

import csv
import io
import json
from collections.abc import Awaitable, Callable

from shared.contracts.protocol import ProtocolDefinition
from shared.readmodels import adam, sdtm
from shared.readmodels.dictionary import AeDictionary
from shared.runtime.postgres import Connection

Build = Callable[[Connection, ProtocolDefinition], Awaitable[sdtm.Rows]]

# In the order a reviewer reads them: SDTM (each supplemental dataset after its parent), then ADaM.
NAMES = ("DM", "SUPPDM", "IE", "DS", "PR", "SV", "AE", "SUPPAE", "DV", *adam.DATASETS)
DEFINE = {name: {**sdtm.DEFINE, **adam.DEFINE}[name] for name in NAMES}


def builders(dictionary: AeDictionary) -> dict[str, Build]:
    """Every dataset's builder; the adverse-event domains code their terms with the sponsor's dictionary."""

    def coded(build: Callable[[Connection, ProtocolDefinition, AeDictionary], Awaitable[sdtm.Rows]]) -> Build:
        return lambda conn, protocol: build(conn, protocol, dictionary)

    found: dict[str, Build] = {
        **sdtm.DOMAINS,
        **{name: coded(build) for name, build in sdtm.CODED_DOMAINS.items()},
        **adam.DATASETS,
    }
    return {name: found[name] for name in NAMES}


def to_csv(dataset: str, rows: sdtm.Rows) -> str:
    """The dataset's columns in the order its definition gives them, one row per record."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[v[0] for v in DEFINE[dataset]], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


Define = dict[str, list[dict[str, str]]]


def define() -> Define:
    return {
        name: [{"variable": v, "label": label, "type": kind, "origin": origin} for v, label, kind, origin in cols]
        for name, cols in DEFINE.items()
    }


def define_json() -> str:
    """define.json as every export writes it and the gateway serves it: the same bytes."""
    return json.dumps(define(), indent=2)
