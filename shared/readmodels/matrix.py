"""A site's subjects × forms: where each subject's casebook stands, form by form, as a record status dashboard
shows it. The columns come from the protocol (its visits and the data dictionary's forms at each), the cells from
the read models in one snapshot; the status of a cell is decided here, once, for every app that shows it."""

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, Field

from shared.contracts.events import CriterionOutcome
from shared.contracts.protocol import ProtocolDefinition
from shared.readmodels.datamanagement import SDV_STATUS, SIGNATURE_STANDS, SdvStatus
from shared.readmodels.states import NOT_TAKING_PART, QueryState, SubjectState, VisitStatus
from shared.runtime.postgres import Connection


class CellStatus(StrEnum):
    NOT_STARTED = "not_started"
    ENTERED = "entered"
    OUT_OF_WINDOW = "out_of_window"
    VERIFIED = "verified"
    SIGNED = "signed"
    QUERY_OPEN = "query_open"
    LOCKED = "locked"
    MISSED = "missed"
    NOT_EXPECTED = "not_expected"


class MatrixCell(BaseModel):
    form: str = Field(description="the casebook form (`screening`, `visit-M1`, `scalp-symptoms-M6`)")
    status: CellStatus
    open_queries: int = 0
    out_of_window: bool = Field(False, description="a visit recorded outside its window, whatever else it shows")


class MatrixRow(BaseModel):
    subject_id: str
    state: SubjectState
    eligible: bool | None
    arm: str | None
    awaiting: list[str] = Field(description="criteria the latest screening could not judge (EX11: the investigator's)")
    adverse_events: int
    casebook_locked_at: datetime | None
    cells: list[MatrixCell]


class SiteMatrix(BaseModel):
    site: str
    columns: list[str] = Field(description="the casebook forms in the protocol's order, a visit's forms after it")
    rows: list[MatrixRow]


@dataclass(frozen=True, slots=True)
class Recorded:
    """A form's current record as the matrix reads it."""

    sdv: SdvStatus
    open_queries: int
    signed: bool


def columns(protocol: ProtocolDefinition) -> list[tuple[str, str | None]]:
    """Each column's casebook form and the visit it is at (None before the follow-up)."""
    found: list[tuple[str, str | None]] = [("consent", None), ("screening", None), ("procedure", None)]
    for visit in protocol.schedule.follow_up:
        found.append((f"visit-{visit.code}", visit.code))
        found += [
            (f"{name}-{visit.code}", visit.code)
            for name, f in protocol.forms.collected.items()
            if visit.code in f.visits
        ]
    return found


def cell(
    form: str,
    recorded: Recorded | None,
    *,
    state: SubjectState,
    locked: bool,
    visit_status: VisitStatus | None = None,
    in_window: bool | None = None,
) -> MatrixCell:
    """A form's status: a record's most pressing mark (locked, then an open query, then signed, verified, out of
    its window, entered); without one, why not (missed, no longer expected) or not started."""
    out_of_window = in_window is False
    if recorded is None:
        if visit_status is VisitStatus.MISSED:
            return MatrixCell(form=form, status=CellStatus.MISSED)
        if visit_status is VisitStatus.NOT_EXPECTED or state in NOT_TAKING_PART:
            return MatrixCell(form=form, status=CellStatus.NOT_EXPECTED)
        return MatrixCell(form=form, status=CellStatus.NOT_STARTED)
    if locked:
        status = CellStatus.LOCKED
    elif recorded.open_queries:
        status = CellStatus.QUERY_OPEN
    elif recorded.signed:
        status = CellStatus.SIGNED
    elif recorded.sdv is SdvStatus.VERIFIED:
        status = CellStatus.VERIFIED
    elif out_of_window:
        status = CellStatus.OUT_OF_WINDOW
    else:
        status = CellStatus.ENTERED
    return MatrixCell(form=form, status=status, open_queries=recorded.open_queries, out_of_window=out_of_window)


def marked(found: MatrixCell, status: CellStatus) -> bool:
    """Whether a cell shows this status: as its own, or beside a more pressing one (a visit outside its window
    that has an open query, a query open on a signed form)."""
    return (
        found.status is status
        or (status is CellStatus.OUT_OF_WINDOW and found.out_of_window)
        or (status is CellStatus.QUERY_OPEN and found.open_queries > 0)
    )


def awaiting(screening: dict[str, Any] | None) -> list[str]:
    """The criteria a screening left undecided: its answer was not given (the investigator's EX11 after a
    coordinator's screening)."""
    criteria = (screening or {}).get("criteria", [])
    return [c["code"] for c in criteria if c.get("outcome") == CriterionOutcome.MISSING]


SELECT_SUBJECTS = """
SELECT subject_id, state, eligible, arm, casebook_locked_at FROM subjects WHERE site = $1 ORDER BY subject_id
"""
SELECT_VISITS = "SELECT subject_id, visit, status, in_window FROM visits WHERE site = $1"
SELECT_FORMS = f"""
SELECT f.subject_id, f.form, {SDV_STATUS} AS sdv,
       CASE WHEN f.form = 'screening' THEN f.data END AS screening,
       (SELECT count(*) FROM queries q
         WHERE q.subject_id = f.subject_id AND q.form = f.form
           AND q.state <> '{QueryState.CLOSED}')::int AS open_queries,
       EXISTS (SELECT 1 FROM signatures s
                WHERE s.subject_id = f.subject_id AND s.covers ->> f.form = f.version::text
                  AND {SIGNATURE_STANDS}) AS signed
  FROM casebook_forms f WHERE f.site = $1
"""


async def site_matrix(conn: Connection, protocol: ProtocolDefinition, site: str) -> SiteMatrix:
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        subjects = await conn.fetch(SELECT_SUBJECTS, site)
        visits = {(r["subject_id"], r["visit"]): r for r in await conn.fetch(SELECT_VISITS, site)}
        forms = {(r["subject_id"], r["form"]): r for r in await conn.fetch(SELECT_FORMS, site)}
    shown = columns(protocol)
    rows = []
    for subject in subjects:
        sid, state, locked = subject["subject_id"], SubjectState(subject["state"]), subject["casebook_locked_at"]
        cells = []
        for form, visit in shown:
            found = forms.get((sid, form))
            recorded = Recorded(SdvStatus(found["sdv"]), found["open_queries"], found["signed"]) if found else None
            at = visits.get((sid, visit)) if visit else None
            cells.append(
                cell(
                    form, recorded, state=state, locked=locked is not None,
                    visit_status=VisitStatus(at["status"]) if at else None,
                    in_window=at["in_window"] if at and form.startswith("visit-") else None,
                )
            )  # fmt: skip
        screening = forms.get((sid, "screening"))
        rows.append(
            MatrixRow(
                subject_id=sid, state=state, eligible=subject["eligible"], arm=subject["arm"],
                awaiting=awaiting(screening["screening"] if screening else None),
                adverse_events=sum(1 for (s, f) in forms if s == sid and f.startswith("ae-")),
                casebook_locked_at=locked, cells=cells,
            )
        )  # fmt: skip
    return SiteMatrix(site=site, columns=[form for form, _ in shown], rows=rows)
