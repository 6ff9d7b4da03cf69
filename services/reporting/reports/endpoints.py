"""The trial's endpoints by arm, from the visits read model: follicle survival at the primary-endpoint visit
(the question the trial asks), every assessment over time, and the rows the ADaM datasets are built from.

The visits read model holds each visit's current record (a correction replaces what it supersedes), so
corrections are applied and superseded records excluded here by construction. Statistics come from SciPy;
nothing below re-implements a test or a distribution.
"""

import statistics
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from html import escape
from typing import Any, SupportsFloat
from uuid import UUID

from pydantic import BaseModel, Field

from services.reporting.reports.pictures import svg_text
from shared.contracts.dictionary import Translated
from shared.contracts.protocol import ProtocolDefinition
from shared.contracts.schedule import follicle_survival
from shared.readmodels.states import VisitStatus
from shared.runtime.postgres import Connection

CONFIDENCE = 0.95
# NumPy and SciPy are imported where a statistic is computed: a process that never computes one (the gateway
# answering forms, the reporting service projecting) does not carry them (about 100 MB).


@dataclass(frozen=True)
class Assessment:
    """One assessment the follow-up visits record: its ADaM parameter code, label and read-model column."""

    paramcd: str
    param: str
    column: str
    param_zh: str  # the label in Simplified Chinese, for the pages


# The assessments of the protocol's follow-up visits, in the order the reports show them.
ASSESSMENTS = (
    Assessment("FOLSURV", "Follicle survival (%)", "follicle_survival_pct", "毛囊存活率（%）"),
    Assessment(
        "HAIRDENS", "Hair density in the recipient area (hairs/cm2)", "hair_density_per_cm2", "受区毛发密度（根/cm²）"
    ),
    Assessment("SATIS", "Patient satisfaction (0-10)", "satisfaction", "患者满意度（0-10）"),
    Assessment(
        "MLOSSI",
        "Modified localized scleroderma skin severity index (mLoSSI)",
        "mlossi",
        "改良局限性硬皮病皮肤严重程度指数（mLoSSI）",
    ),
    Assessment(
        "LOSDI", "Localized scleroderma skin damage index (LoSDI)", "losdi", "局限性硬皮病皮肤损害指数（LoSDI）"
    ),
)
# The primary analysis sets by their code, in both languages ({visit}: the primary-endpoint visit).
ANALYSIS_SETS = {
    "in_window": Translated(
        en="randomized, randomization valid, {visit} done in its window",
        zh="已随机且随机有效，{visit}在时间窗内完成",
    ),
    "all_visits": Translated(
        en="randomized, randomization valid, {visit} done (out-of-window visits included)",
        zh="已随机且随机有效，{visit}已完成（含时间窗外随访）",
    ),
}
PRIMARY = ASSESSMENTS[0]
# What the blinded assessor counts on the photographs: where it has, these come from its count.
BLIND_PARAMETERS = ("FOLSURV", "HAIRDENS")


class EndpointRecord(BaseModel):
    """One subject's assessments at one visit, as currently recorded."""

    subject_id: str
    site: str
    arm: str
    randomization_valid: bool = Field(description="false when the randomization was invalidated")
    visit: str
    visit_date: date
    study_day: int = Field(description="days since the surgery (day 0)")
    in_window: bool
    follicle_survival_pct: Decimal
    hair_density_per_cm2: Decimal
    satisfaction: int
    mlossi: int
    losdi: int
    event_id: UUID = Field(description="the visit event the values come from")
    assessment_id: UUID | None = Field(
        None, description="the blinded assessor's counts the follicle survival and hair density come from, if made"
    )

    @property
    def assessed_blind(self) -> bool:
        return self.assessment_id is not None

    def value(self, assessment: Assessment) -> float:
        return float(getattr(self, assessment.column))


