"""The subject matrix's cells: a record's most pressing mark, or why there is none; its columns from the protocol."""

from shared.contracts.protocol import cached_protocol
from shared.readmodels.datamanagement import SdvStatus
from shared.readmodels.matrix import CellStatus, Recorded, awaiting, cell, columns, marked
from shared.readmodels.states import SubjectState, VisitStatus
from shared.runtime.settings import DEFAULT_PROTOCOL_FILE

TREATED = SubjectState.TREATED
ENTERED = Recorded(SdvStatus.NOT_VERIFIED, open_queries=0, signed=False)


def test_a_record_shows_its_most_pressing_mark() -> None:
    assert cell("visit-M1", ENTERED, state=TREATED, locked=False).status is CellStatus.ENTERED
    queried = Recorded(SdvStatus.VERIFIED, open_queries=2, signed=True)
    shown = cell("visit-M1", queried, state=TREATED, locked=False)
    assert (shown.status, shown.open_queries) == (CellStatus.QUERY_OPEN, 2)
    assert cell("visit-M1", queried, state=TREATED, locked=True).status is CellStatus.LOCKED
    signed = Recorded(SdvStatus.VERIFIED, open_queries=0, signed=True)
    assert cell("screening", signed, state=TREATED, locked=False).status is CellStatus.SIGNED
    verified = Recorded(SdvStatus.VERIFIED, open_queries=0, signed=False)
    assert cell("procedure", verified, state=TREATED, locked=False).status is CellStatus.VERIFIED
    changed = Recorded(SdvStatus.CHANGED_SINCE_VERIFICATION, open_queries=0, signed=False)
    assert cell("procedure", changed, state=TREATED, locked=False).status is CellStatus.ENTERED


def test_a_visit_out_of_its_window_says_so_until_verified_and_keeps_the_flag_after() -> None:
    late = cell("visit-W1", ENTERED, state=TREATED, locked=False, in_window=False)
    assert (late.status, late.out_of_window) == (CellStatus.OUT_OF_WINDOW, True)
    verified = Recorded(SdvStatus.VERIFIED, open_queries=0, signed=False)
    late_verified = cell("visit-W1", verified, state=TREATED, locked=False, in_window=False)
    assert (late_verified.status, late_verified.out_of_window) == (CellStatus.VERIFIED, True)


def test_a_form_without_a_record_says_why() -> None:
    assert cell("visit-M3", None, state=TREATED, locked=False).status is CellStatus.NOT_STARTED
    missed = cell("visit-M3", None, state=TREATED, locked=False, visit_status=VisitStatus.MISSED)
    assert missed.status is CellStatus.MISSED
    after_withdrawal = cell("visit-M3", None, state=SubjectState.WITHDRAWN, locked=False)
    assert after_withdrawal.status is CellStatus.NOT_EXPECTED
    declined = cell("screening", None, state=SubjectState.CONSENT_DECLINED, locked=False)
    assert declined.status is CellStatus.NOT_EXPECTED


def test_the_columns_follow_the_protocol_with_each_visits_forms_after_it() -> None:
    protocol = cached_protocol(DEFAULT_PROTOCOL_FILE)
    shown = columns(protocol)
    assert shown[:3] == [("consent", None), ("screening", None), ("procedure", None)]
    visits = [form for form, _ in shown if form.startswith("visit-")]
    assert visits == [f"visit-{v.code}" for v in protocol.schedule.follow_up]
    for name, form in protocol.forms.collected.items():
        for code in form.visits:
            assert shown.index((f"{name}-{code}", code)) > shown.index((f"visit-{code}", code))


def test_a_screening_awaits_the_criteria_it_could_not_judge() -> None:
    screening = {"criteria": [{"code": "IN01", "outcome": "met"}, {"code": "EX11", "outcome": "missing"}]}
    assert awaiting(screening) == ["EX11"]
    assert awaiting(None) == []


def test_a_filter_finds_a_mark_beside_a_more_pressing_status() -> None:
    late_and_queried = cell(
        "visit-W1", Recorded(SdvStatus.NOT_VERIFIED, open_queries=1, signed=False), state=TREATED, locked=False,
        in_window=False,
    )  # fmt: skip
    assert late_and_queried.status is CellStatus.QUERY_OPEN
    assert marked(late_and_queried, CellStatus.OUT_OF_WINDOW) and marked(late_and_queried, CellStatus.QUERY_OPEN)
    assert not marked(late_and_queried, CellStatus.VERIFIED)
    signed_with_query = cell(
        "procedure", Recorded(SdvStatus.VERIFIED, open_queries=1, signed=True), state=TREATED, locked=True
    )
    assert signed_with_query.status is CellStatus.LOCKED and marked(signed_with_query, CellStatus.QUERY_OPEN)
