"""Seriousness, the 24-hour clock, one alert per SAE, acknowledgement and escalation — pure rules."""

from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from services.safety import domain
from shared.contracts import rules
from shared.contracts.events import (
    AdverseEventReported,
    ConsentRecorded,
    DomainEvent,
    ProtocolDeviationRecorded,
    SeriousAdverseEventAcknowledged,
    SeriousAdverseEventAlertEscalated,
    SeriousAdverseEventAlertRaised,
)
from shared.contracts.forms import AdverseEventFollowUp, AdverseEventForm, SeriousnessCriterion
from shared.contracts.protocol import load_protocol
from shared.runtime.settings import DEFAULT_PROTOCOL_FILE
from tests.unit.history import given

PROTOCOL = load_protocol(DEFAULT_PROTOCOL_FILE)
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
CONSENT = ConsentRecorded(
    consent_form_version="1.0",
    signed_on=date(2026, 10, 1),
    obtained_by="inv-01",
    signed_by_subject=True,
    signed_by_representative=False,
)
FORM = AdverseEventForm(
    term="Wound infection",
    onset_date=date(2026, 11, 24),
    site_aware_at=NOW - timedelta(hours=2),
    grade=2,
    seriousness=[],
    relationship={"fat_graft": "possible", "hair_transplantation": "probable"},
    action_taken="treatment_given",
    outcome="recovering",
)
AE_ID = UUID("00000000-0000-0000-0000-0000000000ae")


def report(form: AdverseEventForm = FORM, history: list[DomainEvent] | None = None) -> AdverseEventReported:
    state = domain.replay(given([CONSENT] if history is None else history))
    [event] = domain.report(state, form, ae_id=AE_ID, protocol=PROTOCOL, site="NFH", subject="NFH-001", now=NOW)
    assert isinstance(event, AdverseEventReported)
    return event


def alert_for(events: list[DomainEvent], reported_at: datetime = NOW) -> list[DomainEvent]:
    return domain.raise_alert(
        domain.replay(given(events)), AE_ID, reported_at=reported_at, alert_id=uuid4(), deviation_id=uuid4()
    )


@pytest.mark.parametrize("criterion", list(SeriousnessCriterion))
def test_any_single_ich_e2a_criterion_makes_an_adverse_event_serious(criterion: SeriousnessCriterion) -> None:
    assert domain.is_serious(1, [criterion])
    assert report(FORM.model_copy(update={"seriousness": [criterion]})).serious


@pytest.mark.parametrize(("grade", "serious"), [(1, False), (2, False), (3, False), (4, False), (5, True)])
def test_without_criteria_only_grade_5_is_serious(grade: int, serious: bool) -> None:
    assert report(FORM.model_copy(update={"grade": grade})).serious is serious


def test_adverse_events_need_consent_but_not_an_ongoing_participation() -> None:
    with pytest.raises(rules.NotConsented):
        report(history=[])


def test_awareness_in_the_future_or_before_onset_is_invalid() -> None:
    with pytest.raises(rules.DateInFuture):
        report(FORM.model_copy(update={"site_aware_at": NOW + timedelta(minutes=1)}))
    with pytest.raises(domain.AwareBeforeOnset):
        report(FORM.model_copy(update={"site_aware_at": datetime(2026, 11, 23, 9, 0, tzinfo=UTC)}))


def test_a_serious_event_raises_one_alert_and_a_non_serious_none() -> None:
    assert alert_for([CONSENT, report()]) == []
    serious = report(FORM.model_copy(update={"seriousness": ["hospitalization_or_prolongation"]}))
    [alert] = alert_for([CONSENT, serious])
    assert isinstance(alert, SeriousAdverseEventAlertRaised) and not alert.late
    assert alert_for([CONSENT, serious, alert]) == [], "one alert per adverse event, ever"


