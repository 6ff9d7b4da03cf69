"""The forms site apps post, validated the same way by the gateway and by the services."""

import re
import unicodedata
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    PlainSerializer,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from shared.contracts.decimals import DecimalRange
from shared.contracts.protocol import FRACTION_TEXT, parse_fraction

# Everything accepted must be representable wherever it goes (the record, Postgres, exports): clinical
# dates and instants within a plausible range, text without control characters, numbers bounded before
# they are parsed. Each refusal names the field and the rule.
EARLIEST = date(1900, 1, 1)
LATEST = date(2199, 12, 31)


def _no_control_characters(value: str) -> str:
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in value):
        raise ValueError("text may not hold control characters (text.control_characters)")
    return value


def _written_instant(value: object) -> object:
    """An instant is written as ISO 8601 text with its offset: a bare number would be read as seconds (or
    milliseconds) since 1970, which nobody at a site means."""
    if isinstance(value, int | float) or (isinstance(value, str) and re.fullmatch(r"\s*[-+]?[0-9.eE+-]+\s*", value)):
        raise ValueError("a date and time in ISO 8601 with its UTC offset, e.g. 2026-12-07T08:00:00+08:00")
    return value


def _plausible_instant(value: datetime) -> datetime:
    # Checked on the local date, before any conversion to UTC could overflow.
    if not EARLIEST <= value.date() <= LATEST:
        raise ValueError(f"instants lie between {EARLIEST} and {LATEST} (date.plausible_range)")
    return value


class TextPattern:
    """A number that may also be written as exact text ("55.5"): the text's pattern in the JSON Schema."""

    def __init__(self, pattern: re.Pattern[str]) -> None:
        self.pattern = f"^{pattern.pattern}$"

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        found = handler(schema)
        for branch in found.get("anyOf", []):
            if branch.get("type") == "string":
                branch["pattern"] = self.pattern
        return found


Text = Annotated[str, AfterValidator(_no_control_characters)]
ClinicalDate = Annotated[date, Field(ge=EARLIEST, le=LATEST)]
Instant = Annotated[AwareDatetime, BeforeValidator(_written_instant), AfterValidator(_plausible_instant)]


class Measured:
    """A measurement, as a number or as its exact decimal text ("55.5"), from its lower bound (`ge`, or above `gt`)
    to `le`, with at most `places` digits after the point. The text's pattern is the range itself
    (`shared.contracts.decimals`): the JSON Schema admits exactly the texts the validation accepts."""

    def __init__(self, *, le: int, ge: int | None = None, gt: int | None = None, places: int = 9) -> None:
        low = ge if ge is not None else gt
        if low is None:
            raise TypeError("a measurement has a lower bound: ge or gt")
        self.range = DecimalRange(low, le, low_inclusive=ge is not None, places=places)
        self.text = self.range.compiled()
        self.bounds = Field(ge=ge, gt=gt, le=le, decimal_places=places)
        within = f"from {low}" if ge is not None else f"above {low}"
        digits = "no digits" if places == 0 else "one digit" if places == 1 else f"at most {places} digits"
        self.rule = f"a decimal number {within} to {le}, {digits} after the point, without sign or exponent"

    def _exact_text(self, value: object) -> object:
        if isinstance(value, str) and not self.text.fullmatch(value):
            raise ValueError(self.rule)
        return value

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        bounded = handler.generate_schema(Annotated[Decimal, self.bounds])
        return core_schema.no_info_before_validator_function(self._exact_text, bounded)

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        found = handler(schema)
        for branch in found.get("anyOf", []):
            if branch.get("type") == "string":
                branch["pattern"] = self.text.pattern
        return found


