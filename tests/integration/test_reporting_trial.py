"""A scripted multi-site trial, recorded as events, projected, and reported: every CONSORT box equals the
count computed from the script; the exports carry the SDTM columns; a rebuild equals the live models.

Runs on a nats-server of its own: forty randomizations fill the trial's cap.
"""

import asyncio
import csv
import io
import json
import statistics
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5
from xml.etree import ElementTree as ET

import asyncpg
import httpx
import nats
import pytest
from nats.aio.client import Client

from services.gateway.app import MIGRATIONS as GATEWAY_MIGRATIONS
from services.gateway.app import create_app
from services.gateway.auth import issue_token
from services.gateway.settings import GatewaySettings
from services.reporting.exports import export_files, files_as_of_lock, freeze_exports
from services.reporting.projections import all_projections
from services.reporting.projections.datamanagement import DataManagementProjection
from services.reporting.reports import adam, datasets, sdtm
from services.reporting.reports.consort import consort
from services.reporting.reports.endpoints import ASSESSMENTS, endpoint_records, primary_endpoint
from services.reporting.reports.odm import odm_snapshot
from services.reporting.reports.trial import deviations, visit_compliance
from services.screening.eligibility import evaluate
from shared.contracts.access import Role
from shared.contracts.coding import Dictionaries
from shared.contracts.events import (
    AdverseEventReported,
    ConsentDeclined,
    ConsentRecorded,
    ConsentWithdrawn,
    DatabaseLocked,
    DomainEvent,
    EventEnvelope,
    EventMetadata,
    FormRecorded,
    GraftProcedurePerformed,
    ProtocolDeviationRecorded,
    RandomizationInvalidated,
    SubjectRandomized,
    SubjectScreened,
    SubjectWithdrawn,
    VisitCompleted,
    VisitMissed,
)
from shared.contracts.forms import ScreeningForm
from shared.contracts.protocol import load_protocol
from shared.contracts.schedule import visit_windows
from shared.readmodels.catalogue import ReadModel
from shared.runtime.eventstore import EventStore, provision_streams, subject_history, trial_history, trial_wide
from shared.runtime.postgres import apply_migrations
from shared.runtime.projections import (
    ProjectionRunner,
    apply_batch,
    read_models_as_of,
    rebuild,
    table_checksums,
    wait_for_checkpoint,
)
from shared.runtime.settings import DEFAULT_PROTOCOL_FILE
from tests import odm_check, sdtm_basics
from tests.by_hand import hodges_lehmann_by_hand, welch_by_formula
from tests.conftest import COMMAND_KEYS
from tests.integration.conftest import build_read_models

pytestmark = pytest.mark.integration
TOKEN_KEY = "Sk_1u1x6Z2I_rZXJTiJzKWPGF6vnPz3m0j9GZhUYW1g"  # a test key: random, and published with the tests

PROTOCOL = load_protocol(DEFAULT_PROTOCOL_FILE)
# Small local dictionaries as the sponsor would supply (MedDRA and WHODrug themselves are licensed).
DATA = Path(__file__).parent.parent / "data"
DICTIONARIES = Dictionaries.load(DATA / "ae-dictionary.csv", DATA / "drug-dictionary.csv")
SITES = ("NFH", "GZ2", "SZ3")
START = date(2025, 1, 6)
ELIGIBLE: dict[str, Any] = {
    "age_years": 34,
    "sex": "female",
    "height_cm": Decimal(165),
    "weight_kg": Decimal(60),
    "localized_scleroderma_symptoms": True,
    "alopecia_secondary_to_localized_scleroderma": True,
    "hair_loss_onset_date": date(2022, 5, 1),
    "adequate_donor_hair": True,
    "last_disease_activity_date": date(2023, 3, 1),
    "biopsy": {
        "inflammatory_cell_infiltration": False,
        "follicle_orifices_absent": True,
        "follicles_replaced_by_connective_tissue": True,
    },
    "fit_for_anaesthesia_and_surgery": True,
    "willing_to_comply_with_follow_up": True,
    "hair_loss_area_fraction": "1/5",
    "scalp_infection": False,
    "contraindications": [],
    "pregnant": False,
    "breastfeeding": False,
    "last_vasodilator_or_immunosuppressant_start": "never",
    "last_topical_ointment_on_surgical_area": "never",
    "serology": {"hiv": "negative", "hbv": "negative", "hcv": "negative", "htlv": "negative", "syphilis": "negative"},
    "last_tumour_diagnosis": "never",
    "prednisolone_mg_per_day": Decimal(0),
    "investigator_judges_unsuitable": False,
}
# Screen failures, each with the criterion codes it must be excluded by (written out, not computed).
FAILURES: list[tuple[dict[str, Any], set[str]]] = [
    ({"age_years": 17}, {"IN07"}),
    ({"age_years": 61}, {"IN07"}),
    ({"weight_kg": Decimal(40)}, {"IN06", "EX05"}),
    ({"prednisolone_mg_per_day": Decimal(15)}, {"EX10"}),
    ({"serology": {**ELIGIBLE["serology"], "hcv": "positive"}}, {"EX08"}),
    ({"hair_loss_area_fraction": "1/2", "scalp_infection": True}, {"EX01", "EX02"}),
    ({"investigator_judges_unsuitable": None}, {"EX11"}),
    ({"pregnant": True}, {"EX04"}),
]


