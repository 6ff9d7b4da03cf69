"""The CONSORT 2010 flow from the read models, and its diagram in the CONSORT layout (SVG)."""

from html import escape

from pydantic import BaseModel, Field

from shared.contracts.forms import WithdrawalReason
from shared.contracts.protocol import ProtocolDefinition
from shared.readmodels.states import SubjectState, VisitStatus
from shared.runtime.postgres import Connection

LATEST_SCREENING = """
SELECT DISTINCT ON (subject_id) subject_id, screening_number, eligible
  FROM screening_log ORDER BY subject_id, screening_number DESC
"""

# Everyone approached: a subject exists from their consent, or from their refusal to consent.
ASSESSED = "SELECT count(*) FROM subjects"

# $1: every criterion code in the protocol's order. Each excluded subject once, by the first criterion failed.
EXCLUDED_BY_FIRST_CRITERION = f"""
SELECT first_code AS code, count(*) AS n
  FROM (SELECT DISTINCT ON (l.subject_id) l.subject_id, c.code AS first_code
          FROM ({LATEST_SCREENING}) AS l
          JOIN screening_criteria AS c USING (subject_id, screening_number)
         WHERE NOT l.eligible AND c.blocks AND l.subject_id NOT IN (SELECT subject_id FROM randomizations)
         ORDER BY l.subject_id, array_position($1::text[], c.code)) AS first_failed
 GROUP BY first_code ORDER BY array_position($1::text[], first_code)
"""

# Every criterion failed, by criterion: one subject may fail several, so these may add up to more.
FAILED_CRITERIA = f"""
SELECT c.code, count(*) AS n
  FROM ({LATEST_SCREENING}) AS l
  JOIN screening_criteria AS c USING (subject_id, screening_number)
 WHERE NOT l.eligible AND c.blocks AND l.subject_id NOT IN (SELECT subject_id FROM randomizations)
 GROUP BY c.code ORDER BY array_position($1::text[], c.code)
"""

# Everyone approached and not randomized, in exactly one box: not meeting the criteria (at the latest
# screening), declined (refused consent, or withdrew it), or other reasons (e.g. not yet screened or randomized).
NOT_RANDOMIZED = f"""
SELECT count(*) FILTER (WHERE l.eligible IS FALSE) AS ineligible,
       count(*) FILTER (WHERE l.eligible IS NOT FALSE
                          AND (s.state = '{SubjectState.CONSENT_DECLINED}' OR s.consent_withdrawn_on IS NOT NULL))
           AS declined,
       count(*) FILTER (WHERE s.state = '{SubjectState.CONSENT_DECLINED}') AS refused_consent,
       count(*) FILTER (WHERE l.eligible IS NOT FALSE AND s.state <> '{SubjectState.CONSENT_DECLINED}'
                          AND s.consent_withdrawn_on IS NULL) AS other
  FROM subjects AS s
  LEFT JOIN ({LATEST_SCREENING}) AS l USING (subject_id)
 WHERE s.subject_id NOT IN (SELECT subject_id FROM randomizations)
"""

# $1: the arms that receive the fat graft; $2: the primary-endpoint visit (both from the protocol definition).
PER_ARM = f"""
SELECT r.arm,
       count(*) AS allocated,
       count(*) FILTER (WHERE r.invalidated) AS invalidated,
       count(p.subject_id) FILTER (WHERE (r.arm = ANY($1::text[])) = (p.ecm_svf_gel_ml IS NOT NULL)) AS received,
       count(*) FILTER (WHERE p.subject_id IS NULL) AS not_operated,
       count(p.subject_id) FILTER (WHERE (r.arm = ANY($1::text[])) <> (p.ecm_svf_gel_ml IS NOT NULL))
           AS other_procedure,
       count(*) FILTER (WHERE s.withdrawal_reason = '{WithdrawalReason.LOST_TO_FOLLOW_UP}') AS lost_to_follow_up,
       count(*) FILTER (WHERE s.state = '{SubjectState.DIED}') AS died,
       count(*) FILTER (WHERE NOT r.invalidated AND primary_visit.status = '{VisitStatus.COMPLETED}'
                          AND primary_visit.in_window) AS analysed,
       count(*) FILTER (WHERE NOT r.invalidated AND primary_visit.status = '{VisitStatus.COMPLETED}'
                          AND NOT primary_visit.in_window) AS primary_out_of_window,
       count(*) FILTER (WHERE NOT r.invalidated AND primary_visit.status IS DISTINCT FROM '{VisitStatus.COMPLETED}')
           AS primary_not_done
  FROM randomizations AS r
  LEFT JOIN procedures AS p USING (subject_id)
  LEFT JOIN subjects AS s USING (subject_id)
  LEFT JOIN visits AS primary_visit ON primary_visit.subject_id = r.subject_id AND primary_visit.visit = $2
 GROUP BY r.arm ORDER BY r.arm
"""

