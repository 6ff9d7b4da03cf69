"""A protocol amendment in the running services, on a record of its own: deployed through data management, taken by
the screening and visits services without a restart, in force at each site from its own day. A subject screened on
the eve is judged under the old criteria, one screened on the day under the new, and a correction of the old
screening keeps its version; an active subject's visit waits for the revised consent; each site's day is recorded."""

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from uuid import UUID, uuid4
from xml.etree import ElementTree as ET
from zoneinfo import ZoneInfo

import pytest
from faststream import TestApp
from nats.aio.client import Client
from pydantic import BaseModel

from devstack.examples import ELIGIBLE, allocation, append, assessments, consent_on, surgery
from devstack.servers import EmbeddedNats
from services.datamanagement.app import build_app as build_data_management
from services.datamanagement.settings import DataManagementSettings
from services.reporting.reports import sdtm
from services.reporting.reports.odm import odm_snapshot
from services.screening.app import build_app as build_screening
from services.screening.settings import ScreeningSettings
from services.visits.app import build_app as build_visits
from services.visits.settings import VisitsSettings
from shared.contracts.access import Role
from shared.contracts.amendments import AmendmentDeployment
from shared.contracts.collected import CollectedForm
from shared.contracts.commands import (
    DEPLOY_AMENDMENT,
    RECORD_CONSENT,
    RECORD_FORM,
    RECORD_VISIT,
    SCREEN_SUBJECT,
    WITHDRAW_SUBJECT,
    ActorContext,
    CommandContext,
    CommandReply,
    DeployAmendment,
    RecordConsent,
    RecordForm,
    RecordVisit,
    ScreenSubject,
    WithdrawSubject,
)
from shared.contracts.events import (
    FormRecorded,
    GraftProcedurePerformed,
    ProtocolAmendmentDeployed,
    ProtocolAmendmentEffective,
    SubjectScreened,
)
from shared.contracts.forms import ConsentForm, ScreeningForm, VisitRecord, WithdrawalForm
from shared.contracts.protocol import load_protocol
from shared.readmodels.amendments import amendment_definition, amendments, reconsent_due
from shared.runtime.eventstore import EVENTS_STREAM, EventStore, subject_history, trial_history
from shared.runtime.settings import DEFAULT_PROTOCOL_FILE
from tests import odm_check
from tests.amendment import OLDEST_AFTER, amendment
from tests.conftest import COMMAND_VERIFY_KEYS, as_gateway
from tests.integration.conftest import build_read_models

pytestmark = pytest.mark.integration
PROTOCOL = load_protocol(DEFAULT_PROTOCOL_FILE)
CHINA = ZoneInfo("Asia/Shanghai")
# The sites' day for the new version: NFH's ethics committee approved it a day before GZ2's.
NFH_DAY = datetime.now(CHINA).date() + timedelta(days=3)
GZ2_DAY = NFH_DAY + timedelta(days=1)
EVE = NFH_DAY - timedelta(days=1)


class Clock:
    """Data management's clock, moved on by the test to each site's day (the other services judge by the command)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture(scope="module")
async def services(own_server: EmbeddedNats, own_nc: Client) -> AsyncIterator[tuple[Client, Clock]]:
    clock = Clock()
    keys = COMMAND_VERIFY_KEYS
    data_management = DataManagementSettings(
        nats_url=own_server.url_for("datamanagement"), amendment_check_seconds=0.05, command_verify_keys=keys
    )
    async with (
        TestApp(build_data_management(data_management, clock=clock)),
        TestApp(build_screening(ScreeningSettings(nats_url=own_server.url_for("screening"), command_verify_keys=keys))),
        TestApp(build_visits(VisitsSettings(nats_url=own_server.url_for("visits"), command_verify_keys=keys))),
    ):
        yield own_nc, clock


def at(day: date) -> datetime:
    """Mid-morning at the Chinese sites on that day."""
    return datetime.combine(day, time(10), CHINA).astimezone(UTC)


def context(site: str | None, subject: str | None, day: date, role: Role) -> dict[str, Any]:
    return {
        "command_id": uuid4(),
        "correlation_id": f"corr-{uuid4()}",
        "actor": "dm-1" if site is None else "crc-1",
        "role": role,
        "actor_site": site,
        "token_id": "test-token",
        "received_at": at(day),
    } | ({"site": site, "subject": subject} if site else {})


async def send(nc: Client, subject: str, command: BaseModel, site: str | None, role: Role) -> CommandReply:
    payload = command.model_dump_json().encode()
    headers = as_gateway(subject, payload, site=site, role=role)
    return CommandReply.model_validate_json((await nc.request(subject, payload, timeout=10, headers=headers)).data)


async def site_form(nc: Client, name: str, site: str, subject: str, day: date, form: BaseModel) -> CommandReply:
    kinds: dict[str, type[BaseModel]] = {
        RECORD_CONSENT: RecordConsent,
        SCREEN_SUBJECT: ScreenSubject,
        RECORD_VISIT: RecordVisit,
        WITHDRAW_SUBJECT: WithdrawSubject,
        RECORD_FORM: RecordForm,
    }
    command = kinds[name](context=CommandContext(**context(site, subject, day, Role.INVESTIGATOR)), form=form)
    return await send(nc, name, command, site, Role.INVESTIGATOR)


def deployment(body: dict[str, Any]) -> DeployAmendment:
    """A data manager's command deploying the amendment, on the eve."""
    return DeployAmendment(
        context=ActorContext(**context(None, None, EVE, Role.DATA_MANAGER)),
        form=AmendmentDeployment.model_validate(body),
    )


