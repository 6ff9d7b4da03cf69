"""Protocol amendments: each a new version of the whole definition, in force at each site from the day its ethics
committee approved it (the site's own date). The first version is the definition file the system starts with; every
later one is a fact in the record (`ProtocolAmendmentDeployed`), so every process reads the same versions, none is
ever lost, and a decision names the version it was made under.

An amendment takes effect at a site only from a day after the site's today when it is deployed: no decision made
already changes its version, and a process that read the versions at an instant holds every version in force at
each site through that site's date then (`ProtocolVersions.exact_through`)."""

import functools
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.contracts.dictionary import FORM_NAME, DataDictionary
from shared.contracts.events import ConsentRecorded, ProtocolAmendmentDeployed
from shared.contracts.protocol import (
    DEFAULT_PROTOCOL_FILE,
    InvalidProtocolDefinition,
    ProtocolDefinition,
    SiteCode,
    whole_document,
)
from shared.contracts.rules import Refusal, RuleViolation


def _example(schema: dict[str, Any]) -> None:
    """The documentation's example: an amendment of the trial's definition file revising the consent form."""
    document = whole_document(DEFAULT_PROTOCOL_FILE)
    document["version"] = "2.0"
    document["consent_form_versions"] = [*document["consent_form_versions"], "2.0"]
    schema["examples"] = [
        {
            "amends": "1.0",
            "summary": "Consent form revised (photography of the scalp explained)",
            "summary_zh": "知情同意书修订（说明头皮拍照）",
            "effective": {site["code"]: "2027-03-01" for site in document["sites"]},
            "consent_form_version": "2.0",
            "migrates": [],
            "reschedules": False,
            "definition": document,
        }
    ]


class AmendmentDeployment(BaseModel):
    """A new version of the protocol to deploy: what changed in words, each site's first day under it, and the whole
    new definition (its data dictionary included)."""

    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra=_example)

    amends: str = Field(min_length=1, max_length=20, description="the latest version, which this one follows")
    summary: str = Field(min_length=1, max_length=2000, description="what the amendment changes, in English")
    summary_zh: str = Field(min_length=1, max_length=2000, description="what the amendment changes, in Chinese")
    effective: dict[SiteCode, date] = Field(
        description="each site's first day under the new version (its ethics approval), after its today"
    )
    consent_form_version: str | None = Field(
        None,
        min_length=1,
        max_length=20,
        description="the revised consent form, when the amendment revises it: every active subject signs it before "
        "their next visit form",
    )
    migrates: tuple[Annotated[str, Field(pattern=FORM_NAME, max_length=40)], ...] = Field(
        (), description="forms whose corrections of records made under an earlier version take this version's items"
    )
    reschedules: bool = Field(
        False, description="subjects already scheduled follow this version's visit windows from its day"
    )
    definition: ProtocolDefinition


class WrongAmendment(RuleViolation):
    rule, kind, title = (
        "amendment.follows_the_latest_version",
        Refusal.CONFLICT,
        "Not an amendment of the latest version",
    )


class InvalidAmendment(RuleViolation):
    rule, kind, title = "amendment.valid", Refusal.INVALID, "The amendment cannot run the trial"


class ReconsentRequired(RuleViolation):
    rule, title = "consent.current_version", "The revised consent form is not signed yet"


def signed(consents: Mapping[UUID, str], recorded: ConsentRecorded, record_id: UUID) -> dict[UUID, str]:
    """The consent form versions a subject signed, by the record of each: a correction replaces its record's."""
    return {k: v for k, v in consents.items() if k != recorded.supersedes} | {record_id: recorded.consent_form_version}


def require_consent(required: str | None, versions: Collection[str], subject: str) -> None:
    """A subject goes on in the trial only once they signed the consent form an amendment in force revised.
    (Withdrawals, adverse events and corrections of what happened before are never held up by it.)"""
    if required is not None and required not in versions:
        raise ReconsentRequired(
            f"{subject} signs the revised consent form, version {required}, before anything further in the trial",
            field="consent_form_version",
        )