DISCONTINUED = f"""
SELECT r.arm, s.withdrawal_reason AS reason, count(*) AS n
  FROM randomizations AS r JOIN subjects AS s USING (subject_id)
 WHERE s.withdrawal_reason IS NOT NULL AND s.withdrawal_reason <> '{WithdrawalReason.LOST_TO_FOLLOW_UP}'
 GROUP BY r.arm, s.withdrawal_reason ORDER BY r.arm, s.withdrawal_reason
"""


class ArmFlow(BaseModel):
    arm: str
    allocated: int
    received_allocated_intervention: int
    did_not_receive: dict[str, int] = Field(description="not operated; operated with the other arm's procedure")
    randomization_invalidated: int
    lost_to_follow_up: int
    discontinued: dict[str, int] = Field(description="withdrawals by reason (lost to follow-up apart)")
    died: int
    analysed: int = Field(
        description="the primary analysis set: valid randomization and the primary-endpoint visit (M6) done in its "
        "window; the same n as the primary endpoint's first analysis"
    )
    excluded_from_analysis: int = Field(description="allocated and not analysed: the three reasons below, each once")
    primary_visit_out_of_window: int = Field(description="excluded: the primary-endpoint visit done outside its window")
    primary_visit_not_done: int = Field(description="excluded: the primary-endpoint visit not done (yet)")


class Consort(BaseModel):
    primary_visit: str = Field(description="the primary-endpoint visit, whose analysis set is the Analysed box")
    assessed_for_eligibility: int
    excluded: int
    not_meeting_criteria: int
    excluded_by_criterion: dict[str, int] = Field(
        description="subjects not meeting the criteria, each once, by the first criterion failed (protocol order)"
    )
    failed_criteria: dict[str, int] = Field(
        description="every criterion failed, by criterion: one subject may fail several, so these can add up to more"
    )
    declined_to_participate: int = Field(
        description="refused consent when approached, or withdrew it before allocation"
    )
    refused_consent: int = Field(description="of those declining: refused consent when approached")
    other_reasons: int = Field(description="consented, and not (yet) screened or randomized")
    randomized: int
    arms: list[ArmFlow]


async def consort(conn: Connection, protocol: ProtocolDefinition) -> Consort:
    assessed = int(await conn.fetchval(ASSESSED))
    codes = list(protocol.eligibility.codes)
    by_criterion = {r["code"]: r["n"] for r in await conn.fetch(EXCLUDED_BY_FIRST_CRITERION, codes)}
    failed = {r["code"]: r["n"] for r in await conn.fetch(FAILED_CRITERIA, codes)}
    not_randomized = await conn.fetchrow(NOT_RANDOMIZED)
    assert not_randomized is not None
    discontinued: dict[str, dict[str, int]] = {}
    for r in await conn.fetch(DISCONTINUED):
        discontinued.setdefault(r["arm"], {})[r["reason"]] = r["n"]
    arms = [
        ArmFlow(
            arm=r["arm"],
            allocated=r["allocated"],
            received_allocated_intervention=r["received"],
            did_not_receive={"not_operated": r["not_operated"], "other_arm_procedure": r["other_procedure"]},
            randomization_invalidated=r["invalidated"],
            lost_to_follow_up=r["lost_to_follow_up"],
            discontinued=discontinued.get(r["arm"], {}),
            died=r["died"],
            analysed=r["analysed"],
            excluded_from_analysis=r["allocated"] - r["analysed"],
            primary_visit_out_of_window=r["primary_out_of_window"],
            primary_visit_not_done=r["primary_not_done"],
        )
        for r in await conn.fetch(PER_ARM, list(protocol.fat_graft_arms), protocol.schedule.primary_endpoint.code)
    ]
    excluded = not_randomized["ineligible"] + not_randomized["declined"] + not_randomized["other"]
    return Consort(
        primary_visit=protocol.schedule.primary_endpoint.code,
        assessed_for_eligibility=assessed,
        excluded=excluded,
        not_meeting_criteria=not_randomized["ineligible"],
        excluded_by_criterion=by_criterion,
        failed_criteria=failed,
        declined_to_participate=not_randomized["declined"],
        refused_consent=not_randomized["refused_consent"],
        other_reasons=not_randomized["other"],
        randomized=sum(a.allocated for a in arms),
        arms=arms,
    )


