"""The protocol's edit checks heeded before a save: each says what it questions, in the page's language."""

from services.web.guidance import advice
from shared.contracts.protocol import cached_protocol
from shared.runtime.settings import DEFAULT_PROTOCOL_FILE

PROTOCOL = cached_protocol(DEFAULT_PROTOCOL_FILE)
VIEW = {
    "consented_on": "2026-11-01",
    "randomized_on": "2026-11-10",
    "visits": [{"visit": "W1", "window_start": "2026-11-20", "window_end": "2026-11-24"}],
}
PROCEDURE = {"follicular_units": 1500}


def test_a_visit_outside_its_window_and_more_grafts_than_transplanted_are_questioned_before_the_save() -> None:
    early = {"visit": "W1", "visit_date": "2026-11-15", "grafts_surviving": "1600"}
    found = advice(PROTOCOL, "record_visit", early, VIEW, PROCEDURE, "en")
    assert [(a.check, a.field) for a in found] == [
        ("VISIT_OUT_OF_WINDOW", "visit_date"),
        ("GRAFTS_SURVIVING_OVER_TRANSPLANTED", "grafts_surviving"),
    ]
    assert "2026-11-20 to 2026-11-24" in found[0].text
    in_window = {"visit": "W1", "visit_date": "2026-11-22", "grafts_surviving": "1200"}
    assert advice(PROTOCOL, "record_visit", in_window, VIEW, PROCEDURE, "en") == []
    said = advice(PROTOCOL, "record_visit", early, VIEW, PROCEDURE, "zh")[0].text
    assert "时间窗" in said and "2026-11-15" in said


def test_an_adverse_event_before_consent_and_a_late_surgery_are_questioned_and_a_slip_is_left_to_the_gateway() -> None:
    before = advice(PROTOCOL, "report_adverse_event", {"onset_date": "2026-10-30"}, VIEW, None, "en")
    assert [a.check for a in before] == ["AE_ONSET_BEFORE_CONSENT"]
    late = advice(PROTOCOL, "record_procedure", {"procedure_date": "2027-03-01"}, VIEW, None, "en")
    assert [a.field for a in late] == ["procedure_date"]
    assert advice(PROTOCOL, "record_procedure", {"procedure_date": "not a date"}, VIEW, None, "en") == []


def test_a_check_the_protocol_does_not_declare_is_not_heeded() -> None:
    without = PROTOCOL.model_copy(update={"edit_checks": ()})
    early = {"visit": "W1", "visit_date": "2026-11-15"}
    assert advice(without, "record_visit", early, VIEW, PROCEDURE, "en") == []
