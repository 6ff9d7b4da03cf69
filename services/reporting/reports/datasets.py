"""Every dataset the trial exports by name, SDTM domains and ADaM datasets: one table for the HTTP exports
and the export command, one CSV layout, one define-style description."""

import csv
import io
import json
from collections.abc import Awaitable, Callable

from services.reporting.reports import adam, sdtm
from services.reporting.reports.coding import AeDictionary
from shared.contracts.dictionary import DataDictionary
from shared.contracts.protocol import ProtocolDefinition
from shared.runtime.postgres import Connection

Build = Callable[[Connection, ProtocolDefinition], Awaitable[sdtm.Rows]]

# In the order a reviewer reads them: SDTM (each supplemental dataset after its parent, the collected forms'
# findings domains after the fixed ones), then ADaM.
FIXED = ("DM", "SUPPDM", "IE", "DS", "PR", "SV", "AE", "SUPPAE", "DV")


def findings_domains(forms: DataDictionary) -> tuple[str, ...]:
    return tuple(sorted({form.sdtm_domain for form in forms.collected.values() if form.sdtm_domain}))


def names(forms: DataDictionary) -> tuple[str, ...]:
    return (*FIXED, *findings_domains(forms), *adam.DATASETS)


def define_of(forms: DataDictionary) -> dict[str, list[tuple[str, str, str, str]]]:
    found = {**sdtm.DEFINE, **adam.DEFINE, **{d: sdtm.findings_define(d) for d in findings_domains(forms)}}
    return {name: found[name] for name in names(forms)}


def builders(dictionary: AeDictionary, forms: DataDictionary) -> dict[str, Build]:
    """Every dataset's builder; the adverse-event domains code their terms with the sponsor's dictionary."""

    def coded(build: Callable[[Connection, ProtocolDefinition, AeDictionary], Awaitable[sdtm.Rows]]) -> Build:
        return lambda conn, protocol: build(conn, protocol, dictionary)

    found: dict[str, Build] = {
        **sdtm.DOMAINS,
        **{name: coded(build) for name, build in sdtm.CODED_DOMAINS.items()},
        **{domain: sdtm.findings(domain) for domain in findings_domains(forms)},
        **adam.DATASETS,
    }
    return {name: found[name] for name in names(forms)}


def to_csv(dataset: str, rows: sdtm.Rows, forms: DataDictionary) -> str:
    """The dataset's columns in the order its definition gives them, one row per record."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=[v[0] for v in define_of(forms)[dataset]], lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


Define = dict[str, list[dict[str, str]]]


def define(forms: DataDictionary) -> Define:
    return {
        name: [{"variable": v, "label": label, "type": kind, "origin": origin} for v, label, kind, origin in cols]
        for name, cols in define_of(forms).items()
    }


def define_json(forms: DataDictionary) -> str:
    """define.json as every export writes it and the gateway serves it: the same bytes."""
    return json.dumps(define(forms), indent=2)