def consent(version: str, on: date) -> ConsentForm:
    return ConsentForm(consent_form_version=version, signed_on=on, obtained_by="inv-01", signed_by_subject=True)


def screening(on: date, age: int = OLDEST_AFTER - 1, **correction: Any) -> ScreeningForm:
    return ScreeningForm.model_validate(ELIGIBLE | {"screening_date": on.isoformat(), "age_years": age} | correction)


async def screened(store: EventStore, site: str, subject: str) -> tuple[SubjectScreened, str]:
    [*_, last] = [
        e for e in (await store.load(subject_history(site, subject))).events if isinstance(e.data, SubjectScreened)
    ]
    assert isinstance(last.data, SubjectScreened)
    return last.data, last.envelope.protocolversion


async def test_an_amendment_runs_across_two_sites_on_their_own_days(
    services: tuple[Client, Clock], database_url: str
) -> None:
    nc, clock = services
    store = EventStore(nc.jetstream())
    # Active subjects at NFH, operated a week before the new version's day.
    for subject in ("NFH-101", "NFH-104", "NFH-105"):
        await append(
            store,
            "NFH",
            subject,
            [
                (consent_on(EVE - timedelta(days=20)), at(EVE - timedelta(days=20))),
                (allocation("NFH"), at(EVE - timedelta(days=10))),
                (GraftProcedurePerformed.model_validate(surgery(EVE - timedelta(days=6), fat_graft=True)), at(EVE)),
            ],
        )
    # Subjects consented and screened on the eve at NFH, under version 1.0: too old for it.
    for subject in ("NFH-102", "NFH-103"):
        assert (await site_form(nc, RECORD_CONSENT, "NFH", subject, EVE, consent("1.0", EVE))).accepted

    deploy = deployment(amendment({"NFH": NFH_DAY, "GZ2": GZ2_DAY, "SZ3": GZ2_DAY}))
    deployed = await send(nc, DEPLOY_AMENDMENT, deploy, None, Role.DATA_MANAGER)
    assert deployed.accepted, deployed
    [fact] = (await store.load(trial_history(PROTOCOL.trial_id, ProtocolAmendmentDeployed.event_type))).events
    assert (fact.envelope.actor, fact.envelope.actorrole) == ("dm-1", "data_manager"), "who deployed it"
    again = await send(nc, DEPLOY_AMENDMENT, deploy.model_copy(update={"context": deploy.context.model_copy(
        update={"command_id": uuid4()})}), None, Role.DATA_MANAGER)  # fmt: skip
    assert again.rejection is not None and again.rejection.rule == "amendment.follows_the_latest_version"

    eve = await site_form(nc, SCREEN_SUBJECT, "NFH", "NFH-102", EVE, screening(EVE))
    assert eve.accepted and eve.result["eligible"] is False
    assert (await screened(store, "NFH", "NFH-102"))[1] == "1.0"

    # NFH's day: the next screening is judged under 2.0, after the revised consent; GZ2 is still on 1.0.
    refused = await site_form(nc, SCREEN_SUBJECT, "NFH", "NFH-103", NFH_DAY, screening(NFH_DAY))
    assert refused.rejection is not None and refused.rejection.rule == "consent.current_version", refused
    assert "2.0" in refused.rejection.detail and refused.rejection.field == "consent_form_version"
    assert (await site_form(nc, RECORD_CONSENT, "NFH", "NFH-103", NFH_DAY, consent("2.0", NFH_DAY))).accepted
    day = await site_form(nc, SCREEN_SUBJECT, "NFH", "NFH-103", NFH_DAY, screening(NFH_DAY))
    assert day.accepted and day.result["eligible"] is True, day
    assert (await screened(store, "NFH", "NFH-103"))[1] == "2.0"

    assert (await site_form(nc, RECORD_CONSENT, "GZ2", "GZ2-101", NFH_DAY, consent("1.0", NFH_DAY))).accepted
    gz2 = await site_form(nc, SCREEN_SUBJECT, "GZ2", "GZ2-101", NFH_DAY, screening(NFH_DAY))
    assert gz2.accepted and gz2.result["eligible"] is False and (await screened(store, "GZ2", "GZ2-101"))[1] == "1.0"

    # A correction of the eve's screening, made on the day, keeps the version it was judged under.
    [record] = [
        e for e in (await store.load(subject_history("NFH", "NFH-102"))).events if isinstance(e.data, SubjectScreened)
    ]
    correction = screening(EVE, supersedes=str(record.envelope.id), reason="weight transcribed wrongly")
    corrected = await site_form(nc, SCREEN_SUBJECT, "NFH", "NFH-102", NFH_DAY, correction)
    assert corrected.accepted and corrected.result["eligible"] is False, corrected
    assert (await screened(store, "NFH", "NFH-102"))[1] == "1.0"

    # A log's entry made on the eve is corrected on the day under the version it was entered under; a new one is 2.0.
    medication = {"medication": "Cefalexin", "route": "oral", "indication": "Prophylaxis", "ongoing": True}
    eve_entry = CollectedForm(form="concomitant-medication", answers=medication | {"start_date": str(EVE)})
    entered = await site_form(nc, RECORD_FORM, "NFH", "NFH-101", EVE, eve_entry)
    assert entered.accepted, entered
    corrected_entry = eve_entry.model_copy(
        update={
            "entry": UUID(entered.result["entry"]),
            "supersedes": entered.event_ids[-1],
            "reason": "dose transcribed",
        }
    )
    assert (await site_form(nc, RECORD_FORM, "NFH", "NFH-101", NFH_DAY, corrected_entry)).accepted
    new_entry = CollectedForm(form="concomitant-medication", answers=medication | {"start_date": str(NFH_DAY)})
    assert (await site_form(nc, RECORD_FORM, "NFH", "NFH-101", NFH_DAY, new_entry)).accepted
    logged = [
        e for e in (await store.load(subject_history("NFH", "NFH-101"))).events if isinstance(e.data, FormRecorded)
    ]
    assert [e.envelope.protocolversion for e in logged] == ["1.0", "1.0", "2.0"]

    # The active subject's W1 visit waits for the revised consent; a withdrawal never waits.
    w1 = VisitRecord.model_validate(assessments(NFH_DAY) | {"visit": "W1"})
    waiting = await site_form(nc, RECORD_VISIT, "NFH", "NFH-101", NFH_DAY, w1)
    assert waiting.rejection is not None and waiting.rejection.rule == "consent.current_version", waiting
    assert (await site_form(nc, RECORD_CONSENT, "NFH", "NFH-101", NFH_DAY, consent("2.0", NFH_DAY))).accepted
    seen = await site_form(nc, RECORD_VISIT, "NFH", "NFH-101", NFH_DAY, w1)
    assert seen.accepted, seen
    withdrawal = WithdrawalForm(withdrawn_on=NFH_DAY, reason_category="subject_decision", decided_by="subject")
    withdrawn = await site_form(nc, WITHDRAW_SUBJECT, "NFH", "NFH-104", NFH_DAY, withdrawal)
    assert withdrawn.accepted, withdrawn

    # Each site's day is recorded as it comes, once.
    clock.now = at(NFH_DAY)
    effective = trial_history(PROTOCOL.trial_id, ProtocolAmendmentEffective.event_type)
    first = await eventually(store, effective, 1)
    assert [(e.data.site, e.data.effective_on) for e in first] == [("NFH", NFH_DAY)]
    clock.now = at(GZ2_DAY)
    both = await eventually(store, effective, 3)
    assert sorted((e.data.site, e.data.version) for e in both) == [("GZ2", "2.0"), ("NFH", "2.0"), ("SZ3", "2.0")]

    # The report: who deployed what, each site's day, whom it touched; and each site's re-consent work list.
    last = (await nc.jetstream().stream_info(EVENTS_STREAM)).state.last_seq
    pool = await build_read_models(nc, database_url, PROTOCOL, last)
    try:
        [report] = await amendments(pool)
        assert (report.version, report.amends, report.consent_form_version, report.deployed_by) == (
            "2.0",
            "1.0",
            "2.0",
            "dm-1",
        )
        sites = {s.site: s for s in report.sites}
        assert (sites["NFH"].effective_on, sites["GZ2"].effective_on) == (NFH_DAY, GZ2_DAY)
        assert all(s.in_force_at is not None for s in report.sites)
        # Screened out on the eve (NFH-102) or before GZ2's day (GZ2-101): not taking part when it came.
        assert sites["NFH"].subjects_touched == ["NFH-101", "NFH-103", "NFH-104", "NFH-105"]
        assert sites["GZ2"].subjects_touched == [] and sites["SZ3"].subjects_touched == []
        [due] = await reconsent_due(pool, "NFH", NFH_DAY)
        assert (due.subject_id, due.required_version, due.since) == ("NFH-105", "2.0", NFH_DAY)
        assert await reconsent_due(pool, "NFH", EVE) == [] and await reconsent_due(pool, "GZ2", GZ2_DAY) == []
        assert (await amendment_definition(pool, "2.0") or {})["eligibility"]["inclusion"]["IN07"]["max_age"] == (
            OLDEST_AFTER
        )
        # SDTM: the criteria of each version (TI), and each consent with its form's version (DS).
        async with pool.acquire() as conn:
            criteria = {(r["TIVERS"], r["IETESTCD"]): r["IETEST"] for r in await sdtm.ti(conn, PROTOCOL)}
            consents = [
                (r["DSTERM"], r["DSDECOD"], r["DSSTDTC"])
                for r in await sdtm.ds(conn, PROTOCOL)
                if r["USUBJID"].endswith("NFH-103") and r["DSCAT"] == "PROTOCOL MILESTONE"
            ]
        assert len(criteria) == 2 * len(PROTOCOL.eligibility.codes)
        assert (criteria["1.0", "IN07"], criteria["2.0", "IN07"]) == ("Age 18 to 59 years", "Age 18 to 65 years")
        assert consents == [
            ("INFORMED CONSENT OBTAINED, FORM VERSION 1.0", "INFORMED CONSENT OBTAINED", str(EVE)),
            ("INFORMED CONSENT OBTAINED, FORM VERSION 2.0", "INFORMED CONSENT OBTAINED", str(NFH_DAY)),
        ]
        # ODM: one metadata version per protocol version, each site's day for each, each subject's data on theirs.
        async with pool.acquire() as conn:
            document = (await odm_snapshot(conn, PROTOCOL, at(GZ2_DAY))).encode()
    finally:
        await pool.close()
    assert odm_check.findings(document) == []
    root, ns = ET.fromstring(document), {"odm": odm_check.NS}
    assert [m.get("OID") for m in root.iterfind("odm:Study/odm:MetaDataVersion", ns)] == ["MDV.1.0", "MDV.2.0"]
    nfh = root.find("odm:AdminData/odm:Location[@OID='LOC.NFH']", ns)
    assert nfh is not None
    assert [(r.get("MetaDataVersionOID"), r.get("EffectiveDate")) for r in nfh][-1] == ("MDV.2.0", str(NFH_DAY))
    under = {
        c.get("MetaDataVersionOID"): sorted(s.get("SubjectKey", "") for s in c.iterfind("odm:SubjectData", ns))
        for c in root.iterfind("odm:ClinicalData", ns)
    }
    # NFH-101 stands under 1.0; its medication entered on NFH's day is under 2.0, as entered.
    assert under == {
        "MDV.1.0": ["GZ2-101", "NFH-101", "NFH-102", "NFH-104", "NFH-105"],
        "MDV.2.0": ["NFH-101", "NFH-103"],
    }
    astray = document.replace(b'MetaDataVersionOID="MDV.2.0">', b'MetaDataVersionOID="MDV.9.9">', 1)
    assert any("no such MetaDataVersion" in f for f in odm_check.findings(astray))


async def eventually(store: EventStore, subject_filter: str, count: int) -> list[Any]:
    for _ in range(100):
        events = (await store.load(subject_filter)).events
        if len(events) >= count:
            return list(events)
        await asyncio.sleep(0.05)
    raise AssertionError(f"{subject_filter}: not {count} facts")