# Every form carries an example in the OpenAPI document; these two are also what `make run`, the benchmarks
# and the tests post (`devstack.examples`).
CONSENT_EXAMPLE: dict[str, Any] = {
    "consent_form_version": "1.0",
    "signed_on": "2026-11-20",
    "obtained_by": "inv-01",
    "signed_by_subject": True,
}
# Meets every inclusion criterion and no exclusion criterion.
ELIGIBLE_EXAMPLE: dict[str, Any] = {
    "screening_date": "2026-11-24",
    "age_years": 35,
    "sex": "female",
    "height_cm": 160,
    "weight_kg": 55,
    "localized_scleroderma_symptoms": True,
    "alopecia_secondary_to_localized_scleroderma": True,
    "hair_loss_onset_date": "2024-01-01",
    "adequate_donor_hair": True,
    "last_disease_activity_date": "2025-01-01",
    "biopsy": {
        "inflammatory_cell_infiltration": False,
        "follicle_orifices_absent": True,
        "follicles_replaced_by_connective_tissue": True,
    },
    "fit_for_anaesthesia_and_surgery": True,
    "willing_to_comply_with_follow_up": True,
    "hair_loss_area_fraction": "1/4",
    "scalp_infection": False,
    "contraindications": [],
    "pregnant": False,
    "breastfeeding": False,
    "last_vasodilator_or_immunosuppressant_start": "never",
    "last_topical_ointment_on_surgical_area": "never",
    "serology": {"hiv": "negative", "hbv": "negative", "hcv": "negative", "htlv": "negative", "syphilis": "negative"},
    "last_tumour_diagnosis": "never",
    "prednisolone_mg_per_day": 0,
    "investigator_judges_unsuitable": False,
}


# A form's name in the casebook: where queries and source data verification point, and its resource path.
VISIT_CODE = "[A-Z][A-Z0-9]{1,4}"
VISIT_CODE_PATTERN = f"^{VISIT_CODE}$"
# A data dictionary form's name (`consent`, `consent-refusal`), with its instance where it has several (`visit-M1`,
# `ae-<id>`, a collected form's `scalp-symptoms-M6`): which forms the casebook has is the dictionary's to say.
FORM_PATTERN = f"^[a-z][a-z0-9]*(-[a-z0-9]+)*(-{VISIT_CODE})?$"


class Correctable(BaseModel):
    """What makes a posted form a correction: the record it supersedes, and why. The gateway takes the version
    from `If-Match` (the form's ETag) too; a correction made on an older record is refused (412)."""

    supersedes: UUID | None = Field(None, description="the record this one corrects: the form's current version")
    reason: Text | None = Field(None, min_length=5, max_length=500, description="why, when correcting")


class ConsentForm(Correctable):
    """Informed consent as signed (IN09). Identifies staff by code, never by name."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={"examples": [CONSENT_EXAMPLE]},
    )

    consent_form_version: Text = Field(min_length=1, max_length=20, examples=["1.0"])
    signed_on: ClinicalDate = Field(description="date the consent form was signed; not after today")
    obtained_by: Text = Field(
        min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$", description="staff code of who obtained consent"
    )
    signed_by_subject: bool
    signed_by_representative: bool = Field(
        False, description="a legally authorised representative signed (with or instead of the subject)"
    )


class ConsentWithdrawalForm(Correctable):
    """The subject (or representative) withdrew consent: no further trial procedures."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={"examples": [{"withdrawn_on": "2027-02-01", "recorded_by": "crc-01"}]},
    )

    withdrawn_on: ClinicalDate
    recorded_by: Text = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$", description="staff code")


class ConsentRefusalReason(StrEnum):
    NOT_INTERESTED = "not_interested"
    CONCERNS_ABOUT_SURGERY = "concerns_about_surgery"
    TIME_OR_TRAVEL = "time_or_travel"
    PREFERS_OTHER_TREATMENT = "prefers_other_treatment"
    OTHER = "other"


class ConsentRefusalForm(BaseModel):
    """Approached and told about the trial, the person declined to consent: counted in CONSORT, never screened."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "examples": [{"declined_on": "2026-11-20", "recorded_by": "crc-01", "reason": "concerns_about_surgery"}]
        },
    )

    declined_on: ClinicalDate
    recorded_by: Text = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$", description="staff code")
    reason: ConsentRefusalReason | None = Field(None, description="optional: why, if the person said")


class Sex(StrEnum):
    FEMALE = "female"
    MALE = "male"


class Serology(StrEnum):
    NEGATIVE = "negative"
    POSITIVE = "positive"


class Contraindication(StrEnum):
    """EX03's conditions; an empty list means none of them."""

    PSYCHIATRIC_DISORDER = "psychiatric_disorder"
    HEMATOLOGIC_DISEASE = "hematologic_disease"
    IMMUNE_DEFICIENCY = "immune_deficiency"
    ABNORMAL_LIVER_FUNCTION = "abnormal_liver_function"
    ABNORMAL_KIDNEY_FUNCTION = "abnormal_kidney_function"
    SEVERE_HYPERTENSION = "severe_hypertension"
    SEVERE_DIABETES = "severe_diabetes"
    OTHER_SURGICAL_CONTRAINDICATION = "other_surgical_contraindication"