@dataclass
class Script:
    """What happened, kept apart from the events so the expected report is computed independently."""

    histories: dict[tuple[str, str], list[tuple[DomainEvent, datetime, str | None, UUID]]] = field(default_factory=dict)
    screened: set[str] = field(default_factory=set)
    failed_codes: dict[str, set[str]] = field(default_factory=dict)
    declined: set[str] = field(default_factory=set)
    refused_consent: set[str] = field(default_factory=set)
    waiting: set[str] = field(default_factory=set)
    never_screened: set[str] = field(default_factory=set)
    arm: dict[str, str] = field(default_factory=dict)
    operated_as: dict[str, str | None] = field(default_factory=dict)
    withdrawn: dict[str, str] = field(default_factory=dict)
    died: set[str] = field(default_factory=set)
    invalidated: set[str] = field(default_factory=set)
    m6_done: set[str] = field(default_factory=set)
    not_expected: dict[str, set[str]] = field(default_factory=dict)
    deviations: dict[str, str] = field(default_factory=dict)

    # Follicle survival at the primary-endpoint visit as last recorded, and whether in window, per subject.
    m6: dict[str, tuple[float, bool]] = field(default_factory=dict)
    # Every visit event's follicle survival by event id; the ids a correction superseded.
    visit_values: dict[UUID, float] = field(default_factory=dict)
    superseded: set[UUID] = field(default_factory=set)
    uncoded: set[str] = field(default_factory=set)
    # Each log's entries as they stand (a correction replaces its entry's answers), by the entry's id.
    logs: dict[str, dict[UUID, dict[str, Any]]] = field(default_factory=dict)

    def entry(self, site: str, subject: str, form: str, answers: dict[str, Any], on: date) -> UUID:
        """A log's entry; entered again with the same id, it corrects the one recorded."""
        entry = uuid5(NAMESPACE_URL, f"{subject}/{form}/{next(iter(answers.values()))}")
        earlier = [i for e, _, _, i in self.histories[(site, subject)] if getattr(e, "entry", None) == entry]
        recorded = FormRecorded(
            form=form,
            entry=entry,
            answers=answers,
            dictionary_version="1.0",
            supersedes=earlier[-1] if earlier else None,
        )
        self.add(site, subject, recorded, on, "corrected" if earlier else None)
        self.logs.setdefault(form, {})[entry] = answers | {"subject": subject}
        return entry

    def add(self, site: str, subject: str, event: DomainEvent, on: date, reason: str | None = None) -> UUID:
        when = datetime(on.year, on.month, on.day, 10, tzinfo=UTC)
        event_id = uuid4()
        self.histories.setdefault((site, subject), []).append((event, when, reason, event_id))
        return event_id


def screening(form_changes: dict[str, Any], on: date, number: int) -> SubjectScreened:
    form = ScreeningForm.model_validate(ELIGIBLE | {"screening_date": on} | form_changes)
    result = evaluate(form, PROTOCOL.eligibility, consent_form_version="1.0")
    return SubjectScreened(
        screening_number=number,
        screening_date=on,
        eligible=result.eligible,
        bmi=result.bmi,
        criteria=result.criteria,
        form=form,
    )


