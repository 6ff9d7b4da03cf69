"""Seriousness, the 24-hour clock, one alert per SAE, acknowledgement and escalation — pure rules."""

from datetime import UTC, date, datetime, timedelta
from functools import partial
from uuid import UUID, uuid4

import pytest

from services.safety import domain
from shared.contracts import rules
from shared.contracts.events import (
    AdverseEventReported,
    AdverseEventUpdated,
    CasebookLocked,
    ConsentRecorded,
    DomainEvent,
    ProtocolDeviationRecorded,
    SeriousAdverseEventAcknowledged,
    SeriousAdverseEventAlertEscalated,
    SeriousAdverseEventAlertRaised,
)
from shared.contracts.forms import AdverseEventFollowUp, AdverseEventForm, AlertAcknowledgement, SeriousnessCriterion
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
DEATH = {"grade": 5, "seriousness": ["death"], "outcome": "fatal"}
# At the site, now: what the reports and follow-ups below share.
report_at_nfh = partial(domain.report, protocol=PROTOCOL, site="NFH", subject="NFH-001", now=NOW)
follow_up_at_nfh = partial(domain.follow_up, protocol=PROTOCOL, site="NFH", subject="NFH-001", now=NOW)


def report(form: AdverseEventForm = FORM, history: list[DomainEvent] | None = None) -> AdverseEventReported:
    state = domain.replay(given([CONSENT] if history is None else history))
    [event] = report_at_nfh(state, form, ae_id=AE_ID, assesses=True)
    assert isinstance(event, AdverseEventReported)
    return event


def alert_for(events: list[DomainEvent], reported_at: datetime = NOW) -> list[DomainEvent]:
    return domain.raise_alert(
        domain.replay(given(events)),
        AE_ID,
        reported_at=reported_at,
        alert_id=uuid4(),
        deviation_id=uuid4(),
        reported_on=reported_at.date(),
    )


@pytest.mark.parametrize("criterion", list(SeriousnessCriterion))
def test_any_single_ich_e2a_criterion_makes_an_adverse_event_serious(criterion: SeriousnessCriterion) -> None:
    assert domain.is_serious(1, [criterion])
    form = FORM.model_copy(update={"seriousness": [criterion]})
    assert report(form if criterion is not SeriousnessCriterion.DEATH else form.model_copy(update=DEATH)).serious


@pytest.mark.parametrize("grade", [1, 2, 3, 4])
def test_without_criteria_grades_1_to_4_are_not_serious(grade: int) -> None:
    assert not report(FORM.model_copy(update={"grade": grade})).serious


def test_a_death_is_grade_5_with_a_fatal_outcome_and_the_death_criterion() -> None:
    died = report(FORM.model_copy(update=DEATH))
    assert died.serious and died.grade == 5 and died.derived_seriousness == ()


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"grade": 3, "outcome": "fatal", "seriousness": []}, "grade"),
        ({"grade": 1, "outcome": "recovered", "seriousness": ["death"]}, "outcome"),
        ({"grade": 5, "outcome": "recovering", "seriousness": []}, "outcome"),
        ({"grade": 5, "outcome": "fatal", "seriousness": ["life_threatening"]}, "seriousness"),
    ],
)
def test_death_fatal_outcome_and_grade_5_that_disagree_are_refused_naming_a_field(
    changes: dict[str, object], field: str
) -> None:
    with pytest.raises(domain.DeathInconsistent) as refused:
        report(FORM.model_copy(update=changes))
    assert refused.value.field == field and refused.value.rule == "ae.death_consistent"


def test_a_hospitalization_without_the_criterion_is_serious_and_says_the_criterion_was_derived() -> None:
    hospitalized = report(FORM.model_copy(update={"action_taken": "hospitalized", "seriousness": []}))
    assert hospitalized.serious
    assert hospitalized.seriousness == hospitalized.derived_seriousness == (SeriousnessCriterion.HOSPITALIZATION,)


def test_a_follow_up_follows_the_same_rules_as_the_report() -> None:
    state = domain.replay(given([CONSENT, report()]))

    def follow_up(**changes: object) -> list[DomainEvent]:
        form = AdverseEventFollowUp.model_validate({"ae_id": AE_ID, "site_aware_at": NOW} | changes)
        return follow_up_at_nfh(state, form, assesses=True)

    with pytest.raises(domain.AwareBeforeOnset):
        follow_up(site_aware_at=datetime(2026, 11, 1, 9, 0, tzinfo=UTC), grade=3)
    with pytest.raises(domain.DeathInconsistent) as refused:
        follow_up(outcome="fatal")
    assert refused.value.field == "grade"
    [hospitalized] = follow_up(action_taken="hospitalized")
    assert isinstance(hospitalized, AdverseEventUpdated) and hospitalized.serious
    assert hospitalized.derived_seriousness == (SeriousnessCriterion.HOSPITALIZATION,)
    [died] = follow_up(**DEATH)
    assert isinstance(died, AdverseEventUpdated) and died.serious