async def endpoint_records(conn: Connection) -> list[EndpointRecord]:
    """Each completed visit's values: the follicle survival and hair density the blinded assessor counted on its
    photographs where one did (survival against the grafts transplanted), else the site's."""
    rows = await conn.fetch(
        """SELECT r.subject_id, r.site, r.arm, NOT r.invalidated AS randomization_valid, v.visit, v.visit_date,
                  v.study_day, v.in_window, v.follicle_survival_pct, v.hair_density_per_cm2, v.satisfaction,
                  v.mlossi, v.losdi, v.event_id, a.event_id AS assessment_id, a.grafts_surviving AS assessed_grafts,
                  a.hair_density_per_cm2 AS assessed_density, p.follicular_units
             FROM randomizations AS r JOIN visits AS v USING (subject_id)
                  LEFT JOIN endpoint_assessments AS a USING (subject_id, visit)
                  LEFT JOIN procedures AS p USING (subject_id)
            WHERE v.status = $1
            ORDER BY r.subject_id, v.target_date""",
        VisitStatus.COMPLETED.value,
    )
    records = []
    for row in rows:
        values = dict(row)
        grafts, density, transplanted = (
            values.pop(k) for k in ("assessed_grafts", "assessed_density", "follicular_units")
        )
        if values["assessment_id"] is not None:
            values |= {
                "follicle_survival_pct": follicle_survival(grafts, transplanted),
                "hair_density_per_cm2": density,
            }
        records.append(EndpointRecord.model_validate(values))
    return records


class ArmSummary(BaseModel):
    arm: str
    n: int
    mean: float | None
    sd: float | None
    median: float | None
    q1: float | None
    q3: float | None


class Difference(BaseModel):
    method: str
    estimate: float
    ci_low: float
    ci_high: float
    confidence: float = CONFIDENCE
    interval: str = Field("t distribution", description="where the interval comes from: which distribution")


class PrimaryAnalysis(BaseModel):
    analysis_set: str
    set_code: str = Field(description="the analysis set: in_window, or all_visits (out-of-window visits included)")
    arms: list[ArmSummary]
    difference: str = Field(description="which arm minus which")
    welch: Difference | None = Field(description="mean difference, Welch's unequal-variance t interval")
    hodges_lehmann: Difference | None = Field(
        description="Hodges-Lehmann shift (median of all pairwise differences), its interval from the Mann-Whitney "
        "distribution: exact for fewer than 50 per arm without ties, else the large-sample approximation"
    )
    assessed_blind: int = Field(0, description="values the blinded outcome assessor counted on the photographs")
    assessed_by_site: int = Field(0, description="values the site recorded, where no blinded count was made")


class PrimaryEndpointReport(BaseModel):
    endpoint: str
    visit: str
    analyses: list[PrimaryAnalysis]
    values_from: str = Field(
        "the blinded outcome assessor's count on the photographs where one was made, else the site's",
        description="whose values the analyses use (each analysis counts them: assessed_blind, assessed_by_site)",
    )


def _rounded(value: SupportsFloat) -> float:
    """Reports print two decimals; the tests compare at that precision."""
    return round(float(value), 2)


def summarize(arm: str, values: list[float]) -> ArmSummary:
    import numpy as np

    if not values:
        return ArmSummary(arm=arm, n=0, mean=None, sd=None, median=None, q1=None, q3=None)
    data = np.asarray(values)
    q1, median, q3 = np.percentile(data, [25, 50, 75])
    sd = _rounded(np.std(data, ddof=1)) if len(values) > 1 else None
    return ArmSummary(
        arm=arm,
        n=len(values),
        mean=_rounded(data.mean()),
        sd=sd,
        median=_rounded(median),
        q1=_rounded(q1),
        q3=_rounded(q3),
    )


def welch(a: list[float], b: list[float]) -> Difference | None:
    """Mean of `a` minus mean of `b` with Welch's t interval (no equal-variance assumption); none without data
    enough to estimate a variance."""
    import numpy as np
    from scipy import stats

    if len(a) < 2 or len(b) < 2:
        return None
    if statistics.variance(a) + statistics.variance(b) == 0:
        # No spread in either arm: the interval is undefined, not zero-wide. The standard library's variance (exact
        # sums) rather than numpy's, whose rounding leaves a few ulps of spread on identical values.
        return None
    result = stats.ttest_ind(a, b, equal_var=False)
    interval = result.confidence_interval(CONFIDENCE)
    if not (np.isfinite(interval.low) and np.isfinite(interval.high)):
        return None
    return Difference(
        method="Welch t",
        estimate=_rounded(np.mean(a) - np.mean(b)),
        ci_low=_rounded(float(interval.low)),
        ci_high=_rounded(float(interval.high)),
    )


# As R's wilcox.test: the exact distribution of the Mann-Whitney statistic below 50 subjects per arm with no ties,
# the large-sample normal form otherwise.
EXACT_BELOW = 50
EXACT = "exact Mann-Whitney distribution"
LARGE_SAMPLE = "large-sample normal approximation"