def write_script() -> Script:
    s = Script()
    consent = ConsentRecorded(
        consent_form_version="1.0",
        signed_on=START,
        obtained_by="inv-01",
        signed_by_subject=True,
        signed_by_representative=False,
    )
    subjects = [(SITES[i % 3], f"{SITES[i % 3]}-{100 + i:03d}") for i in range(59)]
    number = 0
    for i, (site, subject) in enumerate(subjects):
        day = START + timedelta(days=i)
        if i >= 56:  # approached, refused consent: assessed, declined, never screened
            s.add(site, subject, ConsentDeclined(declined_on=day, recorded_by="crc-01", reason="time_or_travel"), day)
            s.refused_consent.add(subject)
            continue
        s.add(site, subject, consent, START)
        if i >= 50:
            s.never_screened.add(subject)  # consented, not (yet) screened: other reasons
            continue
        s.screened.add(subject)
        if i < len(FAILURES):
            changes, codes = FAILURES[i]
            s.add(site, subject, screening(changes, day, 1), day)
            s.failed_codes[subject] = codes
            continue
        if i == 8:  # failed once, eligible at the re-screen: counts as eligible
            s.add(site, subject, screening({"scalp_infection": True}, day, 1), day)
            s.add(site, subject, screening({}, day + timedelta(days=3), 2), day + timedelta(days=3))
        else:
            s.add(site, subject, screening({}, day, 1), day)
        if i == 9:
            s.add(site, subject, ConsentWithdrawn(withdrawn_on=day, recorded_by="inv-01"), day)
            s.declined.add(subject)
            continue
        if i == 10:
            s.waiting.add(subject)
            continue
        number += 1
        arm = "FG_HT" if number % 2 else "HT"
        s.arm[subject] = arm
        randomized_on = day + timedelta(days=5)
        s.add(site, subject, SubjectRandomized(arm=arm, randomization_number=number, stratum=site, stratum_slot=number,
                                               list_version=1, list_commitment="0" * 64), randomized_on)  # fmt: skip
        if number == 7:
            s.add(
                site,
                subject,
                RandomizationInvalidated(randomization_number=number, arm=arm),
                randomized_on,
                "wrong subject",
            )
            s.invalidated.add(subject)
        if number in (11, 12):
            s.operated_as[subject] = None  # never operated
            continue
        grafted = arm == "FG_HT" and number != 13  # number 13: FG_HT operated without the fat graft
        surgery_on = randomized_on + timedelta(days=10)
        s.add(site, subject, GraftProcedurePerformed(
            procedure_date=surgery_on, surgeon="sur-01", anaesthesia="local", recipient_area_cm2=Decimal(20),
            follicular_units=1000, donor_site="occipital",
            fat_graft={"fat_harvest_site": "abdomen", "harvested_fat_ml": 50, "ecm_svf_gel_ml": 6} if grafted else None,
        ), surgery_on)  # fmt: skip
        s.operated_as[subject] = "FG_HT" if grafted else "HT"
        windows = visit_windows(surgery_on, PROTOCOL.schedule)
        for code in ("W1", "M1", "M3", "M6"):
            if number in (14, 15) and code in ("M3", "M6"):
                if code == "M3":
                    lost = SubjectWithdrawn(
                        withdrawn_on=windows["M1"].end, reason_category="lost_to_follow_up", decided_by="investigator"
                    )
                    s.add(site, subject, lost, windows["M1"].end)
                    s.withdrawn[subject] = "lost_to_follow_up"
                    s.not_expected[subject] = {"M3", "M6", "M12"}
                break
            if number == 16 and code == "M6":
                left = SubjectWithdrawn(
                    withdrawn_on=windows["M3"].end, reason_category="subject_decision", decided_by="subject"
                )
                s.add(site, subject, left, windows["M3"].end)
                s.withdrawn[subject] = "subject_decision"
                # Consent withdrawn after the withdrawal from the study: recorded, the state stays withdrawn.
                later = windows["M3"].end + timedelta(days=2)
                s.add(site, subject, ConsentWithdrawn(withdrawn_on=later, recorded_by="inv-01"), later)
                s.not_expected[subject] = {"M6", "M12"}
                break
            if number in (17, 18) and code == "M6":
                missed = VisitMissed(visit="M6", target_date=windows["M6"].target, window_end=windows["M6"].end)
                s.add(site, subject, missed, windows["M6"].end + timedelta(days=1))
                break
            late = number == 19 and code == "M6"
            visit_day = windows[code].end + timedelta(days=3) if late else windows[code].target
            w = windows[code]
            # Known values that differ by subject and arm: follicle survival 62-99 %.
            survival = Decimal(62 + (number * 7) % 30 + (8 if arm == "FG_HT" else 0))
            recorded = VisitCompleted(
                visit=code, visit_date=visit_day, study_day=(visit_day - surgery_on).days, target_date=w.target,
                window_start=w.start, window_end=w.end, in_window=not late, hair_density_per_cm2=Decimal(40),
                grafts_surviving=int(survival * 10), follicle_survival_pct=survival, satisfaction=8, mlossi=1,
                losdi=3, photo_reference=None,
            )  # fmt: skip
            first = s.add(site, subject, recorded, visit_day)
            s.visit_values[first] = float(survival)
            if code == "M6":
                s.m6_done.add(subject)
                s.m6[subject] = (float(survival), not late)
            if code == "M6" and number == 22:  # recounted: the correction replaces the value, nothing is lost
                recount = survival - 11
                corrected = recorded.model_copy(
                    update={
                        "follicle_survival_pct": recount,
                        "grafts_surviving": int(recount * 10),
                        "supersedes": first,
                    }
                )
                s.visit_values[s.add(site, subject, corrected, visit_day + timedelta(days=2), "grafts recounted")] = (
                    float(recount)
                )
                s.superseded.add(first)
                s.m6[subject] = (float(recount), True)
        if number == 20:
            s.add(site, subject, AdverseEventReported(
                ae_id=uuid4(), term="Sepsis", onset_date=surgery_on + timedelta(days=200),
                site_aware_at=datetime.combine(surgery_on + timedelta(days=200), datetime.min.time(), UTC), grade=5,
                seriousness=("death",), serious=True,
                relationship={"fat_graft": "unlikely", "hair_transplantation": "unlikely"},
                action_taken="none", outcome="fatal",
            ), surgery_on + timedelta(days=200))  # fmt: skip
            s.died.add(subject)
            s.not_expected[subject] = {"M12"}
        if number == 20:  # a history the screening asked about, coded; and a medication, corrected
            s.entry(site, subject, "medical-history", {
                "condition": "Wound infection", "start_date": "2019-04-01", "ongoing": False, "end_date": "2019-04-20",
                "criterion": "ex02",
            }, surgery_on - timedelta(days=20))  # fmt: skip
            medication = {"medication": "Ibuprofen", "dose": 400, "dose_unit": "mg", "frequency": "tid",
                          "route": "oral", "indication": "Donor site pain", "start_date": surgery_on.isoformat(),
                          "ongoing": False, "end_date": (surgery_on + timedelta(days=5)).isoformat()}  # fmt: skip
            s.entry(site, subject, "concomitant-medication", medication, surgery_on + timedelta(days=6))
            s.entry(site, subject, "concomitant-medication", medication | {"dose": 200}, surgery_on + timedelta(days=7))
        if number == 23:  # a verbatim term the sponsor's dictionary does not hold: left uncoded, and said so
            s.entry(site, subject, "concomitant-medication", {
                "medication": "Herbal scalp tonic", "route": "topical", "on_surgical_area": True,
                "indication": "Hair growth", "start_date": (surgery_on + timedelta(days=30)).isoformat(),
                "ongoing": True,
            }, surgery_on + timedelta(days=31))  # fmt: skip
            s.add(site, subject, AdverseEventReported(
                ae_id=uuid4(), term="Itchy scalp after graft", onset_date=surgery_on + timedelta(days=20),
                site_aware_at=datetime.combine(surgery_on + timedelta(days=20), datetime.min.time(), UTC), grade=1,
                seriousness=(), serious=False, action_taken="none", outcome="recovered",
                relationship={"fat_graft": "possible", "hair_transplantation": "possible"},
            ), surgery_on + timedelta(days=20))  # fmt: skip
            s.uncoded.add(subject)
        if number == 21:
            # As the visits service records it: screened 45 days before the surgery (day -30 to -1 allowed).
            deviation = ProtocolDeviationRecorded(
                deviation_id=uuid4(),
                code="SCREENING_OUTSIDE_DAYS_BEFORE_SURGERY",
                description="screening 45 days before surgery (day -30 to -1)",
            )
            s.add(site, subject, deviation, surgery_on)
            s.deviations[subject] = deviation.code
        if number == 19:
            s.deviations[subject] = "VISIT_OUT_OF_WINDOW_M6"
            deviation = ProtocolDeviationRecorded(
                deviation_id=uuid4(), code="VISIT_OUT_OF_WINDOW_M6", description="M6 three days after its window"
            )
            s.add(site, subject, deviation, windows["M6"].end + timedelta(days=3))
    assert number == 40
    return s


