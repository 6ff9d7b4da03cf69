"""The `sae_alerts` read model as the safety team reads it through the gateway."""

from datetime import datetime
from enum import StrEnum
from uuid import UUID

import asyncpg
from pydantic import BaseModel, Field


class AlertState(StrEnum):
    OPEN = "open"
    ACKNOWLEDGED = "acknowledged"
    ALL = "all"


class AlertView(BaseModel):
    alert_id: UUID
    ae_id: UUID
    site: str
    subject_id: str
    term: str
    grade: int
    seriousness: list[str]
    site_aware_at: datetime
    reporting_deadline: datetime = Field(description="site_aware_at + 24 h: when the report was due")
    reported_at: datetime
    raised_at: datetime
    late: bool
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    escalations: int


SELECT_ALERTS = f"""
SELECT alert_id, ae_id, site, subject_id, term, grade, seriousness, site_aware_at,
       site_aware_at + interval '24 hours' AS reporting_deadline, reported_at, raised_at, late,
       acknowledged_at, acknowledged_by, escalations
  FROM sae_alerts
 WHERE ($1 = '{AlertState.ALL}' OR ($1 = '{AlertState.OPEN}') = (acknowledged_at IS NULL))
   AND ($2::uuid IS NULL OR alert_id = $2)
 ORDER BY raised_at
"""


async def find_alerts(pool: asyncpg.Pool, state: AlertState, *, alert_id: UUID | None = None) -> list[AlertView]:
    rows = await pool.fetch(SELECT_ALERTS, state.value, alert_id)
    return [AlertView.model_validate(dict(r)) for r in rows]