@dataclass(frozen=True)
class ProtocolVersions:
    """Every version of the protocol, in order, and which is in force at a site on a day."""

    first: ProtocolDefinition
    amendments: tuple[ProtocolAmendmentDeployed, ...] = ()
    _definitions: dict[str, ProtocolDefinition] = field(default_factory=dict, init=False, compare=False)

    def __post_init__(self) -> None:
        self._definitions[self.first.version] = self.first
        for amendment in self.amendments:
            self._definitions[amendment.version] = ProtocolDefinition.model_validate(amendment.definition)

    @classmethod
    def of(cls, first: ProtocolDefinition, facts: Iterable[object]) -> "ProtocolVersions":
        return cls(first, tuple(f for f in facts if isinstance(f, ProtocolAmendmentDeployed)))

    @property
    def latest(self) -> ProtocolDefinition:
        return self._definitions[self.amendments[-1].version] if self.amendments else self.first

    @property
    def all(self) -> tuple[ProtocolDefinition, ...]:
        """Every version, the first first."""
        return tuple(self._definitions.values())

    @functools.cached_property
    def exported_forms(self) -> DataDictionary:
        """Every form and item any version declares, in the latest words (`DataDictionary.across`): the datasets
        an export has, each record's items under whichever version it was entered."""
        return DataDictionary.across([v.forms for v in self.all])

    def named(self, version: str) -> ProtocolDefinition | None:
        return self._definitions.get(version)

    def amendment(self, version: str) -> ProtocolAmendmentDeployed | None:
        return next((a for a in self.amendments if a.version == version), None)

    def amendments_in_force(self, site: str, day: date) -> tuple[ProtocolAmendmentDeployed, ...]:
        return tuple(a for a in self.amendments if site in a.effective and a.effective[site] <= day)

    def in_force(self, site: str, day: date) -> ProtocolDefinition:
        """The version that governs a form of this site dated on this day."""
        in_force = self.amendments_in_force(site, day)
        return self._definitions[in_force[-1].version] if in_force else self.first

    def in_force_somewhere(self, now: datetime) -> ProtocolDefinition:
        """The latest version in force at any site at this instant: what a decision about the whole trial is made
        under (a version deployed but not yet in force anywhere governs nothing yet)."""
        begun = [
            a for a in self.amendments if any(day <= self.latest.local_date(s, now) for s, day in a.effective.items())
        ]
        return self._definitions[begun[-1].version] if begun else self.first

    def consent_required(self, site: str, day: date) -> str | None:
        """The consent form version every active subject of the site must have signed on this day, when an
        amendment in force revised the consent form (the latest such revision)."""
        revised = [a.consent_form_version for a in self.amendments_in_force(site, day) if a.consent_form_version]
        return revised[-1] if revised else None

    def for_correction(self, form: str, made_under: str, site: str, day: date) -> ProtocolDefinition:
        """A correction keeps the version its record was made under, unless an amendment in force since says the
        form's items migrate to it."""
        migrated = [
            a for a in self.amendments_in_force(site, day) if form in a.migrates and self._after(a.version, made_under)
        ]
        if migrated:
            return self._definitions[migrated[-1].version]
        return self._definitions.get(made_under, self.first)

    def scheduled_under(self, made_under: str, site: str, day: date) -> ProtocolDefinition:
        """The visit windows of a subject scheduled under one version: that version's, unless an amendment in force
        since reschedules."""
        rescheduled = [
            a for a in self.amendments_in_force(site, day) if a.reschedules and self._after(a.version, made_under)
        ]
        if rescheduled:
            return self._definitions[rescheduled[-1].version]
        return self._definitions.get(made_under, self.first)

    def _after(self, version: str, other: str) -> bool:
        order = list(self._definitions)
        return other not in order or order.index(version) > order.index(other)

    def deploy(self, form: AmendmentDeployment, *, today: dict[str, date]) -> ProtocolAmendmentDeployed:
        """The amendment as the record keeps it (who deployed it is its envelope's actor, as for every fact), or
        the rule it breaks. `today`: each site's date now."""
        new, current = form.definition, self.latest
        if form.amends != current.version:
            raise WrongAmendment(
                f"the latest version is {current.version}; an amendment of {form.amends} cannot follow it",
                field="amends",
            )
        if new.version in self._definitions:
            raise InvalidAmendment(f"version {new.version} exists already", field="definition.version")
        if new.trial_id != current.trial_id:
            raise InvalidAmendment(f"the trial is {current.trial_id}, not {new.trial_id}", field="definition.trial_id")
        if missing := sorted({s.code for s in current.sites} - {s.code for s in new.sites}):
            raise InvalidAmendment(
                f"sites {missing} are missing: a site leaves by its status", field="definition.sites"
            )
        sites = {s.code for s in new.sites}
        if unknown := sorted(set(form.effective) - sites):
            raise InvalidAmendment(f"{unknown} are not sites of the new version", field="effective")
        if missing := sorted(sites - set(form.effective)):
            raise InvalidAmendment(f"no effective date for {missing}", field="effective")
        for site, day in sorted(form.effective.items()):
            if site in today and day <= today[site]:
                raise InvalidAmendment(
                    f"{site} is at {today[site]}: an amendment takes effect from a later day, so nothing decided "
                    "already changes its version",
                    field=f"effective.{site}",
                )
            earlier = [a.effective[site] for a in self.amendments if site in a.effective]
            if earlier and day <= max(earlier):
                raise InvalidAmendment(
                    f"{site} takes version {self.amendments[-1].version} on {max(earlier)}; this one comes after",
                    field=f"effective.{site}",
                )
        if form.consent_form_version is not None and (
            form.consent_form_version not in new.consent_form_versions
            or form.consent_form_version in current.consent_form_versions
        ):
            raise InvalidAmendment(
                f"the revised consent form {form.consent_form_version} must be new in this version's "
                f"consent_form_versions {list(new.consent_form_versions)}",
                field="consent_form_version",
            )
        if unknown := sorted(set(form.migrates) - set(new.forms.forms)):
            raise InvalidAmendment(f"{unknown} are not forms of the new version", field="migrates")
        typed, now_typed = new.forms.typed_shapes(), self.first.forms.typed_shapes()
        if changed := sorted(n for n in typed.keys() | now_typed.keys() if typed.get(n) != now_typed.get(n)):
            # These forms are the system's own models, read by its rules; the collected forms and logs are the
            # dictionary's alone, and are taken by version.
            raise InvalidAmendment(
                f"what sites enter on {', '.join(changed)} differs from version {self.first.version}: an amendment "
                "may change the words of these forms' items, not the items, their types, bounds or codes (those come "
                "with a new release of the system); what else to collect at a visit goes in a collected form at that "
                "visit, which an amendment may add or change as a whole, as it may a log",
                field=f"definition.forms.forms.{changed[0]}",
            )
        return ProtocolAmendmentDeployed(
            version=new.version,
            amends=form.amends,
            summary=form.summary,
            summary_zh=form.summary_zh,
            effective=dict(sorted(form.effective.items())),
            consent_form_version=form.consent_form_version,
            migrates=form.migrates,
            reschedules=form.reschedules,
            definition=new.model_dump(mode="json"),
        )

    def exact_through(self, read_at: datetime) -> dict[str, date]:
        """Read at this instant, these versions are all that is in force at each site through its date then."""
        return {s.code: self.latest.local_date(s.code, read_at) for s in self.latest.sites}


def load_amendment(path: Path) -> dict[str, Any]:
    """An amendment file as the body to deploy: its header, and the new version's definition file it names (beside
    it) read whole, data dictionary included. An unreadable file is refused here, with the file named."""
    try:
        header = yaml.safe_load(path.read_text(encoding="utf-8"))
        document = whole_document(path.parent / header["protocol"])
        body = {k: v for k, v in header.items() if k != "protocol"} | {"definition": document}
        return AmendmentDeployment.model_validate(body).model_dump(mode="json")
    except (OSError, yaml.YAMLError, KeyError, TypeError) as exc:
        raise InvalidProtocolDefinition(f"{path}: {exc}") from exc
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in err['loc'])}: {err['msg']}" for err in exc.errors())
        raise InvalidProtocolDefinition(f"{path}: {problems}") from exc