@pytest.mark.parametrize(("delay", "late"), [(timedelta(hours=24), False), (timedelta(hours=24, seconds=1), True)])
def test_an_sae_reported_over_24_hours_after_awareness_is_late_and_a_deviation(delay: timedelta, late: bool) -> None:
    serious = report(FORM.model_copy(update={"grade": 5, "site_aware_at": NOW - timedelta(hours=30)}))
    events = alert_for([CONSENT, serious], reported_at=serious.site_aware_at + delay)
    assert isinstance(events[0], SeriousAdverseEventAlertRaised) and events[0].late is late
    deviations = [e for e in events if isinstance(e, ProtocolDeviationRecorded)]
    assert [d.code for d in deviations] == (["SAE_REPORTED_LATE"] if late else [])


def test_a_follow_up_that_makes_the_event_serious_raises_the_alert_then() -> None:
    reported = report()
    follow_up = AdverseEventFollowUp(ae_id=AE_ID, site_aware_at=NOW, seriousness=["life_threatening"])
    [update] = domain.follow_up(
        domain.replay(given([CONSENT, reported])), follow_up, protocol=PROTOCOL, site="NFH", subject="NFH-001", now=NOW
    )
    assert update.serious  # type: ignore[attr-defined]
    [alert] = alert_for([CONSENT, reported, update], reported_at=NOW)
    assert isinstance(alert, SeriousAdverseEventAlertRaised)
    assert alert.site_aware_at == NOW, "the 24-hour clock starts when the site learned it became serious"


def test_a_follow_up_of_an_unknown_event_is_404() -> None:
    with pytest.raises(domain.UnknownAdverseEvent):
        domain.follow_up(
            domain.replay(given([CONSENT])),
            AdverseEventFollowUp(ae_id=uuid4(), site_aware_at=NOW, grade=3),
            protocol=PROTOCOL,
            site="NFH",
            subject="NFH-001",
            now=NOW,
        )


def test_acknowledging_is_once_and_unknown_alerts_are_refused() -> None:
    serious = report(FORM.model_copy(update={"grade": 5}))
    [alert] = alert_for([CONSENT, serious])
    assert isinstance(alert, SeriousAdverseEventAlertRaised)
    [ack] = domain.acknowledge(domain.replay(given([CONSENT, serious, alert])), alert.alert_id)
    assert ack == SeriousAdverseEventAcknowledged(alert_id=alert.alert_id, ae_id=AE_ID)
    with pytest.raises(rules.RecordedBefore) as again:
        domain.acknowledge(domain.replay(given([CONSENT, serious, alert, ack])), alert.alert_id)
    assert again.value.fact == ack
    with pytest.raises(domain.UnknownAlert):
        domain.acknowledge(domain.replay(given([CONSENT])), alert.alert_id)


def test_escalation_is_due_at_each_whole_interval_not_before_and_not_twice() -> None:
    serious = report(FORM.model_copy(update={"grade": 5}))
    [alert] = alert_for([CONSENT, serious])
    assert isinstance(alert, SeriousAdverseEventAlertRaised)
    hour = timedelta(hours=1)

    def due(elapsed: timedelta, escalations: int = 0) -> list[int]:
        open_alert = domain.OpenAlert(alert, "NFH", "NFH-001", NOW, escalations)
        return [n for _, n in domain.escalations_due([open_alert], now=NOW + elapsed, interval=hour)]

    assert due(timedelta(minutes=59)) == []
    assert due(timedelta(minutes=61)) == [1]
    assert due(timedelta(minutes=61), escalations=1) == []
    assert due(timedelta(minutes=125), escalations=1) == [2]
    [escalated] = domain.escalate(
        domain.replay(given([CONSENT, serious, alert])), alert.alert_id, 1, overdue_since=NOW + hour
    )
    assert isinstance(escalated, SeriousAdverseEventAlertEscalated)
    ack = SeriousAdverseEventAcknowledged(alert_id=alert.alert_id, ae_id=AE_ID)
    assert (
        domain.escalate(domain.replay(given([CONSENT, serious, alert, ack])), alert.alert_id, 2, overdue_since=NOW)
        == []
    )
