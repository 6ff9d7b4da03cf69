"""Every report and export by its path under `/v1/reports/` and its title: the gateway's report page and the web
app list the same ones."""

from services.reporting.reports import adam, datasets
from shared.contracts.dictionary import DataDictionary

PICTURES: tuple[tuple[str, str], ...] = (
    ("consort.svg", "CONSORT flow diagram"),
    ("enrollment.svg", "Enrollment over time by site and arm"),
    ("endpoints.svg", "Every assessment by visit and arm (mean, 95% CI)"),
)
REPORTS: tuple[tuple[str, str], ...] = (
    ("consort.svg", "CONSORT flow diagram"),
    ("consort.json", "CONSORT flow (JSON)"),
    ("enrollment.svg", "Enrollment over time by site and arm"),
    ("enrollment.json", "Enrollment over time (JSON)"),
    ("visit-compliance.json", "Visit compliance by visit and site"),
    ("adverse-events.json", "Adverse events by arm, grade, seriousness and relatedness; open SAE alerts"),
    ("deviations.json", "Protocol deviations by site and kind, each with subject, date and rule code"),
    ("audit-trail.json", "Audit trail (filter by subject, since, until); corrections old → new"),
    ("queries.json", "Open queries by site, form and age, each with its thread"),
    ("sdv.json", "Source data verification by site and subject (% of forms verified)"),
    ("sdv-worklist.json", "Monitors' work list: forms not yet verified, oldest first"),
    ("signatures.json", "Investigators' signatures by site and kind: standing, or invalidated by a change"),
    ("primary-endpoint.json", "Primary endpoint by arm (JSON)"),
    ("endpoints.json", "Every assessment by visit and arm (JSON)"),
)


def exports(forms: DataDictionary) -> tuple[tuple[str, str], ...]:
    """Every export: each dataset (the collected forms' findings domains among them), then the whole-trial files."""
    return (
        *((f"exports/{d}.csv", f"{'ADaM' if d in adam.DATASETS else 'SDTM'} {d}") for d in datasets.names(forms)),
        ("exports/define.json", "Define: every exported column described"),
        ("exports/odm.xml", "CDISC ODM 1.3.2 snapshot of the clinical data"),
        ("exports/database-lock.json", "The database lock the exports are made as of (once locked)"),
    )