def mann_whitney_counts(n: int, m: int) -> list[int]:
    """How many of the C(n+m, n) equally likely orderings of two untied samples give each value of the
    Mann-Whitney statistic U, from 0 to n·m: its exact null distribution (f(i, j, u) = f(i-1, j, u-j) + f(i, j-1, u),
    built up one observation at a time)."""
    previous = [[1] for _ in range(m + 1)]  # no observations of the first sample: U = 0, one way
    for i in range(1, n + 1):
        current = [[1]]  # none of the second: U = 0
        for j in range(1, m + 1):
            counts = [0] * (i * j + 1)
            for u, ways in enumerate(previous[j]):  # the largest is the first sample's: it beats all j
                counts[u + j] += ways
            for u, ways in enumerate(current[j - 1]):  # ... or the second's
                counts[u] += ways
            current.append(counts)
        previous = current
    return previous[m]


def _exact_rank(n: int, m: int, tail: float) -> int:
    """The smallest u with P(U ≤ u) ≥ `tail` (R's qwilcox), at least 1."""
    counts = mann_whitney_counts(n, m)
    total, below = sum(counts), 0
    for u, ways in enumerate(counts):
        below += ways
        if below >= tail * total:
            return max(u, 1)
    return max(len(counts) - 1, 1)


def hodges_lehmann(a: list[float], b: list[float]) -> Difference | None:
    """The Hodges-Lehmann shift of `a` against `b` and its distribution-free interval.

    The estimate is the median of the n·m differences a_i − b_j; the interval runs between the order statistics
    the Mann-Whitney distribution picks (Hollander & Wolfe): its exact distribution for small untied samples, the
    normal approximation otherwise (as R's wilcox.test), and the report says which.
    """
    import numpy as np
    from scipy import stats

    n, m = len(a), len(b)
    if n < 2 or m < 2:
        return None
    differences = np.sort(np.subtract.outer(np.asarray(a), np.asarray(b)).ravel())
    tail = (1 - CONFIDENCE) / 2
    if n < EXACT_BELOW and m < EXACT_BELOW and len(set(a) | set(b)) == n + m:
        k, interval = _exact_rank(n, m, tail), EXACT
    else:
        z = stats.norm.ppf(1 - tail)
        # The interval cannot be narrower than the extreme differences allow.
        k, interval = max(int(np.floor(n * m / 2 - z * np.sqrt(n * m * (n + m + 1) / 12))), 1), LARGE_SAMPLE
    return Difference(
        method="Hodges-Lehmann",
        estimate=_rounded(np.median(differences)),
        ci_low=_rounded(differences[k - 1]),
        ci_high=_rounded(differences[n * m - k]),
        interval=interval,
    )


def analyse(records: list[EndpointRecord], protocol: ProtocolDefinition, *, set_code: str) -> PrimaryAnalysis:
    experimental, comparator = (a.code for a in protocol.arms)
    by_arm = {arm.code: [r.value(PRIMARY) for r in records if r.arm == arm.code] for arm in protocol.arms}
    a, b = by_arm[experimental], by_arm[comparator]
    visit = protocol.schedule.primary_endpoint.code
    return PrimaryAnalysis(
        analysis_set=ANALYSIS_SETS[set_code].en.format(visit=visit),
        set_code=set_code,
        arms=[summarize(arm, values) for arm, values in by_arm.items()],
        difference=f"{experimental} - {comparator}",
        welch=welch(a, b),
        hodges_lehmann=hodges_lehmann(a, b),
        assessed_blind=sum(r.assessed_blind for r in records),
        assessed_by_site=sum(not r.assessed_blind for r in records),
    )


def primary_endpoint(records: list[EndpointRecord], protocol: ProtocolDefinition) -> PrimaryEndpointReport:
    """Follicle survival at the primary-endpoint visit: the analysis set (valid randomization, the visit done
    in its window), and beside it the same with out-of-window visits included."""
    visit = protocol.schedule.primary_endpoint
    at_visit = [r for r in records if r.visit == visit.code and r.randomization_valid]
    return PrimaryEndpointReport(
        endpoint=PRIMARY.param,
        visit=visit.code,
        analyses=[
            analyse([r for r in at_visit if r.in_window], protocol, set_code="in_window"),
            analyse(at_visit, protocol, set_code="all_visits"),
        ],
    )


def _number(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f}"


