"""The protocol definition: trial facts that change by amendment (a new version), never by code."""

import re
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.contracts.dictionary import DataDictionary

SITE_CODE_PATTERN = r"^[A-Z][A-Z0-9]{1,7}$"
SUBJECT_ID_PATTERN = r"^[A-Z][A-Z0-9]{1,7}-[0-9]{3}$"

TrialId = Annotated[str, Field(pattern=r"^NCT[0-9]{8}$", examples=["NCT06646146"])]
SiteCode = Annotated[str, Field(pattern=SITE_CODE_PATTERN, examples=["NFH"])]
SubjectId = Annotated[str, Field(pattern=SUBJECT_ID_PATTERN, examples=["NFH-001"])]


# Exact text of a fraction of the scalp; also its pattern in the forms' JSON Schema.
FRACTION_TEXT = re.compile(r"\d{1,30}(\.\d{1,30})?(/\d{1,30})?")


def parse_fraction(value: object) -> Fraction:
    """'1/3', '0.25' or a number, exactly: one third stays one third."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, bool) or not isinstance(value, str | int | float | Decimal):
        raise ValueError("a fraction such as '1/3' or '0.25'")
    # A JSON number is taken as written (its shortest decimal text): 0.1 is one tenth, not the binary float.
    text = repr(value) if isinstance(value, float) else str(value)
    # Bounded before parsing: an exponent of millions would take seconds and megabytes to expand.
    if not FRACTION_TEXT.fullmatch(text):
        raise ValueError("a fraction such as '1/3' or '0.25': at most 30 digits a part, no exponent")
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError) as exc:
        raise ValueError(f"not a fraction: {value!r}") from exc


class SiteStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"
    CLOSED = "closed"


class Arm(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    code: str = Field(pattern=r"^[A-Z][A-Z_]{1,15}$")
    name: str
    receives_fat_graft: bool = Field(False, description="the arm's surgery includes the ECM/SVF-gel fat graft")


class Site(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")
    code: SiteCode
    name: str
    status: SiteStatus
    time_zone: str = Field(description="IANA time zone, e.g. Asia/Shanghai: the site's dates are local dates there")
    country: str = Field(pattern=r"^[A-Z]{3}$", description="ISO 3166-1 alpha-3 (SDTM DM.COUNTRY), e.g. CHN")

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"{value!r} is not an IANA time zone (e.g. Asia/Shanghai)") from exc
        return value

    def local_date(self, instant: datetime) -> date:
        """The calendar date at the site at that instant: what "today" means to the people there."""
        return instant.astimezone(ZoneInfo(self.time_zone)).date()


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Criterion(_Strict):
    """A criterion's wording as the protocol states it; reported beside every result."""

    label: str = Field(min_length=1, max_length=40, description="short name (SDTM IETEST: at most 40 characters)")
    text: str = Field(min_length=1)
    label_zh: str = Field(min_length=1, description="the short name in Simplified Chinese")
    text_zh: str = Field(min_length=1, description="the wording in Simplified Chinese")

    def label_in(self, language: str) -> str:
        return self.label_zh if language == "zh" else self.label

    def text_in(self, language: str) -> str:
        return self.text_zh if language == "zh" else self.text


class HairLossDuration(Criterion):
    min_hair_loss_months: int = Field(gt=0)


class InactiveDisease(Criterion):
    min_inactive_months: int = Field(gt=0)


class MinimumBmi(Criterion):
    min_bmi: Decimal = Field(gt=0, lt=100)


class AgeRange(Criterion):
    min_age: int = Field(ge=0)
    max_age: int = Field(le=130)

    @model_validator(mode="after")
    def _ordered(self) -> "AgeRange":
        if self.min_age > self.max_age:
            raise ValueError("min_age must not exceed max_age")
        return self


class MaximumAreaFraction(Criterion):
    max_area_fraction: Fraction

    @field_validator("max_area_fraction", mode="before")
    @classmethod
    def _parse(cls, value: object) -> Fraction:
        return parse_fraction(value)

    @field_validator("max_area_fraction")
    @classmethod
    def _in_unit_interval(cls, value: Fraction) -> Fraction:
        if not 0 < value <= 1:
            raise ValueError("must be within (0, 1]")
        return value


class LookbackMonths(Criterion):
    lookback_months: int = Field(gt=0)


