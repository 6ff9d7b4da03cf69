"""Every dataset the trial exports by name, SDTM domains and ADaM datasets: one table for the HTTP exports
and the export command, one CSV layout, one define-style description."""

import csv
import io
import json
from collections.abc import Awaitable, Callable

from services.reporting.reports import adam, sdtm
from shared.contracts.coding import Dictionaries
from shared.contracts.dictionary import DataDictionary
from shared.contracts.protocol import ProtocolDefinition
from shared.runtime.postgres import Connection

Build = Callable[[Connection, ProtocolDefinition], Awaitable[sdtm.Rows]]

# In the order a reviewer reads them: SDTM (each supplemental dataset after its parent, the logs' domains and the
# collected forms' findings domains after the fixed ones), then ADaM.
FIXED = ("DM", "SUPPDM", "IE", "DS", "PR", "SV", "AE", "SUPPAE", "DV")


def findings_domains(forms: DataDictionary) -> tuple[str, ...]:
    return tuple(sorted({form.sdtm_domain for form in forms.collected.values() if form.sdtm_domain and not form.log}))


def log_domains(forms: DataDictionary) -> dict[str, str]:
    """Each log's domain and its supplemental dataset, by the log's name: {"CM": ..., "SUPPCM": ...}."""
    found: dict[str, str] = {}
    for name, form in sorted(forms.logs.items(), key=lambda log: log[1].sdtm_domain or ""):
        found |= {form.sdtm_domain or "": name, f"SUPP{form.sdtm_domain}": name}
    return found


def names(forms: DataDictionary) -> tuple[str, ...]:
    return (*FIXED, *log_domains(forms), *findings_domains(forms), *adam.DATASETS)


def define_of(forms: DataDictionary) -> dict[str, list[tuple[str, str, str, str]]]:
    logs = {
        domain: (sdtm.log_supp_define if domain.startswith("SUPP") else sdtm.log_define)(forms.forms[name])
        for domain, name in log_domains(forms).items()
    }
    found = {**sdtm.DEFINE, **adam.DEFINE, **logs, **{d: sdtm.findings_define(d) for d in findings_domains(forms)}}
    return {name: found[name] for name in names(forms)}


def builders(dictionaries: Dictionaries, forms: DataDictionary) -> dict[str, Build]:
    """Every dataset's builder; the adverse events and the logs code their terms with the sponsor's dictionaries."""

    def coded(build: Callable[[Connection, ProtocolDefinition, Dictionaries], Awaitable[sdtm.Rows]]) -> Build:
        return lambda conn, protocol: build(conn, protocol, dictionaries)

    logs = {
        domain: coded(sdtm.log_domain(name, forms, supplemental=domain.startswith("SUPP")))
        for domain, name in log_domains(forms).items()
    }
    found: dict[str, Build] = {
        **sdtm.DOMAINS,
        **{name: coded(build) for name, build in sdtm.CODED_DOMAINS.items()},
        **logs,
        **{domain: sdtm.findings(domain, forms) for domain in findings_domains(forms)},
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
