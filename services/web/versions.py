"""The protocol's versions as a casebook shows them: each form under the version it was entered under, and where a
subject's records stand under more than one version, those versions side by side: what differs between them that
bears on the subject (criteria, visit windows, the consent form) and which of the subject's forms each governs."""

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from shared.contracts.protocol import ProtocolDefinition


@dataclass(frozen=True)
class Difference:
    """One thing two or more versions say differently: its name, and what each version says, in version order."""

    what: str
    said: tuple[str, ...]


@dataclass(frozen=True)
class SideBySide:
    versions: tuple[str, ...]
    differences: list[Difference] = field(default_factory=list)
    forms: dict[str, list[str]] = field(default_factory=dict)  # version -> the subject's forms entered under it


def versions_of(view: dict[str, Any], screening: dict[str, Any] | None) -> list[str]:
    """The versions a subject's records stand under, oldest first by when they were first used."""
    seen: list[str] = []
    records = [*view.get("forms", []), *([screening] if screening else [])]
    for record in sorted(records, key=lambda r: r["recorded_at"]):
        version = record.get("protocol_version")
        if version and version not in seen:
            seen.append(version)
    return seen


def side_by_side(definitions: Iterable[ProtocolDefinition], view: dict[str, Any], lang: str, title: Any) -> SideBySide:
    """The versions compared where they differ, with the subject's forms under each. `title(form, lang, entry)`
    names a form as the casebook does."""
    versions = list(definitions)
    names = tuple(v.version for v in versions)
    differences: list[Difference] = []
    for code in versions[0].eligibility.codes:
        said = tuple(v.eligibility.criteria[code].text_in(lang) for v in versions)
        if len(set(said)) > 1:
            differences.append(Difference(code, said))
    for visit in versions[0].schedule.follow_up:
        windows = tuple(_window(v, visit.code) for v in versions)
        if len(set(windows)) > 1:
            differences.append(Difference(visit.code, windows))
    consent = tuple(v.consent_form_versions[-1] for v in versions)
    if len(set(consent)) > 1:
        differences.append(Difference("consent", consent))
    forms: dict[str, list[str]] = {v: [] for v in names}
    for record in view.get("forms", []):
        if record.get("protocol_version") in forms:
            forms[record["protocol_version"]].append(title(record["form"], lang, record.get("entry")))
    return SideBySide(names, differences, forms)


def _window(protocol: ProtocolDefinition, visit: str) -> str:
    found = next((v for v in protocol.schedule.follow_up if v.code == visit), None)
    return f"{found.target_day} ± {found.window_days}" if found else "—"
