"""The `subjects` read model as the gateway and the reports read it: the states, the views, the queries.

The reporting service's `SubjectsProjection` writes the same states; the migrations create the tables.
"""

from datetime import date, datetime
from decimal import Decimal
from uuid import UUID

import asyncpg
from pydantic import BaseModel, Field

from shared.readmodels.datamanagement import (
    FormSummary,
    QueryView,
    SdvCount,
    SignatureView,
    find_queries,
    subject_forms,
    subject_sdv,
    subject_signatures,
)
from shared.readmodels.states import SubjectState, VisitStatus


class AdverseEventView(BaseModel):
    ae_id: UUID
    term: str
    onset_date: date
    grade: int
    serious: bool
    seriousness: list[str]
    outcome: str
    reported_at: datetime
    follow_ups: int


class VisitView(BaseModel):
    visit: str
    status: VisitStatus
    target_date: date
    window_start: date
    window_end: date
    visit_date: date | None
    in_window: bool | None
    follicle_survival_pct: Decimal | None
    corrections: int
    not_expected_reason: str | None = Field(None, description="why a visit is no longer expected")


class PhotographView(BaseModel):
    visit: str
    view: str
    sha256: str
    recorded_at: datetime


class ConsentView(BaseModel):
    version: str = Field(description="the consent form's version")
    signed_on: date


class SubjectView(BaseModel):
    subject_id: str
    site: str
    state: SubjectState
    consent_form_version: str | None = Field(description="the version of the consent form signed last")
    consented_on: date | None = Field(description="the date of the first consent")
    consents: list[ConsentView] = Field(default_factory=list, description="every consent form signed, oldest first")
    consent_withdrawn_on: date | None
    consent_declined_on: date | None
    eligible: bool | None = Field(description="outcome of the latest screening; null before screening")
    screenings: int = Field(description="how many times screened (re-screens included)")
    last_screened_on: date | None
    screen_failure_reasons: list[str] = Field(description="criterion codes that kept the subject out")
    arm: str | None = Field(description="allocated arm (the trial is open label)")
    randomization_number: int | None
    randomization_invalidated: bool
    randomized_on: date | None = Field(description="the site's date of the randomization")
    died_on: date | None
    surgery_date: date | None
    withdrawn_on: date | None
    withdrawal_reason: str | None
    completed_on: date | None
    casebook_locked_at: datetime | None = Field(None, description="when a data manager locked the casebook")
    last_event_type: str
    last_event_at: datetime
    visits: list[VisitView] = Field(default_factory=list)
    adverse_events: list[AdverseEventView] = Field(default_factory=list)
    forms: list[FormSummary] = Field(default_factory=list, description="every form, its version and verification")
    sdv: SdvCount | None = Field(None, description="source data verification of the subject's forms")
    queries: list[QueryView] = Field(default_factory=list, description="every query on the subject's forms")
    signatures: list[SignatureView] = Field(default_factory=list, description="investigators' signatures")
    photographs: list[PhotographView] = Field(default_factory=list, description="scalp photographs, by visit")


SELECT_SUBJECT = """
SELECT subject_id, site, state, consent_form_version, consented_on, consent_withdrawn_on, consent_declined_on,
       eligible, screenings,
       last_screened_on, screen_failure_reasons, arm, randomization_number, randomization_invalidated, randomized_on,
       died_on, surgery_date, withdrawn_on, withdrawal_reason, completed_on, casebook_locked_at, last_event_type,
       last_event_at
FROM subjects WHERE site = $1 AND subject_id = $2
"""

SELECT_SUBJECT_VISITS = """
SELECT visit, status, target_date, window_start, window_end, visit_date, in_window, follicle_survival_pct, corrections,
       not_expected_reason
  FROM visits WHERE subject_id = $1 ORDER BY target_date
"""

SELECT_SUBJECT_PHOTOGRAPHS = """
SELECT visit, view, sha256, recorded_at FROM scalp_photographs WHERE subject_id = $1 ORDER BY recorded_at, view
"""

SELECT_SUBJECT_ADVERSE_EVENTS = """
SELECT ae_id, term, onset_date, grade, serious, seriousness, outcome, reported_at, follow_ups
  FROM adverse_events WHERE subject_id = $1 ORDER BY reported_at
"""


SELECT_SUBJECT_CONSENTS = (
    "SELECT version, signed_on FROM consent_versions WHERE subject_id = $1 ORDER BY signed_on, version"
)


async def find_subject(pool: asyncpg.Pool, site: str, subject: str) -> SubjectView | None:
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        row = await conn.fetchrow(SELECT_SUBJECT, site, subject)
        if row is None:
            return None
        adverse_events = await conn.fetch(SELECT_SUBJECT_ADVERSE_EVENTS, subject)
        visits = await conn.fetch(SELECT_SUBJECT_VISITS, subject)
        forms = await subject_forms(conn, subject)
        queries = await find_queries(conn, subject=subject)
        signatures = await subject_signatures(conn, subject)
        sdv = await subject_sdv(conn, subject)
        photographs = await conn.fetch(SELECT_SUBJECT_PHOTOGRAPHS, subject)
        consents = await conn.fetch(SELECT_SUBJECT_CONSENTS, subject)
    return SubjectView.model_validate(
        {
            **dict(row),
            "visits": [dict(r) for r in visits],
            "adverse_events": [dict(r) for r in adverse_events],
            "forms": forms,
            "sdv": sdv,
            "queries": queries,
            "signatures": signatures,
            "photographs": [dict(r) for r in photographs],
            "consents": [dict(r) for r in consents],
        }
    )


class SubjectSummary(BaseModel):
    subject_id: str
    site: str
    state: SubjectState
    eligible: bool | None
    arm: str | None
    randomization_number: int | None
    last_event_type: str
    last_event_at: datetime
    next_visit: str | None = Field(None, description="the first visit still scheduled; null before the surgery")
    next_visit_window: tuple[date, date] | None = Field(None, description="its window, first and last day")


class SubjectPage(BaseModel):
    items: list[SubjectSummary]
    next_after: str | None = Field(description="pass as `after` for the next page; null on the last page")


SELECT_SUBJECTS = f"""
SELECT s.subject_id, s.site, s.state, s.eligible, s.arm, s.randomization_number, s.last_event_type,
       s.last_event_at, v.visit AS next_visit,
       CASE WHEN v.visit IS NULL THEN NULL ELSE ARRAY[v.window_start, v.window_end] END AS next_visit_window
  FROM subjects s
  LEFT JOIN LATERAL (SELECT visit, window_start, window_end FROM visits
                      WHERE visits.subject_id = s.subject_id AND visits.status = '{VisitStatus.SCHEDULED}'
                      ORDER BY target_date LIMIT 1) v ON true
 WHERE s.site = $1 AND ($2::text IS NULL OR s.state = $2) AND ($3::text IS NULL OR s.subject_id > $3)
 ORDER BY s.subject_id
 LIMIT $4
"""


async def list_subjects(
    pool: asyncpg.Pool, site: str, *, state: str | None, after: str | None, limit: int
) -> SubjectPage:
    """Keyset paging by subject id: stable while subjects are added."""
    rows = await pool.fetch(SELECT_SUBJECTS, site, state, after, limit + 1)
    items = [SubjectSummary.model_validate(dict(r)) for r in rows[:limit]]
    return SubjectPage(items=items, next_after=items[-1].subject_id if len(rows) > limit else None)