class SerologyResults(BaseModel):
    """EX08. A test not yet resulted is left out (null): the criterion is then `missing`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hiv: Serology | None = None
    hbv: Serology | None = None
    hcv: Serology | None = None
    htlv: Serology | None = Field(None, description="HTLV-1 and -2")
    syphilis: Serology | None = None


class BiopsyFindings(BaseModel):
    """IN04's scalp biopsy."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    inflammatory_cell_infiltration: bool | None = None
    follicle_orifices_absent: bool | None = None
    follicles_replaced_by_connective_tissue: bool | None = None


Never = Literal["never"]
# A date, "never" (it did not happen), or null (not recorded: the criterion is then `missing`).
DateOrNever = ClinicalDate | Never | None
AreaFraction = Annotated[
    Fraction,
    BeforeValidator(parse_fraction),
    TextPattern(FRACTION_TEXT),
    Field(ge=0, le=1, description="fraction of the scalp, exactly: '1/3', '0.25'", examples=["1/4"]),
    PlainSerializer(str, return_type=str),
]


class ScreeningForm(Correctable):
    """The facts the eligibility criteria need. Times are dates, compared with `screening_date`.

    No names or birth dates: age in whole years and sex are all the protocol needs (IN07, EX04).
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={"examples": [ELIGIBLE_EXAMPLE]},
    )

    screening_date: ClinicalDate
    age_years: int = Field(ge=0, le=120, description="whole years at screening (IN07)")
    sex: Sex
    height_cm: Annotated[Decimal, Measured(ge=100, le=230, places=1)] = Field(description="IN06/EX05")
    weight_kg: Annotated[Decimal, Measured(ge=25, le=250, places=1)] = Field(description="IN06/EX05")
    localized_scleroderma_symptoms: bool | None = Field(None, description="IN01")
    loscat_score: int | None = Field(None, ge=0, le=500, description="LoSCAT, assists IN01")
    alopecia_secondary_to_localized_scleroderma: bool | None = Field(None, description="IN02")
    hair_loss_onset_date: ClinicalDate | None = Field(None, description="IN03")
    adequate_donor_hair: bool | None = Field(None, description="IN03")
    last_disease_activity_date: ClinicalDate | None = Field(
        None, description="IN04: last hair loss with local pain, itching or burning"
    )
    biopsy: BiopsyFindings | None = Field(None, description="IN04")
    fit_for_anaesthesia_and_surgery: bool | None = Field(None, description="IN05")
    willing_to_comply_with_follow_up: bool | None = Field(None, description="IN08")
    hair_loss_area_fraction: AreaFraction | None = Field(None, description="EX01")
    scalp_infection: bool | None = Field(None, description="EX02")
    contraindications: list[Contraindication] | None = Field(None, description="EX03; [] for none")
    pregnant: bool | None = Field(None, description="EX04")
    breastfeeding: bool | None = Field(None, description="EX04")
    last_vasodilator_or_immunosuppressant_start: DateOrNever = Field(None, description="EX06")
    last_topical_ointment_on_surgical_area: DateOrNever = Field(None, description="EX07")
    serology: SerologyResults | None = Field(None, description="EX08")
    last_tumour_diagnosis: DateOrNever = Field(None, description="EX09")
    prednisolone_mg_per_day: Annotated[Decimal, Measured(ge=0, le=1000)] | None = Field(
        None, description="EX10; 0 for none"
    )
    investigator_judges_unsuitable: bool | None = Field(None, description="EX11")

    def dates(self) -> dict[str, date]:
        """Every date on the form but the screening date, by field name."""
        return {name: value for name, value in self if isinstance(value, date) and name != "screening_date"}


class RandomizationRequest(BaseModel):
    """Randomize a consented, eligible subject. Nothing to fill in: who asks comes from the token."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={"examples": [{}]},
    )


