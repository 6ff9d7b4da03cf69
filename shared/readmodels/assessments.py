"""The blinded outcome assessor's list: what it shows is chosen so that nothing names or implies the arm (no
procedure, no fat-graft item, no randomization, no adverse event): the subject, the visit, its photographs' views
and hashes, and the counts the assessor made, if any."""

import asyncpg
from pydantic import BaseModel, Field

from shared.runtime.postgres import Connection


class PhotographRef(BaseModel):
    view: str
    sha256: str


class AssessmentView(BaseModel):
    site: str
    subject_id: str
    visit: str
    photographs: list[PhotographRef]
    grafts_surviving: int | None = Field(description="the assessor's count, once made")
    hair_density_per_cm2: float | None


ASSESSMENTS = """
SELECT p.site, p.subject_id, p.visit, jsonb_agg(jsonb_build_object('view', p.view, 'sha256', p.sha256)
                                                ORDER BY p.view, p.sha256) AS photographs,
       a.grafts_surviving, a.hair_density_per_cm2
  FROM scalp_photographs p LEFT JOIN endpoint_assessments a USING (subject_id, visit)
 WHERE p.visit = ANY($1::text[])
 GROUP BY p.site, p.subject_id, p.visit, a.grafts_surviving, a.hair_density_per_cm2
 ORDER BY a.grafts_surviving IS NOT NULL, p.subject_id, p.visit
"""


async def assessments_to_make(conn: Connection | asyncpg.Pool, visits: list[str]) -> list[AssessmentView]:
    """Each follow-up visit with photographs, those still to assess first."""
    return [AssessmentView.model_validate(dict(r)) for r in await conn.fetch(ASSESSMENTS, visits)]