class LookbackDays(Criterion):
    lookback_days: int = Field(gt=0)


class MaximumPrednisolone(Criterion):
    max_prednisolone_mg_per_day: Decimal = Field(ge=0)


class Inclusion(_Strict):
    IN01: Criterion
    IN02: Criterion
    IN03: HairLossDuration
    IN04: InactiveDisease
    IN05: Criterion
    IN06: MinimumBmi
    IN07: AgeRange
    IN08: Criterion
    IN09: Criterion


class Exclusion(_Strict):
    EX01: MaximumAreaFraction
    EX02: Criterion
    EX03: Criterion
    EX04: Criterion
    EX05: MinimumBmi
    EX06: LookbackMonths
    EX07: LookbackDays
    EX08: Criterion
    EX09: LookbackMonths
    EX10: MaximumPrednisolone
    EX11: Criterion


class Eligibility(_Strict):
    inclusion: Inclusion
    exclusion: Exclusion

    @property
    def codes(self) -> tuple[str, ...]:
        """Every criterion's code in the protocol's order: IN01 … IN09, then EX01 … EX11."""
        return (*Inclusion.model_fields, *Exclusion.model_fields)

    @property
    def criteria(self) -> dict[str, Criterion]:
        """Every criterion by its code, in the protocol's order."""
        return {**dict(self.inclusion), **dict(self.exclusion)}

    @property
    def labels(self) -> dict[str, str]:
        """Every criterion's short name by its code."""
        return {code: criterion.label for code, criterion in self.criteria.items()}


class DayRange(_Strict):
    earliest: int = Field(gt=0)
    latest: int = Field(gt=0)


class FollowUpVisit(_Strict):
    code: str = Field(pattern=r"^[A-Z][A-Z0-9]{1,4}$")
    name: str
    name_zh: str = Field(min_length=1, description="the name in Simplified Chinese")
    target_day: int = Field(gt=0)
    window_days: int = Field(ge=0)
    primary_endpoint: bool = False
    end_of_study: bool = False


