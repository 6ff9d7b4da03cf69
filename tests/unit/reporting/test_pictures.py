"""The report pictures: what the eye needs is there (steps, markers, the enrolment days; arrows from boxes)."""

import re
from datetime import date

from services.reporting.reports.consort import ArmFlow, Consort, consort_svg
from services.reporting.reports.trial import EnrollmentPoint, enrollment_svg

ONE_DAY = date(2026, 3, 5)


def test_enrolment_on_a_single_day_is_drawn_with_markers_on_an_axis_around_that_day() -> None:
    points = [
        EnrollmentPoint(day=ONE_DAY, site="NFH", arm="FG_HT", randomized=2, cumulative=2),
        EnrollmentPoint(day=ONE_DAY, site="NFH", arm="HT", randomized=1, cumulative=1),
    ]
    svg = enrollment_svg(points, cap=40, title="enrollment", fat_graft_arms=("FG_HT",))
    assert "2026-03-05" in svg
    years = {int(y) for y in re.findall(r">(\d{4})-\d{2}-\d{2}<", svg)}
    assert years == {2026}, "the axis spans the enrolment days, not years around them"
    assert len(re.findall(r'<use xlink:href="#m', svg)) >= 3, "every series has a visible marker"


def test_consort_arrows_to_the_arms_start_below_the_randomized_box() -> None:
    arm = ArmFlow(
        arm="FG_HT",
        allocated=1,
        received_allocated_intervention=1,
        did_not_receive={"not_operated": 0, "other_arm_procedure": 0},
        randomization_invalidated=0,
        lost_to_follow_up=0,
        discontinued={},
        died=0,
        analysed=1,
        excluded_from_analysis=0,
        primary_visit_out_of_window=0,
        primary_visit_not_done=0,
    )
    flow = Consort(
        primary_visit="M6",
        assessed_for_eligibility=3,
        excluded=1,
        not_meeting_criteria=1,
        excluded_by_criterion={"IN07": 1},
        failed_criteria={"IN07": 1},
        declined_to_participate=0,
        refused_consent=0,
        other_reasons=0,
        randomized=2,
        arms=[arm, arm.model_copy(update={"arm": "HT"})],
    )
    svg = consort_svg(flow, title="CONSORT")
    box = re.search(r'<rect x="300" y="(\d+)" width="200" height="(\d+)"[^>]*/><text[^>]*>Randomized', svg)
    assert box is not None
    bottom = int(box.group(1)) + int(box.group(2))
    arrows = re.findall(r'<line x1="400" y1="(\d+)" x2="(\d+)" y2="(\d+)"', svg)
    starts = [int(y1) for y1, x2, y2 in arrows if x2 != "400" and int(y2) > int(y1)]  # down to an arm
    assert starts and all(y1 == bottom for y1 in starts), (starts, bottom)


def test_an_axis_of_a_few_days_names_each_day_once() -> None:
    days = [date(2026, 3, 5), date(2026, 3, 6)]
    points = [EnrollmentPoint(day=d, site="NFH", arm="HT", randomized=1, cumulative=i + 1) for i, d in enumerate(days)]
    svg = enrollment_svg(points, cap=40, title="enrollment", fat_graft_arms=("FG_HT",))
    labels = re.findall(r">(\d{4}-\d{2}-\d{2})<", svg)
    assert labels and len(labels) == len(set(labels)), labels