def primary_endpoint_table(report: PrimaryEndpointReport) -> str:
    """The primary endpoint as an HTML table for the report page: one block per analysis set."""
    rows = []
    for analysis in report.analyses:
        rows.append(f'<tr><th colspan="7">{escape(analysis.analysis_set)}</th></tr>')
        for arm in analysis.arms:
            iqr = f"{_number(arm.q1)} – {_number(arm.q3)}"
            cells = [arm.arm, str(arm.n), _number(arm.mean), _number(arm.sd), _number(arm.median), iqr, ""]
            rows.append("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in cells) + "</tr>")
        for difference in (analysis.welch, analysis.hodges_lehmann):
            text = (
                f"{difference.method}: {difference.estimate:.2f} "
                f"({difference.confidence:.0%} CI {difference.ci_low:.2f} to {difference.ci_high:.2f})"
                if difference
                else "too few subjects to compare"
            )
            rows.append(f'<tr><td colspan="6">{escape(analysis.difference)}</td><td>{escape(text)}</td></tr>')
        whose = f"values: {analysis.assessed_blind} by the blinded assessor, {analysis.assessed_by_site} by the site"
        rows.append(f'<tr><td colspan="7">{escape(whose)}</td></tr>')
    header = "".join(f"<th>{h}</th>" for h in ("arm", "n", "mean", "SD", "median", "IQR", "difference"))
    caption = f"<caption>{escape(report.endpoint)} at {escape(report.visit)}</caption>"
    return f"<table>{caption}<tr>{header}</tr>{''.join(rows)}</table>"


class VisitEstimate(BaseModel):
    paramcd: str
    visit: str
    arm: str
    n: int
    mean: float | None
    ci_low: float | None
    ci_high: float | None


def over_time(records: list[EndpointRecord], protocol: ProtocolDefinition) -> list[VisitEstimate]:
    """Each assessment by visit and arm: mean with its 95 % t interval (valid randomizations, all visits done)."""
    import numpy as np
    from scipy import stats

    out = []
    valid = [r for r in records if r.randomization_valid]
    for assessment in ASSESSMENTS:
        for visit in protocol.schedule.follow_up:
            for arm in protocol.arms:
                values = [r.value(assessment) for r in valid if r.visit == visit.code and r.arm == arm.code]
                mean = low = high = None
                if values:
                    mean = _rounded(np.mean(values))
                if len(values) > 1:
                    interval = stats.t.interval(
                        CONFIDENCE, len(values) - 1, loc=np.mean(values), scale=stats.sem(values)
                    )
                    low, high = (_rounded(x) if np.isfinite(x) else mean for x in interval)
                out.append(
                    VisitEstimate(
                        paramcd=assessment.paramcd,
                        visit=visit.code,
                        arm=arm.code,
                        n=len(values),
                        mean=mean,
                        ci_low=low,
                        ci_high=high,
                    )
                )
    return out


def over_time_svg(estimates: list[VisitEstimate], protocol: ProtocolDefinition) -> str:
    """One panel per assessment: each arm's mean by visit with its 95 % interval (matplotlib SVG).

    Drawn on a `Figure` of its own, never through pyplot's global state, so it may run in a worker thread."""
    from matplotlib.figure import Figure

    visits = [v.code for v in protocol.schedule.follow_up]
    fig = Figure(figsize=(7, 2.6 * len(ASSESSMENTS)))
    axes = fig.subplots(len(ASSESSMENTS), 1, sharex=True)
    for ax, assessment in zip(axes, ASSESSMENTS, strict=True):
        for offset, arm in zip((-0.08, 0.08), protocol.arms, strict=False):
            points = [e for e in estimates if e.paramcd == assessment.paramcd and e.arm == arm.code and e.n]
            x = [visits.index(e.visit) + offset for e in points]
            y = [e.mean for e in points]
            errors: Any = [
                [(e.mean or 0) - (e.ci_low if e.ci_low is not None else e.mean or 0) for e in points],
                [(e.ci_high if e.ci_high is not None else e.mean or 0) - (e.mean or 0) for e in points],
            ]
            ax.errorbar(x, y, yerr=errors, marker="o", capsize=3, label=arm.code)
        ax.set_title(assessment.param, fontsize=10)
        ax.grid(alpha=0.3)
    axes[-1].set_xticks(range(len(visits)), visits)
    axes[0].legend(title="arm (mean, 95% CI)", fontsize=8)
    fig.tight_layout()
    return svg_text(fig)
