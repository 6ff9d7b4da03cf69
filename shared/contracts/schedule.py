"""The follow-up schedule: day 0 is the surgery; each visit has a target day and a window. Pure.

Shared: the visits service decides with it, the reports show the same windows.
"""

import calendar
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from shared.contracts.events import AdverseEventReported, AdverseEventUpdated, DomainEvent
from shared.contracts.protocol import ProtocolDefinition, Schedule


def months_before(day: date, months: int) -> date:
    """Calendar arithmetic, clamped to the month's last day: 31 Aug − 6 months = 28/29 Feb."""
    index = day.year * 12 + day.month - 1 - months
    year, month = divmod(index, 12)
    return date(year, month + 1, min(day.day, calendar.monthrange(year, month + 1)[1]))


def follicle_survival(grafts_surviving: int, transplanted: int) -> Decimal:
    """The protocol's follicle survival rate: grafts surviving / follicular units transplanted, in %, to 0.1."""
    return (Decimal(grafts_surviving) * 100 / transplanted).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP)


@dataclass(frozen=True, slots=True)
class VisitWindow:
    code: str
    target: date
    start: date
    end: date
    end_of_study: bool

    def contains(self, day: date) -> bool:
        return self.start <= day <= self.end


def visit_windows(surgery: date, plan: Schedule) -> dict[str, VisitWindow]:
    """Target = surgery + target day; window = target ± window days, both ends included."""
    windows = {}
    for visit in plan.follow_up:
        target = surgery + timedelta(days=visit.target_day)
        spread = timedelta(days=visit.window_days)
        windows[visit.code] = VisitWindow(visit.code, target, target - spread, target + spread, visit.end_of_study)
    return windows


def surgery_deadline(randomized_on: date, plan: Schedule) -> date:
    return randomized_on + timedelta(days=plan.surgery_within_days_of_randomization)


def screening_window(surgery: date, plan: Schedule) -> VisitWindow:
    """The days a screening must fall on for this surgery date (day -30 to day -1: never the surgery day)."""
    days = plan.screening_days_before_surgery
    start, end = surgery - timedelta(days=days.earliest), surgery - timedelta(days=days.latest)
    return VisitWindow("SCR", end, start, end, end_of_study=False)


def date_of_death(event: DomainEvent, protocol: ProtocolDefinition, site: str) -> date | None:
    """The date of death a grade 5 adverse event records: its onset when reported fatal; when a follow-up made
    it fatal, the site's date of learning it (the follow-up form has no date of death). None for any other fact.
    """
    match event:
        case AdverseEventReported(grade=5):
            return event.onset_date
        case AdverseEventUpdated(grade=5):
            return protocol.local_date(site, event.site_aware_at)
        case _:
            return None