@pytest.fixture(scope="module")
async def recorded_trial(own_nats: str) -> AsyncIterator[tuple[Client, Script, int]]:
    nc = await nats.connect(own_nats)
    await provision_streams(nc.jetstream())
    store = EventStore(nc.jetstream())
    script = write_script()
    last = 0
    for (site, subject), history in script.histories.items():
        expected = 0
        for event, when, reason, event_id in history:
            meta = EventMetadata("/trial/script", site, subject, "inv-01", "script", PROTOCOL.version, reason=reason)
            [recorded] = await store.append(
                [EventEnvelope.wrap(event, meta, event_id=event_id, time=when)],
                subject_filter=subject_history(site, subject),
                expected_last_sequence=expected,
            )
            expected = last = recorded.sequence
    yield nc, script, last
    await nc.close()


@pytest.fixture
async def projected(recorded_trial: tuple[Client, Script, int], database_url: str) -> AsyncIterator[asyncpg.Pool]:
    nc, _, last = recorded_trial
    pool = await build_read_models(nc, database_url, PROTOCOL, last)
    yield pool
    await pool.close()


async def test_every_consort_box_equals_the_count_from_the_script(
    recorded_trial: tuple[Client, Script, int], projected: asyncpg.Pool
) -> None:
    _, s, _ = recorded_trial
    async with projected.acquire() as conn:
        flow = await consort(conn, PROTOCOL)
    assessed = s.screened | s.never_screened | s.refused_consent
    assert flow.assessed_for_eligibility == len(assessed) == 59
    assert flow.not_meeting_criteria == len(s.failed_codes) == 8
    order = PROTOCOL.eligibility.codes
    first_failed = Counter(min(codes, key=order.index) for codes in s.failed_codes.values())
    assert flow.excluded_by_criterion == dict(sorted(first_failed.items(), key=lambda item: order.index(item[0])))
    assert flow.failed_criteria == dict(
        sorted(Counter(c for codes in s.failed_codes.values() for c in codes).items(), key=lambda i: order.index(i[0]))
    )
    assert flow.declined_to_participate == len(s.declined | s.refused_consent) == 4
    assert flow.refused_consent == len(s.refused_consent) == 3
    assert flow.other_reasons == len(s.waiting | s.never_screened) == 7
    assert flow.randomized == len(s.arm) == 40
    # Box by box: every subject assessed is in exactly one box.
    assert sum(flow.excluded_by_criterion.values()) == flow.not_meeting_criteria
    assert flow.excluded == flow.not_meeting_criteria + flow.declined_to_participate + flow.other_reasons == 19
    assert flow.assessed_for_eligibility == flow.excluded + flow.randomized
    for arm in flow.arms:
        mine = {subject for subject, a in s.arm.items() if a == arm.arm}
        assert arm.allocated == len(mine) == 20
        assert arm.received_allocated_intervention == sum(s.operated_as.get(x) == arm.arm for x in mine)
        assert arm.did_not_receive["not_operated"] == sum(s.operated_as.get(x, "") is None for x in mine)
        other = sum(s.operated_as.get(x) not in (None, arm.arm) for x in mine)
        assert arm.did_not_receive["other_arm_procedure"] == other
        assert arm.lost_to_follow_up == sum(s.withdrawn.get(x) == "lost_to_follow_up" for x in mine)
        assert sum(arm.discontinued.values()) == sum(s.withdrawn.get(x) == "subject_decision" for x in mine)
        assert arm.died == len(mine & s.died)
        assert arm.randomization_invalidated == len(mine & s.invalidated)
        in_window = {x for x, (_, ok) in s.m6.items() if ok}
        assert arm.analysed == len((mine & in_window) - s.invalidated)
        assert arm.primary_visit_out_of_window == len((mine & s.m6_done) - in_window - s.invalidated)
        assert arm.primary_visit_not_done == len(mine - s.m6_done - s.invalidated)
        assert (
            arm.excluded_from_analysis
            == arm.allocated - arm.analysed
            == (arm.randomization_invalidated + arm.primary_visit_out_of_window + arm.primary_visit_not_done)
        )
    # The flow diagram's Analysed boxes are the primary analysis set, arm by arm.
    async with projected.acquire() as conn:
        report = primary_endpoint(await endpoint_records(conn), PROTOCOL)
    assert {a.arm: a.n for a in report.analyses[0].arms} == {a.arm: a.analysed for a in flow.arms}
    assert sum(a.primary_visit_out_of_window for a in flow.arms) >= 1, "the script has a late M6"