def test_a_suspended_sites_adverse_events_are_accepted() -> None:
    suspended = PROTOCOL.model_copy(
        update={"sites": tuple(s.model_copy(update={"status": "suspended"}) for s in PROTOCOL.sites)}
    )
    state = domain.replay(given([CONSENT]))
    [event] = domain.report(
        state, FORM, ae_id=AE_ID, protocol=suspended, site="NFH", subject="NFH-001", now=NOW, assesses=True
    )
    assert isinstance(event, AdverseEventReported)


@pytest.mark.parametrize(
    ("zone", "now", "onset_today"),
    [
        # 07:30 in Guangzhou is 23:30 UTC the day before: that morning's onset is today there.
        ("Asia/Shanghai", datetime(2026, 11, 24, 23, 30, tzinfo=UTC), date(2026, 11, 25)),
        ("Asia/Shanghai", datetime(2026, 11, 25, 15, 59, tzinfo=UTC), date(2026, 11, 25)),
        # 23:30 in Los Angeles on the 24th is 07:30 UTC on the 25th: the 25th has not begun there.
        ("America/Los_Angeles", datetime(2026, 11, 25, 7, 30, tzinfo=UTC), date(2026, 11, 24)),
        ("America/Los_Angeles", datetime(2026, 11, 25, 8, 0, tzinfo=UTC), date(2026, 11, 25)),
    ],
)
def test_an_onset_on_the_sites_today_is_accepted_and_the_next_day_is_the_future(
    zone: str, now: datetime, onset_today: date
) -> None:
    protocol = PROTOCOL.model_copy(
        update={"sites": tuple(s.model_copy(update={"time_zone": zone}) for s in PROTOCOL.sites)}
    )
    state = domain.replay(given([CONSENT]))

    def report_at(onset: date) -> list[DomainEvent]:
        form = FORM.model_copy(update={"onset_date": onset, "site_aware_at": now})
        return domain.report(
            state, form, ae_id=AE_ID, protocol=protocol, site="NFH", subject="NFH-001", now=now, assesses=True
        )

    assert report_at(onset_today)
    with pytest.raises(rules.DateInFuture):
        report_at(onset_today + timedelta(days=1))


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
    serious = report(FORM.model_copy(update={**DEATH, "site_aware_at": NOW - timedelta(hours=30)}))
    events = alert_for([CONSENT, serious], reported_at=serious.site_aware_at + delay)
    assert isinstance(events[0], SeriousAdverseEventAlertRaised) and events[0].late is late
    deviations = [e for e in events if isinstance(e, ProtocolDeviationRecorded)]
    assert [d.code for d in deviations] == (["SAE_REPORTED_LATE"] if late else [])
    assert all(d.occurred_on == (serious.site_aware_at + delay).date() for d in deviations), "the late report's day"


def test_a_follow_up_that_makes_the_event_serious_raises_the_alert_then() -> None:
    reported = report()
    follow_up = AdverseEventFollowUp(ae_id=AE_ID, site_aware_at=NOW, seriousness=["life_threatening"])
    [update] = follow_up_at_nfh(domain.replay(given([CONSENT, reported])), follow_up, assesses=True)
    assert update.serious  # type: ignore[attr-defined]
    [alert] = alert_for([CONSENT, reported, update], reported_at=NOW)
    assert isinstance(alert, SeriousAdverseEventAlertRaised)
    assert alert.site_aware_at == NOW, "the 24-hour clock starts when the site learned it became serious"


def test_a_follow_up_of_an_unknown_event_is_404() -> None:
    with pytest.raises(domain.UnknownAdverseEvent):
        follow_up_at_nfh(
            domain.replay(given([CONSENT])),
            AdverseEventFollowUp(ae_id=uuid4(), site_aware_at=NOW, grade=3),
            assesses=True,
        )