class RandomizationInvalidationForm(BaseModel):
    """A randomization made in error (wrong subject, found ineligible later); the slot is never reused."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "examples": [{"reason": "randomized in error: the screening form belonged to another subject"}]
        },
    )

    reason: Text = Field(min_length=10, max_length=500, description="why the randomization is invalid")


class SeriousnessCriterion(StrEnum):
    """ICH E2A: any one makes an adverse event serious."""

    DEATH = "death"
    LIFE_THREATENING = "life_threatening"
    HOSPITALIZATION = "hospitalization_or_prolongation"
    DISABILITY = "persistent_or_significant_disability"
    CONGENITAL_ANOMALY = "congenital_anomaly"
    OTHER_IMPORTANT_MEDICAL_EVENT = "other_important_medical_event"


class Relatedness(StrEnum):
    NOT_RELATED = "not_related"
    UNLIKELY = "unlikely"
    POSSIBLE = "possible"
    PROBABLE = "probable"
    DEFINITE = "definite"
    NOT_APPLICABLE = "not_applicable"  # e.g. fat graft for a subject of the HT arm


class ActionTaken(StrEnum):
    NONE = "none"
    TREATMENT_GIVEN = "treatment_given"
    PROCEDURE_INTERRUPTED = "procedure_interrupted"
    PROCEDURE_NOT_DONE = "procedure_not_done"
    HOSPITALIZED = "hospitalized"
    OTHER = "other"


class AdverseEventOutcome(StrEnum):
    RECOVERED = "recovered"
    RECOVERING = "recovering"
    NOT_RECOVERED = "not_recovered"
    RECOVERED_WITH_SEQUELAE = "recovered_with_sequelae"
    FATAL = "fatal"
    UNKNOWN = "unknown"


class ProcedureRelationship(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    fat_graft: Relatedness
    hair_transplantation: Relatedness


CtcaeGrade = Annotated[int, Field(ge=1, le=5, description="CTCAE grade 1–5 (5 = death)")]


class AdverseEventForm(Correctable):
    """An adverse event as the site reports it. Serious is derived, never typed in."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "term": "Scalp necrosis",
                    "onset_date": "2026-12-03",
                    "site_aware_at": "2026-12-03T09:30:00+08:00",
                    "grade": 3,
                    "seriousness": ["hospitalization_or_prolongation"],
                    "relationship": {"fat_graft": "possible", "hair_transplantation": "possible"},
                    "action_taken": "hospitalized",
                    "outcome": "recovering",
                }
            ]
        },
    )

    term: Text = Field(min_length=2, max_length=200, description="CTCAE / MedDRA term, no personal data")
    onset_date: ClinicalDate
    site_aware_at: Instant = Field(description="when the site became aware (starts the 24-hour clock)")
    grade: CtcaeGrade
    seriousness: list[SeriousnessCriterion] = Field(default_factory=list, description="ICH E2A criteria that apply")
    relationship: ProcedureRelationship | None = Field(
        None, description="causality to each procedure: the investigator's assessment (investigators only)"
    )
    action_taken: ActionTaken
    outcome: AdverseEventOutcome


class AdverseEventFollowUp(BaseModel):
    """New information on a reported adverse event; fields left out are unchanged."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "ae_id": "0f8fad5b-d9cb-469f-a165-70867728950e",
                    "site_aware_at": "2026-12-08T10:00:00+08:00",
                    "outcome": "recovered",
                }
            ]
        },
    )

    ae_id: UUID
    site_aware_at: Instant = Field(description="when the site learned the new information")
    grade: CtcaeGrade | None = None
    seriousness: list[SeriousnessCriterion] | None = None
    relationship: ProcedureRelationship | None = Field(
        None, description="causality to each procedure: the investigator's assessment (investigators only)"
    )
    action_taken: ActionTaken | None = None
    outcome: AdverseEventOutcome | None = None


class AlertAcknowledgement(BaseModel):
    """A safety officer has seen the alert and taken it on."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={"examples": [{"alert_id": "7c9e6679-7425-40de-944b-e07fc1f90ae7"}]},
    )

    alert_id: UUID


class Anaesthesia(StrEnum):
    LOCAL = "local"
    LOCAL_WITH_SEDATION = "local_with_sedation"
    GENERAL = "general"