async def test_visits_after_a_withdrawal_or_a_death_are_not_expected_and_say_why(
    recorded_trial: tuple[Client, Script, int], projected: asyncpg.Pool
) -> None:
    _, s, _ = recorded_trial
    rows = await projected.fetch(
        "SELECT subject_id, visit, not_expected_reason FROM visits WHERE status = 'not_expected'"
    )
    found: dict[str, set[str]] = {}
    for r in rows:
        found.setdefault(r["subject_id"], set()).add(r["visit"])
        assert r["not_expected_reason"].startswith(("withdrawn on", "died on"))
    assert found == s.not_expected
    async with projected.acquire() as conn:
        compliance = await visit_compliance(conn)
    assert sum(c.not_expected for c in compliance) == sum(len(v) for v in s.not_expected.values()) == 9
    states: dict[str, str] = {
        r["subject_id"]: r["state"] for r in await projected.fetch("SELECT subject_id, state FROM subjects")
    }
    assert {states[x] for x in s.withdrawn} == {"withdrawn"}, "a later consent withdrawal keeps the state"
    assert {states[x] for x in s.refused_consent} == {"consent_declined"}


async def test_the_deviations_report_and_dv_list_each_deviation_with_its_rule_code(
    recorded_trial: tuple[Client, Script, int], projected: asyncpg.Pool
) -> None:
    _, s, _ = recorded_trial
    async with projected.acquire() as conn:
        report = await deviations(conn, PROTOCOL)
        dv = await sdtm.dv(conn, PROTOCOL)
    assert {d.subject_id: d.code for d in report.deviations} == s.deviations
    kinds = {(c.kind, c.deviations) for c in report.by_site_and_kind}
    assert kinds == {("SCREENING_OUTSIDE_DAYS_BEFORE_SURGERY", 1), ("VISIT_OUT_OF_WINDOW", 1)}
    assert {r["USUBJID"].removeprefix("NCT06646146-"): r["DVDECOD"] for r in dv} == s.deviations
    assert {r["DVCAT"] for r in dv} == {"SCREENING_OUTSIDE_DAYS_BEFORE_SURGERY", "VISIT_OUT_OF_WINDOW"}


async def test_the_primary_endpoint_equals_the_scripts_values_computed_by_hand(
    recorded_trial: tuple[Client, Script, int], projected: asyncpg.Pool
) -> None:
    _, s, _ = recorded_trial
    async with projected.acquire() as conn:
        report = primary_endpoint(await endpoint_records(conn), PROTOCOL)
    assert (report.visit, report.endpoint) == ("M6", "Follicle survival (%)")
    valid = {subject: m6 for subject, m6 in s.m6.items() if subject not in s.invalidated}
    sizes = []
    for analysis, window_only in zip(report.analyses, (True, False), strict=True):
        chosen = {x: value for x, (value, in_window) in valid.items() if in_window or not window_only}
        a = [v for x, v in chosen.items() if s.arm[x] == "FG_HT"]
        b = [v for x, v in chosen.items() if s.arm[x] == "HT"]
        arms = {arm.arm: arm for arm in analysis.arms}
        for arm, values in (("FG_HT", a), ("HT", b)):
            q1, median, q3 = statistics.quantiles(values, n=4, method="inclusive")
            got = arms[arm]
            assert got.n == len(values)
            expected = [statistics.fmean(values), statistics.stdev(values), median, q1, q3]
            assert [got.mean, got.sd, got.median, got.q1, got.q3] == pytest.approx(expected, abs=0.0051)
        assert analysis.difference == "FG_HT - HT"
        assert analysis.welch is not None and analysis.hodges_lehmann is not None
        welch = [analysis.welch.estimate, analysis.welch.ci_low, analysis.welch.ci_high]
        assert welch == pytest.approx(welch_by_formula(a, b), abs=0.0051)
        shift = [analysis.hodges_lehmann.estimate, analysis.hodges_lehmann.ci_low, analysis.hodges_lehmann.ci_high]
        assert shift == pytest.approx(hodges_lehmann_by_hand(a, b), abs=0.0051)
        sizes.append(len(chosen))
    assert sizes[1] == sizes[0] + 1, "the late M6 joins the second analysis only"


async def test_adam_datasets_round_trip_to_dm_and_to_the_visit_events(
    recorded_trial: tuple[Client, Script, int], projected: asyncpg.Pool
) -> None:
    _, s, _ = recorded_trial
    async with projected.acquire() as conn:
        adsl, dm, adeff = (
            await adam.adsl(conn, PROTOCOL),
            await sdtm.dm(conn, PROTOCOL),
            await adam.adeff(conn, PROTOCOL),
        )
    assert [r["USUBJID"] for r in adsl] == [r["USUBJID"] for r in dm if r["ARMCD"]], "DM's randomized subjects"
    subject = {r["USUBJID"]: r["SUBJID"] for r in adsl}
    assert {subject[r["USUBJID"]] for r in adsl if r["ITTFL"] == "N"} == s.invalidated
    in_window = {x for x, (_, ok) in s.m6.items() if ok and x not in s.invalidated}
    assert {subject[r["USUBJID"]] for r in adsl if r["PPROTFL"] == "Y"} == in_window
    assert {subject[r["USUBJID"]] for r in adsl if r["DCSREAS"] == "DEATH"} == s.died
    sources = {UUID(r["SRCEVID"]) for r in adeff}
    assert sources <= set(s.visit_values) and not sources & s.superseded, "every value traces to its current event"
    for row in adeff:
        if row["PARAMCD"] == "FOLSURV":
            assert float(row["AVAL"]) == s.visit_values[UUID(row["SRCEVID"])]
    assert len(adeff) == len(sources) * len(ASSESSMENTS)