def test_acknowledging_is_once_and_unknown_alerts_are_refused() -> None:
    serious = report(FORM.model_copy(update=DEATH))
    [alert] = alert_for([CONSENT, serious])
    assert isinstance(alert, SeriousAdverseEventAlertRaised)
    [ack] = domain.acknowledge(
        domain.replay(given([CONSENT, serious, alert])), AlertAcknowledgement(alert_id=alert.alert_id)
    )
    assert ack == SeriousAdverseEventAcknowledged(alert_id=alert.alert_id, ae_id=AE_ID)
    with pytest.raises(rules.RecordedBefore) as again:
        domain.acknowledge(
            domain.replay(given([CONSENT, serious, alert, ack])), AlertAcknowledgement(alert_id=alert.alert_id)
        )
    assert again.value.fact == ack
    with pytest.raises(domain.UnknownAlert):
        domain.acknowledge(domain.replay(given([CONSENT])), AlertAcknowledgement(alert_id=alert.alert_id))


def test_escalation_is_due_at_each_whole_interval_not_before_and_not_twice() -> None:
    serious = report(FORM.model_copy(update=DEATH))
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


def test_a_correction_of_the_report_is_the_same_event_and_making_it_serious_raises_the_alert_then() -> None:
    history = given([CONSENT, report()])
    reported = history[-1]
    correction = FORM.model_copy(
        update={
            "seriousness": ["hospitalization_or_prolongation"],
            "supersedes": reported.envelope.id,
            "reason": "admitted overnight, left out of the report",
        }
    )
    [corrected] = report_at_nfh(domain.replay(history), correction, ae_id=uuid4(), assesses=True)
    assert isinstance(corrected, AdverseEventReported)
    assert (corrected.ae_id, corrected.serious, corrected.supersedes) == (AE_ID, True, reported.envelope.id)
    [alert] = alert_for([CONSENT, report(), corrected])
    assert isinstance(alert, SeriousAdverseEventAlertRaised) and alert.site_aware_at == FORM.site_aware_at


def test_a_correction_made_on_an_adverse_events_earlier_record_is_stale_and_one_on_no_record_is_404() -> None:
    history = given([CONSENT, report()])
    follow_up = AdverseEventUpdated(ae_id=AE_ID, site_aware_at=NOW, outcome="recovered", serious=False)
    later = [*history, *given([follow_up])]
    stale = FORM.model_copy(update={"supersedes": history[-1].envelope.id, "reason": "term was misspelt"})
    with pytest.raises(rules.StaleCorrection) as refused:
        report_at_nfh(domain.replay(later), stale, ae_id=uuid4(), assesses=True)
    assert refused.value.current_version == later[-1].envelope.id
    with pytest.raises(rules.NothingToCorrect):
        report_at_nfh(
            domain.replay(later), stale.model_copy(update={"supersedes": uuid4()}), ae_id=uuid4(), assesses=True
        )


def test_adverse_events_are_taken_in_a_locked_casebook_and_flagged() -> None:
    history = given([CONSENT, CasebookLocked(through_sequence=1)])
    [taken] = report_at_nfh(domain.replay(history), FORM, ae_id=AE_ID, assesses=True)
    assert isinstance(taken, AdverseEventReported) and taken.while_locked
    assert not report().while_locked


def test_causality_is_the_investigators_a_coordinator_reports_without_it() -> None:
    state = domain.replay(given([CONSENT]))
    with pytest.raises(domain.CausalityAssessment) as refused:
        report_at_nfh(state, FORM, ae_id=AE_ID, assesses=False)
    assert (refused.value.rule, refused.value.field) == ("delegation.causality", "relationship")
    unassessed = FORM.model_copy(update={"relationship": None})
    [reported] = report_at_nfh(state, unassessed, ae_id=AE_ID, assesses=False)
    assert isinstance(reported, AdverseEventReported) and reported.relationship is None


def test_the_investigator_assesses_causality_by_follow_up_and_a_coordinators_correction_keeps_it() -> None:
    reported = report(FORM.model_copy(update={"relationship": None}))
    assessment = AdverseEventFollowUp.model_validate(
        {
            "ae_id": AE_ID,
            "site_aware_at": NOW,
            "relationship": {"fat_graft": "unlikely", "hair_transplantation": "possible"},
        }
    )
    history = [CONSENT, reported]

    def follow_up(assesses: bool) -> list[DomainEvent]:
        return follow_up_at_nfh(domain.replay(given(history)), assessment, assesses=assesses)

    with pytest.raises(domain.CausalityAssessment):
        follow_up(assesses=False)
    [assessed] = follow_up(assesses=True)
    recorded = given([*history, assessed])
    correction = FORM.model_copy(
        update={
            "relationship": None,
            "term": "Scalp infection",
            "supersedes": recorded[-1].envelope.id,
            "reason": "term",
        }
    )
    [corrected] = report_at_nfh(domain.replay(recorded), correction, ae_id=uuid4(), assesses=False)
    assert isinstance(corrected, AdverseEventReported) and corrected.relationship == assessment.relationship