class DonorSite(StrEnum):
    OCCIPITAL = "occipital"
    PARIETAL = "parietal"
    TEMPORAL = "temporal"
    OTHER = "other"


class FatHarvestSite(StrEnum):
    ABDOMEN = "abdomen"
    THIGH = "thigh"
    FLANK = "flank"
    OTHER = "other"


class FatGraftRecord(BaseModel):
    """Arm FG_HT: the fat harvest and the ECM/SVF-gel grafted into the recipient area."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    fat_harvest_site: FatHarvestSite
    harvested_fat_ml: Annotated[Decimal, Measured(gt=0, le=1000, places=1)]
    ecm_svf_gel_ml: Annotated[Decimal, Measured(gt=0, le=200, places=1)]


class ProcedureForm(Correctable):
    """The surgery (day 0), as the protocol lists it for both arms; `fat_graft` for arm FG_HT.

    A correction repeats the whole record, names the event it `supersedes`, and gives a reason.
    """

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "procedure_date": "2026-12-01",
                    "surgeon": "srg-01",
                    "anaesthesia": "local",
                    "recipient_area_cm2": 24.5,
                    "follicular_units": 1200,
                    "donor_site": "occipital",
                    "fat_graft": {"fat_harvest_site": "abdomen", "harvested_fat_ml": 60, "ecm_svf_gel_ml": 12.5},
                }
            ]
        },
    )

    procedure_date: ClinicalDate
    surgeon: Text = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$", description="staff code")
    anaesthesia: Anaesthesia
    recipient_area_cm2: Annotated[Decimal, Measured(gt=0, le=500, places=1)]
    follicular_units: int = Field(ge=1, le=10000, description="follicular units transplanted")
    donor_site: DonorSite
    fat_graft: FatGraftRecord | None = None


class VisitAssessments(Correctable):
    """The follow-up assessments (photographs are referenced, stored outside the event log)."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "visit_date": "2027-06-01",
                    "hair_density_per_cm2": 42.5,
                    "grafts_surviving": 980,
                    "satisfaction": 8,
                    "mlossi": 3,
                    "losdi": 4,
                    "photo_reference": "pacs:NFH-001/M6/1",
                }
            ]
        },
    )

    visit_date: ClinicalDate
    hair_density_per_cm2: Annotated[Decimal, Measured(ge=0, le=400, places=1)]
    grafts_surviving: int = Field(ge=0, le=10000)
    satisfaction: int = Field(ge=0, le=10, description="patient satisfaction 0–10")
    mlossi: int = Field(ge=0, le=300, description="modified Localized Scleroderma Skin Severity Index")
    losdi: int = Field(ge=0, le=300, description="Localized Scleroderma Skin Damage Index")
    photo_reference: Text | None = Field(None, max_length=200, pattern=r"^[A-Za-z0-9._:/-]+$")


class VisitRecord(VisitAssessments):
    """A visit's assessments with the visit code taken from the path."""

    visit: Text = Field(pattern=VISIT_CODE_PATTERN)


class WithdrawalReason(StrEnum):
    ADVERSE_EVENT = "adverse_event"
    SUBJECT_DECISION = "subject_decision"
    LOST_TO_FOLLOW_UP = "lost_to_follow_up"
    INVESTIGATOR_DECISION = "investigator_decision"
    PROTOCOL_VIOLATION = "protocol_violation"
    DEATH = "death"
    OTHER = "other"


class DecidedBy(StrEnum):
    SUBJECT = "subject"
    INVESTIGATOR = "investigator"
    SPONSOR = "sponsor"


class WithdrawalForm(Correctable):
    """End of participation before the end of study: no further visits are expected."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "examples": [{"withdrawn_on": "2027-03-01", "reason_category": "subject_decision", "decided_by": "subject"}]
        },
    )

    withdrawn_on: ClinicalDate
    reason_category: WithdrawalReason
    decided_by: DecidedBy


FIELD_PATH_PATTERN = r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$"
QueryText = Annotated[Text, Field(min_length=1, max_length=2000)]


class QueryOpening(BaseModel):
    """A monitor's or data manager's question on one form of a subject, optionally on one field."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "examples": [{"form": "screening", "field": "weight_kg", "text": "Source says 45 kg; please check."}]
        },
    )

    form: str = Field(
        pattern=FORM_PATTERN, max_length=80, description="consent, screening, procedure, visit-M1, ae-<id>, …"
    )
    field: str | None = Field(None, max_length=100, pattern=FIELD_PATH_PATTERN, description="a field of the form")
    text: QueryText


