"""Reads from the Postgres read models (built by the reporting projections, never written here)."""

from datetime import date, datetime

import asyncpg
from pydantic import BaseModel


class SubjectView(BaseModel):
    subject_id: str
    site: str
    state: str
    consent_form_version: str | None
    consented_on: date | None
    last_event_type: str
    last_event_at: datetime


SELECT_SUBJECT = """
SELECT subject_id, site, state, consent_form_version, consented_on, last_event_type, last_event_at
FROM subjects WHERE site = $1 AND subject_id = $2
"""


async def find_subject(pool: asyncpg.Pool, site: str, subject: str) -> SubjectView | None:
    row = await pool.fetchrow(SELECT_SUBJECT, site, subject)
    return SubjectView.model_validate(dict(row)) if row else None