async def test_exports_parse_as_csv_with_the_sdtm_columns_and_one_dm_row_per_randomized_subject(
    recorded_trial: tuple[Client, Script, int], projected: asyncpg.Pool
) -> None:
    _, s, _ = recorded_trial
    async with projected.acquire() as conn:
        for domain, build in datasets.builders(DICTIONARIES, PROTOCOL.forms).items():
            text = datasets.to_csv(domain, await build(conn, PROTOCOL), PROTOCOL.forms)
            reader = csv.DictReader(io.StringIO(text))
            rows = list(reader)
            assert reader.fieldnames == [v[0] for v in datasets.define_of(PROTOCOL.forms)[domain]]
            # SDTM rows name their domain; ADaM datasets have no DOMAIN column.
            assert {r.get("DOMAIN", domain) for r in rows} <= {domain}
            assert rows and all(r["STUDYID"] == "NCT06646146" for r in rows)
            subject = {r["USUBJID"]: r["USUBJID"].removeprefix("NCT06646146-") for r in rows}
            if domain == "DM":
                # Everyone who consented, screen failures and subjects never allocated too (SDTMIG 3.4).
                assert sorted(r["SUBJID"] for r in rows) == sorted(s.screened | s.never_screened)
                assert sorted(r["SUBJID"] for r in rows if r["ARMCD"]) == sorted(s.arm)
                assert {r["SUBJID"] for r in rows if r["ARMNRS"] == "SCREEN FAILURE"} == set(s.failed_codes)
                assert all(
                    bool(r["ARMCD"]) != bool(r["ARMNRS"]) or r["ARMNRS"] == "ASSIGNED, NOT TREATED" for r in rows
                )
                assert {r["ACTARMCD"] for r in rows} == {"FG_HT", "HT", ""} and {r["COUNTRY"] for r in rows} == {"CHN"}
                assert sum(r["DTHFL"] == "Y" for r in rows) == len(s.died)
            if domain == "SUPPDM":
                assert {(subject[r["USUBJID"]], r["QNAM"]) for r in rows} == {(x, "RANDNO") for x in s.arm}
            if domain == "IE":
                assert {subject[r["USUBJID"]] for r in rows} >= set(s.failed_codes)
                assert max(len(r["IETEST"]) for r in rows) <= 40
            if domain == "SV":
                names = {r["VISIT"] for r in rows}
                assert {"SCREENING", "SURGERY", "WEEK 1", "MONTH 6"} <= names
                assert {r["SVUPDES"] for r in rows} == {""}, "every visit is a planned one"
                assert {r["SVSTDY"] for r in rows if r["VISIT"] == "SURGERY"} == {"1"}
                assert all(r["SVSTDTC"] == r["SVENDTC"] for r in rows)
            if domain == "SUPPAE":
                assert {subject[r["USUBJID"]] for r in rows if r["QVAL"] == "NOT CODED"} == s.uncoded
            if domain == "CM":
                # One row per entry as it stands: the corrected dose, not the one it replaced.
                taken = {UUID(r["CMSPID"]): r for r in rows}
                assert taken.keys() == s.logs["concomitant-medication"].keys()
                for entry, answers in s.logs["concomitant-medication"].items():
                    row = taken[entry]
                    assert (subject[row["USUBJID"]], row["CMTRT"]) == (answers["subject"], answers["medication"])
                    assert row["CMDOSE"] == str(answers.get("dose", "")) and row["CMROUTE"] in ("ORAL", "TOPICAL")
                    assert row["CMENRTPT"] == ("ONGOING" if answers["ongoing"] else "")
                drugs = {r["CMTRT"]: (r["CMDECOD"], r["CMCLASCD"], r["CMDOSFRQ"]) for r in rows}
                assert drugs == {"Ibuprofen": ("Ibuprofen", "M01AE01", "TID"), "Herbal scalp tonic": ("", "", "")}
            if domain == "SUPPCM":
                qualifiers = {(r["QNAM"], r["QVAL"]) for r in rows}
                assert qualifiers == {("CMCODST", "CODED"), ("CMCODST", "NOT CODED"), ("CMSURGAR", "Y")}
            if domain == "MH":
                [history] = rows
                assert (history["MHTERM"], history["MHDECOD"], history["MHBODSYS"]) == (
                    "Wound infection",
                    "Wound infection",
                    "Infections and infestations",
                )
                dates = (history["MHSTDTC"], history["MHENDTC"], history["MHENRTPT"])
                assert dates == ("2019-04-01", "2019-04-20", "")
            if domain == "SUPPMH":
                assert {(r["QNAM"], r["QVAL"]) for r in rows} == {("MHIECRIT", "EX02"), ("MHCODST", "CODED")}
            if domain == "AE":
                coded = {r["AETERM"]: (r["AEDECOD"], r["AEBODSYS"]) for r in rows}
                assert coded["Sepsis"] == ("Sepsis", "Infections and infestations")
                assert coded["Itchy scalp after graft"] == ("", ""), "never coded by a guess"
                assert {r["AEOUT"] for r in rows} <= {
                    "RECOVERED/RESOLVED",
                    "RECOVERING/RESOLVING",
                    "NOT RECOVERED/NOT RESOLVED",
                    "RECOVERED/RESOLVED WITH SEQUELAE",
                    "FATAL",
                }