class Schedule(_Strict):
    screening_days_before_surgery: DayRange
    surgery_within_days_of_randomization: int = Field(gt=0)
    follow_up: tuple[FollowUpVisit, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _visits_in_order(self) -> "Schedule":
        codes = [v.code for v in self.follow_up]
        if len(codes) != len(set(codes)):
            raise ValueError(f"follow_up: visit codes must be unique, got {codes}")
        days = [v.target_day for v in self.follow_up]
        if days != sorted(days):
            raise ValueError("follow_up: visits must be listed by target day")
        if sum(v.end_of_study for v in self.follow_up) != 1:
            raise ValueError("follow_up: exactly one visit ends the study")
        if sum(v.primary_endpoint for v in self.follow_up) != 1:
            raise ValueError("follow_up: exactly one visit is the primary endpoint")
        return self

    @property
    def primary_endpoint(self) -> FollowUpVisit:
        return next(v for v in self.follow_up if v.primary_endpoint)


class Randomization(_Strict):
    list_version: int = Field(ge=1, description="a new list is a new version, committed anew")
    block_sizes: tuple[int, ...] = Field(min_length=1)


class EditCheck(_Strict):
    """A data check run on every new fact: where it holds, a query is opened on the form (and, for a check of
    what the protocol forbids, a deviation recorded); a correction that makes it pass closes the query. The code
    names the function that checks it."""

    code: str = Field(pattern=r"^[A-Z][A-Z0-9_]{2,40}$")
    text: str = Field(min_length=1, description="the query's text, with {parameters} and {values} filled in")
    text_zh: str = Field(min_length=1, description="the same in Simplified Chinese, as a page warns with it")
    parameters: dict[str, str] = Field(default_factory=dict)
    deviation: bool = Field(False, description="where it holds, a protocol deviation is recorded too, once per form")

    def text_in(self, language: str) -> str:
        return self.text_zh if language == "zh" else self.text


class SignaturePolicy(_Strict):
    """How an electronic signature is given: after a sign-in no older than this (the sponsor's procedure)."""

    reauthentication_seconds: int = Field(300, gt=0, le=3600)

    @property
    def reauthentication(self) -> timedelta:
        return timedelta(seconds=self.reauthentication_seconds)


class ProtocolDefinition(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    trial_id: TrialId
    version: str = Field(min_length=1)
    title: str
    arms: tuple[Arm, ...] = Field(min_length=2)
    enrollment_cap: int = Field(gt=0)
    randomization: Randomization
    sites: tuple[Site, ...] = Field(min_length=1)
    consent_form_versions: tuple[str, ...] = Field(min_length=1)
    eligibility: Eligibility
    schedule: Schedule
    signatures: SignaturePolicy = SignaturePolicy()
    edit_checks: tuple[EditCheck, ...] = ()
    forms: DataDictionary = Field(description="the data dictionary: its own file, named here, beside this one")

    @model_validator(mode="after")
    def _collected_at_its_visits(self) -> "ProtocolDefinition":
        visits = {v.code for v in self.schedule.follow_up}
        for name, form in self.forms.collected.items():
            if unknown := set(form.visits) - visits:
                raise ValueError(f"forms.{name}.visits: {sorted(unknown)} are not follow-up visits of the schedule")
        return self

    @model_validator(mode="after")
    def _blocks_fit_the_arms(self) -> "ProtocolDefinition":
        if any(size <= 0 or size % len(self.arms) for size in self.randomization.block_sizes):
            raise ValueError(f"randomization.block_sizes: each must be a positive multiple of {len(self.arms)} arms")
        return self

    @model_validator(mode="after")
    def _codes_are_unique(self) -> "ProtocolDefinition":
        for name, codes in (
            ("sites", [s.code for s in self.sites]),
            ("arms", [a.code for a in self.arms]),
            ("edit_checks", [c.code for c in self.edit_checks]),
        ):
            if len(codes) != len(set(codes)):
                raise ValueError(f"{name}: codes must be unique, got {codes}")
        return self

    def site(self, code: str) -> Site | None:
        return next((s for s in self.sites if s.code == code), None)

    def local_date(self, site: str, instant: datetime) -> date:
        """The site's calendar date at that instant; instants stay UTC, every clinical date is the site's.
        (A site the protocol does not have is refused by the rules; its date is the UTC date meanwhile.)"""
        known = self.site(site)
        return known.local_date(instant) if known else instant.astimezone(UTC).date()

    def receives_fat_graft(self, arm: str) -> bool:
        """Whether subjects of this arm get the ECM/SVF-gel fat graft with their hair transplantation."""
        return any(a.code == arm and a.receives_fat_graft for a in self.arms)

    @property
    def fat_graft_arms(self) -> tuple[str, ...]:
        return tuple(a.code for a in self.arms if a.receives_fat_graft)

    def arm_treated_as(self, *, fat_graft: bool) -> str:
        """The arm whose treatment a surgery with (or without) the fat graft is (the actual arm, for SDTM)."""
        return next(a.code for a in self.arms if a.receives_fat_graft == fat_graft)


# The trial's definition file: the first version of the protocol (every later one is an amendment in the record).
DEFAULT_PROTOCOL_FILE = Path(__file__).resolve().parents[2] / "protocol" / "NCT06646146.yaml"


class InvalidProtocolDefinition(Exception):
    """The definition file cannot run the trial; the message names the field and the rule."""


def protocol_document(path: Path) -> dict[str, Any]:
    """A definition file's document to change and write elsewhere (a test's or a benchmark's protocol): its data
    dictionary named by its absolute path, so the copy reads the same one."""
    document: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    document["forms"] = str((path.parent / document["forms"]).resolve())
    return document


def whole_document(path: Path) -> Any:
    """A definition file's document with its data dictionary read in (from the file it names beside it, or written
    inline): the whole version, as an amendment carries it."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    if isinstance(document, dict) and isinstance(document.get("forms"), str):
        document["forms"] = yaml.safe_load((path.parent / document["forms"]).read_text(encoding="utf-8"))
    return document


def load_protocol(path: Path) -> ProtocolDefinition:
    try:
        return ProtocolDefinition.model_validate(whole_document(path))
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or '(root)'}: {err['msg']}" for err in exc.errors()
        )
        raise InvalidProtocolDefinition(f"{path}: {problems}") from exc
    except (OSError, yaml.YAMLError) as exc:
        raise InvalidProtocolDefinition(f"{path}: {exc}") from exc


@lru_cache(maxsize=8)
def cached_protocol(path: Path) -> ProtocolDefinition:
    return load_protocol(path)
