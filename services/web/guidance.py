"""The protocol's edit checks that a site can heed before it saves: a visit outside its window, an adverse event
before consent, more grafts surviving than were transplanted, a surgery after its window. Saved anyway, the
record stands and the data management service opens the same check's query; warned first, the site fixes a
typing slip or confirms what the source says. Pure: no I/O; only the checks the protocol declares are heeded."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from services.web.forms import typed_day
from shared.contracts.protocol import ProtocolDefinition
from shared.contracts.schedule import surgery_deadline


@dataclass(frozen=True, slots=True)
class Advice:
    check: str
    field: str
    text: str


def _whole(value: object) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


def advice(
    protocol: ProtocolDefinition,
    operation: str,
    values: Mapping[str, Any],
    view: Mapping[str, Any],
    procedure: Mapping[str, Any] | None,
    lang: str,
) -> list[Advice]:
    """What the protocol's checks would question in `values` about to be posted as `operation`, given the subject
    as the read models show it (`view`) and its surgery's record (`procedure`), in the page's language."""
    checks = {check.code: check for check in protocol.edit_checks}
    found: list[Advice] = []

    def heed(code: str, field: str, **said: object) -> None:
        if code in checks:
            check = checks[code]
            found.append(Advice(code, field, check.text_in(lang).format(**check.parameters, **said)))

    if operation == "record_visit":
        visit = str(values.get("visit", ""))
        window = next((v for v in view["visits"] if v["visit"] == visit), None)
        on = typed_day(values.get("visit_date"))
        if (
            window
            and on
            and not date.fromisoformat(window["window_start"]) <= on <= date.fromisoformat(window["window_end"])
        ):
            heed("VISIT_OUT_OF_WINDOW", "visit_date", visit=visit, visit_date=on,
                 window_start=window["window_start"], window_end=window["window_end"])  # fmt: skip
        grafts, units = _whole(values.get("grafts_surviving")), (procedure or {}).get("follicular_units")
        if grafts is not None and units is not None and grafts > units:
            heed("GRAFTS_SURVIVING_OVER_TRANSPLANTED", "grafts_surviving", visit=visit, grafts_surviving=grafts,
                 follicular_units=units)  # fmt: skip
    if operation == "report_adverse_event":
        onset, consented = typed_day(values.get("onset_date")), typed_day(view.get("consented_on"))
        if onset and consented and onset < consented:
            heed("AE_ONSET_BEFORE_CONSENT", "onset_date", onset_date=onset, signed_on=consented)
    if operation == "record_procedure":
        on, randomized = typed_day(values.get("procedure_date")), typed_day(view.get("randomized_on"))
        if on and randomized and on > (deadline := surgery_deadline(randomized, protocol.schedule)):
            heed("SURGERY_AFTER_WINDOW", "procedure_date", procedure_date=on, deadline=deadline)
    return found