async def test_the_sdtm_datasets_pass_the_independent_basics_check_but_for_the_uncoded_term(
    recorded_trial: tuple[Client, Script, int], projected: asyncpg.Pool
) -> None:
    _, s, _ = recorded_trial
    built = datasets.builders(DICTIONARIES, PROTOCOL.forms)
    found = []
    async with projected.acquire() as conn:
        for domain in sdtm_basics.BASICS["domains"]:
            found += sdtm_basics.findings(
                domain, datasets.to_csv(domain, await built[domain](conn, PROTOCOL), PROTOCOL.forms)
            )
    # The one finding is real and wanted: a verbatim term the sponsor's dictionary does not hold.
    assert len(found) == 1, "\n".join(found)
    [uncoded] = found
    assert uncoded.startswith("AE.AEDECOD row") and uncoded.endswith("required, empty") and len(s.uncoded) == 1
    assert {"CM", "SUPPCM", "MH", "SUPPMH"} <= sdtm_basics.BASICS["domains"].keys(), "the logs' domains checked too"


async def test_the_odm_snapshot_passes_the_odm_model_and_holds_what_the_script_recorded(
    recorded_trial: tuple[Client, Script, int], projected: asyncpg.Pool
) -> None:
    _, s, _ = recorded_trial
    async with projected.acquire() as conn:
        document = (await odm_snapshot(conn, PROTOCOL, datetime(2027, 6, 1, tzinfo=UTC))).encode()
        subjects = {r["subject_id"] for r in await conn.fetch("SELECT subject_id FROM subjects")}
    assert odm_check.findings(document) == []
    root = ET.fromstring(document)
    ns = {"odm": odm_check.NS}

    def values(item: str) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for subject in root.iterfind("odm:ClinicalData/odm:SubjectData", ns):
            for data in subject.iterfind(f".//odm:ItemData[@ItemOID='{item}']", ns):
                found.setdefault(subject.get("SubjectKey", ""), []).append(data.get("Value", ""))
        return found

    keys = {e.get("SubjectKey") for e in root.iterfind("odm:ClinicalData/odm:SubjectData", ns)}
    assert keys == subjects and s.arm.keys() <= keys
    assert {k: v for k, v in values("IT.RANDOMIZATION.ARM").items()} == {k: [a] for k, a in s.arm.items()}
    assert set(values("IT.END.DIED_ON")) == s.died
    # Every criterion that failed a screen failure is there, by its code, as one that blocks.
    codes, blocking = values("IT.CRITERION.CODE"), values("IT.CRITERION.BLOCKS")
    for subject, failed in s.failed_codes.items():
        assert failed <= {c for c, b in zip(codes[subject], blocking[subject], strict=True) if b == "true"}
    sites = {loc.get("OID") for loc in root.iterfind("odm:AdminData/odm:Location", ns)}
    assert sites == {f"LOC.{site.code}" for site in PROTOCOL.sites}
    # Questions and decodes are the data dictionary's, in both languages.
    lang = "{http://www.w3.org/XML/1998/namespace}lang"
    mdv = "odm:Study/odm:MetaDataVersion"
    question = root.find(f"{mdv}/odm:ItemDef[@OID='IT.SCREENING.SEX']/odm:Question", ns)
    assert question is not None
    assert {t.get(lang): t.text for t in question.iterfind("odm:TranslatedText", ns)} == {"en": "Sex", "zh": "性别"}
    female = root.find(f"{mdv}/odm:CodeList[@OID='CL.SEX']/odm:CodeListItem[@CodedValue='female']/odm:Decode", ns)
    assert female is not None
    assert {t.get(lang): t.text for t in female.iterfind("odm:TranslatedText", ns)} == {"en": "Female", "zh": "女"}
    # The checker is not a rubber stamp: an item nobody defined, and a value off its code list, are found.
    broken = document.replace(b'ItemOID="IT.SURGERY.SURGEON"', b'ItemOID="IT.SURGERY.SURGEONS"', 1)
    assert any("IT.SURGERY.SURGEONS" in f for f in odm_check.findings(broken))
    off_list = document.replace(b'Value="FG_HT"', b'Value="FG"', 1)
    assert any("not in CL.ARM" in f for f in odm_check.findings(off_list))
    off_schema = document.replace(b'Mandatory="No"', b'Mandatory="Maybe"', 1)
    assert any(f.startswith("ODM 1.3.2 schema:") for f in odm_check.findings(off_schema))


async def test_a_rebuild_equals_the_live_read_models_table_by_table(
    recorded_trial: tuple[Client, Script, int], projected: asyncpg.Pool
) -> None:
    nc, _, last = recorded_trial
    results = await rebuild(all_projections(PROTOCOL), nc.jetstream(), projected)
    assert set(results) == set(ReadModel)
    for name, result in results.items():
        assert result.live_sequence == result.last_sequence == last
        assert result.equal, f"{name}: {result.live_checksums} != {result.rebuilt_checksums}"


async def test_the_read_models_are_the_same_whether_events_come_one_at_a_time_or_all_in_one_batch(
    recorded_trial: tuple[Client, Script, int], projected: asyncpg.Pool
) -> None:
    # Batched writes are regrouped per statement: one event per batch regroups nothing.
    nc, _, last = recorded_trial
    projections = all_projections(PROTOCOL)
    tables = [t for p in projections for t in p.tables]
    checksums = []
    for batch_size in (1, last):
        async with read_models_as_of(projections, nc.jetstream(), projected, through=last, batch_size=batch_size) as c:
            checksums.append(await table_checksums(c, tables))
    assert checksums[0] == checksums[1]
    async with projected.acquire() as conn:
        assert await table_checksums(conn, tables) == checksums[0], "the live models, batched as they came"