class QueryMessage(BaseModel):
    """The site's answer, or the opener's comment when re-opening."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", json_schema_extra={"examples": [{"text": "Transcription error, corrected."}]}
    )

    text: QueryText


class QueryClosing(BaseModel):
    """The opener's closing comment, if any."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", json_schema_extra={"examples": [{"text": "Corrected value matches source."}]}
    )

    text: QueryText | None = None


class QueryStep(BaseModel):
    """An answer, close or re-open of one query (its id from the path)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    query_id: UUID
    text: QueryText | None = None


ItemPath = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$", max_length=120)]


class FormVerification(BaseModel):
    """Source data verification of one record of a form: its version (the form's ETag)."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"version": "7c9e6679-7425-40de-944b-e07fc1f90ae7"},
                {"version": "7c9e6679-7425-40de-944b-e07fc1f90ae7", "items": ["visit_date", "grafts_surviving"]},
            ]
        },
    )

    version: UUID
    items: tuple[ItemPath, ...] = Field(
        (),
        max_length=200,
        description="the items checked against source, by dotted path (`fat_graft.harvested_fat_ml`); none: the "
        "whole record. The record counts as verified once every item holding an answer is.",
    )


class FormVerificationRecord(FormVerification):
    """A verification with the form's name taken from the path."""

    form: str = Field(pattern=FORM_PATTERN)


class CasebookLock(BaseModel):
    """Lock a subject's casebook: every form verified or not, no query may be open."""

    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra={"examples": [{}]})


class CasebookUnlock(BaseModel):
    """Unlock a subject's casebook, saying why."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={"examples": [{"reason": "a query on the M6 visit raised after the lock"}]},
    )

    reason: Text = Field(min_length=10, max_length=500, description="why the locked data must be opened again")


class DatabaseLock(BaseModel):
    """Freeze the trial's database for analysis: every subject's casebook is locked."""

    model_config = ConfigDict(frozen=True, extra="forbid", json_schema_extra={"examples": [{}]})


class SignatureKind(StrEnum):
    ELIGIBILITY = "eligibility"
    CASEBOOK = "casebook"


# What each signature means, stated by the signer word for word (21 CFR 11.50: the meaning is part of it).
SIGNATURE_MEANINGS: dict[SignatureKind, str] = {
    SignatureKind.ELIGIBILITY: "I confirm eligibility",
    SignatureKind.CASEBOOK: "casebook reviewed and complete",
}


class SignatureForm(BaseModel):
    """An investigator's electronic signature: the meaning, stated as the protocol words it. The token must show
    an authentication of the last few minutes (sign in again just before signing)."""

    model_config = ConfigDict(
        frozen=True, extra="forbid", json_schema_extra={"examples": [{"meaning": "I confirm eligibility"}]}
    )

    meaning: Text = Field(min_length=1, max_length=100)


class Signing(SignatureForm):
    """A signature with its kind taken from the path."""

    kind: SignatureKind


class AccessChange(BaseModel):
    """Revoke or restore a user's access: the user's id (the tokens' subject) and why."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={"examples": [{"user": "crc-17", "reason": "left the study team on 2026-11-30"}]},
    )

    user: str = Field(pattern=r"^[\x21-\x7e]{1,100}$", description="the user's id: the subject (sub) of their tokens")
    reason: Text = Field(min_length=10, max_length=500)


class AccessChangeRecord(AccessChange):
    """With whether access is revoked or restored, from the path."""

    revoked: bool


class EndpointAssessmentForm(BaseModel):
    """The blinded outcome assessor's counts at one visit, from its photographs alone."""

    model_config = ConfigDict(
        frozen=True,
        extra="forbid",
        json_schema_extra={"examples": [{"grafts_surviving": 812, "hair_density_per_cm2": "41.5"}]},
    )

    grafts_surviving: int = Field(ge=0, le=10000)
    hair_density_per_cm2: Annotated[Decimal, Measured(ge=0, le=400, places=1)]
