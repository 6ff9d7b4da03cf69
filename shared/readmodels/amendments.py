"""The protocol's amendments as people review them: what each changed, who deployed it and when, each site's day and
the subjects it touched there; and each site's work list of subjects who must sign a revised consent form before
their next visit."""

from datetime import date, datetime
from typing import Any

import asyncpg
from pydantic import BaseModel, Field

from shared.contracts.amendments import ProtocolVersions
from shared.contracts.events import ProtocolAmendmentDeployed
from shared.contracts.protocol import ProtocolDefinition
from shared.readmodels.states import NOT_TAKING_PART, SubjectState
from shared.runtime.postgres import Connection

# A subject an amendment touched at its site: first consented before the site's day, and still taking part on it
# (not withdrawn, completed, dead, withdrawn from consent or screened out before it).
_TOUCHED = f"""
s.site = m.site AND s.consented_on < m.effective_on
AND COALESCE(LEAST(s.consent_withdrawn_on, s.withdrawn_on, s.completed_on, s.died_on), m.effective_on)
    >= m.effective_on
AND NOT (s.state = '{SubjectState.SCREEN_FAILED}' AND s.last_screened_on < m.effective_on)
"""

AMENDMENTS = f"""
SELECT a.version, a.amends, a.summary, a.summary_zh, a.consent_form_version, a.migrates, a.reschedules,
       a.deployed_at, a.deployed_by,
       (SELECT jsonb_agg(jsonb_build_object(
                   'site', m.site, 'effective_on', m.effective_on, 'in_force_at', m.in_force_at,
                   'subjects_touched', (SELECT COALESCE(jsonb_agg(s.subject_id ORDER BY s.subject_id), '[]')
                                          FROM subjects s WHERE {_TOUCHED}))
                 ORDER BY m.site)
          FROM amendment_sites m WHERE m.version = a.version) AS sites
  FROM protocol_amendments a
 ORDER BY a.deployed_at
"""

DEFINITION = "SELECT definition FROM protocol_amendments WHERE version = $1"

DEPLOYED = """
SELECT a.version, a.amends, a.summary, a.summary_zh, a.consent_form_version, a.migrates, a.reschedules,
       a.definition,
       (SELECT jsonb_object_agg(m.site, m.effective_on) FROM amendment_sites m WHERE m.version = a.version)
           AS effective
  FROM protocol_amendments a
 ORDER BY a.deployed_at
"""

# The version each subject's data stand under: the one their latest screening was judged under, or for a subject
# not screened the one in force at the site on the day they first consented.
SUBJECT_VERSIONS = """
SELECT s.subject_id, s.site,
       (SELECT l.protocol_version FROM screening_log l WHERE l.subject_id = s.subject_id
         ORDER BY l.screening_number DESC LIMIT 1) AS screened_under,
       s.consented_on AS first_consented_on
  FROM subjects s
"""

# Subjects of the site taking part now who have not signed the consent form an amendment in force revised: what
# the services refuse their next form for (whenever they first consented); the latest revision in force only.
RECONSENT = f"""
SELECT s.subject_id, s.state, a.consent_form_version AS required_version, m.effective_on AS since,
       s.consent_form_version AS last_signed_version
  FROM amendment_sites m
  JOIN protocol_amendments a USING (version)
  JOIN subjects s ON s.site = m.site
 WHERE m.site = $1 AND m.effective_on <= $2 AND a.consent_form_version IS NOT NULL
   AND s.state <> ALL($3::text[]) AND s.state <> '{SubjectState.SCREEN_FAILED}'
   AND NOT EXISTS (SELECT 1 FROM consent_versions c
                    WHERE c.subject_id = s.subject_id AND c.version = a.consent_form_version)
   AND NOT EXISTS (SELECT 1 FROM amendment_sites later JOIN protocol_amendments revised USING (version)
                    WHERE later.site = m.site AND later.effective_on <= $2 AND later.effective_on > m.effective_on
                      AND revised.consent_form_version IS NOT NULL)
 ORDER BY m.effective_on, s.subject_id
"""


class AmendmentAtSite(BaseModel):
    site: str
    effective_on: date = Field(description="the site's first day under the amendment (its ethics approval)")
    in_force_at: datetime | None = Field(description="when it was recorded in force there, once the day came")
    subjects_touched: list[str] = Field(description="consented before the day and still taking part on it")


class AmendmentView(BaseModel):
    version: str
    amends: str
    summary: str
    summary_zh: str
    consent_form_version: str | None = Field(description="the revised consent form, where the amendment revised it")
    migrates: list[str]
    reschedules: bool
    deployed_at: datetime
    deployed_by: str
    sites: list[AmendmentAtSite]


class ReconsentDue(BaseModel):
    subject_id: str
    state: str
    required_version: str = Field(description="the revised consent form the subject signs before their next visit")
    since: date = Field(description="the site's day the amendment took effect")
    last_signed_version: str | None


async def amendments(conn: Connection | asyncpg.Pool) -> list[AmendmentView]:
    """Every amendment, the first deployed first."""
    return [AmendmentView.model_validate(dict(r)) for r in await conn.fetch(AMENDMENTS)]


async def amendment_definition(conn: Connection | asyncpg.Pool, version: str) -> dict[str, Any] | None:
    """The whole definition of a version an amendment deployed, as it was deployed."""
    definition: dict[str, Any] | None = await conn.fetchval(DEFINITION, version)
    return definition


async def deployed_amendments(conn: Connection | asyncpg.Pool) -> list[ProtocolAmendmentDeployed]:
    """Every amendment deployed, as the read models hold it, the first first."""
    return [ProtocolAmendmentDeployed.model_validate(dict(r)) for r in await conn.fetch(DEPLOYED)]


async def protocol_versions(conn: Connection | asyncpg.Pool, first: ProtocolDefinition) -> ProtocolVersions:
    """Every version of the protocol as the read models hold them: the first, and each amendment deployed since."""
    return ProtocolVersions(first, tuple(await deployed_amendments(conn)))


async def subject_versions(conn: Connection | asyncpg.Pool, versions: ProtocolVersions) -> dict[str, str]:
    """The protocol version each subject's data stand under, by subject."""
    under: dict[str, str] = {}
    for r in await conn.fetch(SUBJECT_VERSIONS):
        consented = r["first_consented_on"]
        in_force = versions.in_force(r["site"], consented).version if consented else versions.first.version
        under[r["subject_id"]] = r["screened_under"] or in_force
    return under


async def reconsent_due(conn: Connection | asyncpg.Pool, site: str, today: date) -> list[ReconsentDue]:
    """The site's subjects who must sign a revised consent form before anything further, the longest waiting
    first."""
    rows = await conn.fetch(RECONSENT, site, today, sorted(NOT_TAKING_PART))
    return [ReconsentDue.model_validate(dict(r)) for r in rows]