async def test_a_projection_fed_the_same_events_twice_changes_nothing(
    recorded_trial: tuple[Client, Script, int], projected: asyncpg.Pool
) -> None:
    nc, _, _ = recorded_trial
    from shared.runtime.eventstore import EVENTS_PREFIX, to_recorded

    sub = await nc.jetstream().subscribe(f"{EVENTS_PREFIX}.>", ordered_consumer=True)
    events = [to_recorded(await sub.next_msg(timeout=5)) for _ in range(50)]
    await sub.unsubscribe()
    for projection in all_projections(PROTOCOL):
        before = await table_checksums(projected, projection.tables)
        async with projected.acquire() as conn, conn.transaction():
            assert await apply_batch(conn, projection, events) == 0
        assert await table_checksums(projected, projection.tables) == before


async def test_the_read_models_as_of_a_sequence_export_the_same_bytes_every_time_and_leave_the_live_ones_be(
    recorded_trial: tuple[Client, Script, int], projected: asyncpg.Pool
) -> None:
    nc, _, last = recorded_trial
    js = nc.jetstream()
    projections = all_projections(PROTOCOL)
    as_of = datetime(2027, 1, 1, tzinfo=UTC)
    async with projected.acquire() as conn:
        live = await export_files(conn, PROTOCOL, Dictionaries(), as_of=as_of)
        checksums = await table_checksums(conn, [t for p in projections for t in p.tables])
    async with read_models_as_of(projections, js, projected, through=last) as conn:
        assert await export_files(conn, PROTOCOL, Dictionaries(), as_of=as_of) == live
    # As of just before the last adverse event: without it, and byte for byte the same on every replay.
    last_report = (await EventStore(js).load(trial_wide(AdverseEventReported.event_type))).events[-1].sequence
    frozen = []
    for _ in range(2):
        async with read_models_as_of(projections, js, projected, through=last_report - 1) as conn:
            frozen.append(await export_files(conn, PROTOCOL, Dictionaries(), as_of=as_of))
    assert frozen[0] == frozen[1]
    assert frozen[0]["ae.csv"].count("\n") == live["ae.csv"].count("\n") - 1
    async with projected.acquire() as conn:
        assert await table_checksums(conn, [t for p in projections for t in p.tables]) == checksums, "live untouched"
        assert await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname LIKE 'pg_temp%'") == 0


async def test_once_the_database_is_locked_every_export_is_the_one_made_as_of_the_lock(
    recorded_trial: tuple[Client, Script, int], projected: asyncpg.Pool, database_url: str, own_nats: str
) -> None:
    """Last in this module: it locks the module's record (as of just before its last adverse event report)."""
    nc, script, _ = recorded_trial
    js = nc.jetstream()
    store = EventStore(js)
    through = (await store.load(trial_wide(AdverseEventReported.event_type))).events[-1].sequence - 1
    meta = EventMetadata("/trial/datamanagement", None, PROTOCOL.trial_id, "dm-1", "corr-lock", PROTOCOL.version)
    lock = DatabaseLocked(through_sequence=through, subjects=len(script.histories))
    [locked] = await store.append(
        [EventEnvelope.wrap(lock, meta, event_id=uuid4(), time=datetime(2027, 2, 1, tzinfo=UTC))],
        subject_filter=trial_history(PROTOCOL.trial_id, DatabaseLocked.event_type),
        expected_last_sequence=0,
    )
    runner = ProjectionRunner(DataManagementProjection(), js, projected)
    running = asyncio.create_task(runner.run())
    try:
        await wait_for_checkpoint(projected, ReadModel.DATA_MANAGEMENT, locked.sequence, timeout=60)
    finally:
        runner.stop()
        await running

    settings = GatewaySettings(
        nats_url=own_nats,
        database_url=database_url,
        token_signing_keys=f"t:{TOKEN_KEY}",
        command_signing_key=COMMAND_KEYS["COMMAND_SIGNING_KEY"],
    )
    dictionaries = settings.dictionaries()
    assert await freeze_exports(js, projected, PROTOCOL, dictionaries)
    assert await freeze_exports(js, projected, PROTOCOL, dictionaries), "made once, kept"
    reproduced = await files_as_of_lock(js, projected, PROTOCOL, dictionaries, locked)
    async with projected.acquire() as conn:
        live = await export_files(conn, PROTOCOL, dictionaries, as_of=datetime.now(UTC))
    assert reproduced["ae.csv"].count("\n") == live["ae.csv"].count("\n") - 1, "the report after the lock left out"

    await apply_migrations(projected, "gateway", GATEWAY_MIGRATIONS)  # its own tables: keys, ended tokens
    app = create_app(settings)
    bearer = issue_token(
        {"t": TOKEN_KEY},
        issuer=settings.token_issuer,
        role=Role.STATISTICIAN,
        site=None,
        hours=1,
    )
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as http,
    ):
        for name, path in (
            ("ae.csv", "AE.csv"),
            ("adsl.csv", "ADSL.csv"),
            ("odm.xml", "odm.xml"),
            ("database-lock.json", "database-lock.json"),
        ):
            served = await http.get(f"/v1/reports/exports/{path}", headers={"Authorization": f"Bearer {bearer}"})
            assert served.status_code == 200, served.text
            assert served.text == reproduced[name], f"{name}: byte for byte as of the lock"
            assert served.headers["Database-Lock-Sequence"] == str(through)
    assert json.loads(reproduced["database-lock.json"])["through_sequence"] == through
