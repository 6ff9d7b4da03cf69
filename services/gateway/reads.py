"""Reads from the Postgres read models (built by the reporting projections, never written here)."""

from datetime import date, datetime

import asyncpg
from pydantic import BaseModel, Field


class SubjectView(BaseModel):
    subject_id: str
    site: str
    state: str
    consent_form_version: str | None
    consented_on: date | None
    consent_withdrawn_on: date | None
    eligible: bool | None = Field(description="outcome of the latest screening; null before screening")
    screenings: int = Field(description="how many times screened (re-screens included)")
    last_screened_on: date | None
    screen_failure_reasons: list[str] = Field(description="criterion codes that kept the subject out")
    arm: str | None = Field(description="allocated arm (the trial is open label)")
    randomization_number: int | None
    randomization_invalidated: bool
    last_event_type: str
    last_event_at: datetime


SELECT_SUBJECT = """
SELECT subject_id, site, state, consent_form_version, consented_on, consent_withdrawn_on, eligible, screenings,
       last_screened_on, screen_failure_reasons, arm, randomization_number, randomization_invalidated,
       last_event_type, last_event_at
FROM subjects WHERE site = $1 AND subject_id = $2
"""


async def find_subject(pool: asyncpg.Pool, site: str, subject: str) -> SubjectView | None:
    row = await pool.fetchrow(SELECT_SUBJECT, site, subject)
    return SubjectView.model_validate(dict(row)) if row else None