def _box(x: int, y: int, w: int, lines: list[str], *, bold: bool = False) -> str:
    h = 16 * len(lines) + 12
    weight = ' font-weight="bold"'
    text = "".join(
        f'<text x="{x + 8}" y="{y + 20 + 16 * i}"{weight if bold and i == 0 else ""}>{escape(line)}</text>'
        for i, line in enumerate(lines)
    )
    return f'<rect x="{x}" y="{y}" width="{w}" height="{h}" fill="white" stroke="#333"/>{text}'


def _arrow(x1: int, y1: int, x2: int, y2: int) -> str:
    return f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#333" marker-end="url(#a)"/>'


def consort_svg(flow: Consort, *, title: str) -> str:
    """The CONSORT layout: enrolment at the top, one column per arm for allocation, follow-up, analysis."""
    # Each subject once, by the first criterion failed: the lines add up to the box's number.
    criteria = [f"    first failed {code}: {n}" for code, n in flow.excluded_by_criterion.items()]
    primary = flow.primary_visit
    parts = [
        _box(250, 40, 300, [f"Assessed for eligibility (n={flow.assessed_for_eligibility})"], bold=True),
        _box(
            600,
            100,
            330,
            [
                f"Excluded (n={flow.excluded})",
                f"• Not meeting inclusion criteria or excluded (n={flow.not_meeting_criteria})",
                *criteria,
                f"• Declined to participate (n={flow.declined_to_participate})",
                f"    refused consent: {flow.refused_consent}",
                f"• Other reasons (n={flow.other_reasons})",
            ],
        ),
        _box(300, 140 + 16 * len(criteria) + 60, 200, [f"Randomized (n={flow.randomized})"], bold=True),
        _arrow(400, 68, 400, 140 + 16 * len(criteria) + 60),
        _arrow(400, 120, 600, 120),
    ]
    top = 140 + 16 * len(criteria) + 140
    for i, arm in enumerate(flow.arms):
        x = 60 + i * 420
        stages = [
            (
                "Allocation",
                [
                    f"Allocated to {arm.arm} (n={arm.allocated})",
                    f"• Received allocated intervention (n={arm.received_allocated_intervention})",
                    f"• Did not receive (n={sum(arm.did_not_receive.values())}):",
                    *[f"    {k.replace('_', ' ')}: {v}" for k, v in arm.did_not_receive.items()],
                ],
            ),
            (
                "Follow-up",
                [
                    f"Lost to follow-up (n={arm.lost_to_follow_up})",
                    f"Discontinued intervention (n={sum(arm.discontinued.values())})",
                    *[f"    {k.replace('_', ' ')}: {v}" for k, v in arm.discontinued.items()],
                    f"Died (n={arm.died})",
                ],
            ),
            (
                "Analysis",
                [
                    f"Analysed (n={arm.analysed}): {primary} done in its window",
                    f"• Excluded from analysis (n={arm.excluded_from_analysis})",
                    f"    randomization invalidated: {arm.randomization_invalidated}",
                    f"    {primary} outside its window: {arm.primary_visit_out_of_window}",
                    f"    {primary} not done: {arm.primary_visit_not_done}",
                ],
            ),
        ]
        y = top
        for stage, lines in stages:
            parts.append(f'<text x="{x}" y="{y - 8}" font-weight="bold" fill="#555">{stage}</text>')
            parts.append(_box(x, y, 360, lines))
            y_next = y + 16 * len(lines) + 12 + 40
            parts.append(_arrow(x + 180, y + 16 * len(lines) + 12, x + 180, y_next))
            y = y_next
        parts.pop()  # no arrow below the last box
        parts.append(_arrow(400, top - 52, x + 180, top))  # from the Randomized box's lower edge
    height = top + 420
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="960" height="{height}" '
        'font-family="sans-serif" font-size="12">'
        '<defs><marker id="a" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto">'
        '<path d="M0,0 L8,4 L0,8 z" fill="#333"/></marker></defs>'
        f'<text x="20" y="24" font-size="16" font-weight="bold">{escape(title)}</text>' + "".join(parts) + "</svg>"
    )
