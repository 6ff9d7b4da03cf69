"""An amendment that changes what sites enter on the data dictionary's own forms, taken by the running gateway
without a restart: the concomitant medications log gains a required item, and a questionnaire is added at M1 and
M6. Until a site's day each form is taken as version 1.0 declares it, from that day as 2.0 does, at the gateway
and at the visits service alike; the API document names each version's schema."""

import csv
import io
import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any
from xml.etree import ElementTree as ET

import httpx
import pytest
from cryptography.fernet import Fernet
from faststream import TestApp
from nats.aio.client import Client
from starlette.requests import Request

from devstack.examples import allocation, append, consent_on, surgery
from devstack.servers import EmbeddedNats
from services.datamanagement.app import build_app as build_data_management
from services.datamanagement.settings import DataManagementSettings
from services.gateway.app import MIGRATIONS as GATEWAY_MIGRATIONS
from services.gateway.app import create_app
from services.gateway.auth import issue_token
from services.gateway.settings import GatewaySettings
from services.reporting.exports import export_files
from services.screening.app import build_app as build_screening
from services.screening.settings import ScreeningSettings
from services.visits.app import build_app as build_visits
from services.visits.settings import VisitsSettings
from services.web.app import create_app as create_web_app
from services.web.gateway import Gateway
from services.web.pages import Pages
from services.web.session import Session
from services.web.settings import WebSettings
from shared.contracts.access import Role
from shared.contracts.commands import DEPLOY_AMENDMENT
from shared.contracts.events import FormRecorded, GraftProcedurePerformed
from shared.runtime.eventstore import EVENTS_STREAM, EventStore, subject_history
from shared.runtime.postgres import apply_migrations
from tests import odm_check
from tests.amendment import amendment
from tests.conftest import COMMAND_KEYS, COMMAND_VERIFY_KEYS
from tests.integration.conftest import build_read_models
from tests.integration.test_amendment import EVE, NFH_DAY, PROTOCOL, Clock, at, deployment, send
from tests.integration.test_reporting_trial import TOKEN_KEY
from tests.questionnaire import NAME as QUESTIONNAIRE
from tests.questionnaire import with_the_form

pytestmark = pytest.mark.integration
LOG = "concomitant-medication"
MEDICATION = {"medication": "Cefalexin", "route": "oral", "indication": "Prophylaxis", "ongoing": True}
SYMPTOMS = {"itch": 2, "tightness": "mild"}


def with_a_batch_and_a_questionnaire(effective: dict[str, Any]) -> dict[str, Any]:
    """Version 2.0 as tests deploy it, whose medications log also asks the batch (required), and which adds the
    scalp symptoms questionnaire."""
    body = amendment(effective)
    forms = with_the_form(body["definition"]["forms"])
    forms["forms"][LOG]["items"]["batch"] = {
        "type": "text", "required": True, "length": [1, 40], "label": {"en": "Batch number", "zh": "批号"},
        "sdtm": "SUPPCM.CMBATCH",
    }  # fmt: skip
    return body


def web_pages(gateway: httpx.AsyncClient) -> tuple[Pages, Request]:
    """The web app's pages, reaching this gateway, and a request for a page in Chinese."""
    web = create_web_app(WebSettings(web_session_key=Fernet.generate_key().decode()))
    web.state.gateway = Gateway(gateway)
    scope = {"type": "http", "app": web, "headers": [(b"accept-language", b"zh-CN")], "query_string": b""}
    return web.state.pages, Request(scope)


async def entry_form(pages: Pages, request: Request, session: Session, operation: str) -> tuple[str, list[str]]:
    """What the web app offers a site to enter on its day: the form's title and its items' questions."""
    in_force = await pages.in_force(request, session, "NFH")
    assert operation in await pages.casebook_forms(request, in_force)
    page = await pages.form_page(request, session, operation, "/", {}, {}, under=in_force)
    return page.title, [f.label_in("zh") for f in page.fields]


@pytest.fixture(scope="module")
async def services(own_server: EmbeddedNats, own_nc: Client) -> AsyncIterator[tuple[Client, Clock]]:
    keys = COMMAND_VERIFY_KEYS
    async with (
        TestApp(build_data_management(DataManagementSettings(
            nats_url=own_server.url_for("datamanagement"), command_verify_keys=keys))),
        TestApp(build_visits(VisitsSettings(nats_url=own_server.url_for("visits"), command_verify_keys=keys))),
        TestApp(build_screening(ScreeningSettings(nats_url=own_server.url_for("screening"), command_verify_keys=keys))),
    ):  # fmt: skip
        yield own_nc, Clock()


async def test_a_form_is_taken_as_the_version_in_force_at_the_site_declares_it(
    services: tuple[Client, Clock], own_server: EmbeddedNats, database_url: str
) -> None:
    nc, clock = services
    store = EventStore(nc.jetstream())
    await append(
        store, "NFH", "NFH-101",
        [
            (consent_on(EVE - timedelta(days=40)), at(EVE - timedelta(days=40))),
            (allocation("NFH"), at(EVE - timedelta(days=30))),
            (GraftProcedurePerformed.model_validate(surgery(EVE - timedelta(days=30), fat_graft=True)), at(EVE)),
        ],
    )  # fmt: skip
    deploy = deployment(with_a_batch_and_a_questionnaire({"NFH": NFH_DAY, "GZ2": NFH_DAY, "SZ3": NFH_DAY}))
    deployed = await send(nc, DEPLOY_AMENDMENT, deploy, None, Role.DATA_MANAGER)
    assert deployed.accepted, deployed

    last = (await nc.jetstream().stream_info(EVENTS_STREAM)).state.last_seq
    pool = await build_read_models(nc, database_url, PROTOCOL, last)
    await apply_migrations(pool, "gateway", GATEWAY_MIGRATIONS)
    await pool.close()
    settings = GatewaySettings(
        nats_url=own_server.url_for("gateway"),
        database_url=database_url,
        token_signing_keys=f"t:{TOKEN_KEY}",
        command_signing_key=COMMAND_KEYS["COMMAND_SIGNING_KEY"],
    )
    clock.now = at(EVE)
    app = create_app(settings, clock=clock)
    bearer = issue_token({"t": TOKEN_KEY}, issuer=settings.token_issuer, role=Role.INVESTIGATOR, site="NFH", hours=1)
    counter = iter(range(1000))

    async def post(http: httpx.AsyncClient, path: str, answers: dict[str, Any]) -> httpx.Response:
        headers = {"Authorization": f"Bearer {bearer}", "Idempotency-Key": f"key-{next(counter)}-{clock.now:%s}"}
        return await http.post(f"/v1/sites/NFH/subjects/NFH-101/{path}", json=answers, headers=headers)

    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as http,
    ):
        # The gateway has read 2.0 at start: the questionnaire has its route, each form its schema by version.
        document = (await http.get("/openapi.json")).json()
        log = document["paths"][f"/v1/sites/{{site}}/subjects/{{subject}}/logs/{LOG}"]["post"]
        assert log["x-versions"] == {
            "1.0": {"$ref": "#/components/schemas/ConcomitantMedicationForm"},
            "2.0": {"$ref": "#/components/schemas/ConcomitantMedicationForm_2_0"},
        }
        assert log["requestBody"]["content"]["application/json"]["schema"] == log["x-versions"]["1.0"]
        schemas = document["components"]["schemas"]
        later = schemas["ConcomitantMedicationForm_2_0"]
        assert "batch" in later["required"] and "batch" not in schemas["ConcomitantMedicationForm"]["properties"]
        assert later["properties"]["batch"]["x-label"] == {"en": "Batch number", "zh": "批号"}
        assert later["title"] == "ConcomitantMedicationForm_2_0", "a model of its own in a generated client"
        questionnaire = document["paths"][
            f"/v1/sites/{{site}}/subjects/{{subject}}/visits/{{visit}}/forms/{QUESTIONNAIRE}"
        ]
        assert list(questionnaire["post"]["x-versions"]) == ["2.0"]

        # The eve: version 1.0 is in force at NFH; the batch is not one of its items, the questionnaire not a form.
        eve = MEDICATION | {"start_date": str(EVE)}
        refused = await post(http, f"logs/{LOG}", eve | {"batch": "B-17"})
        assert refused.status_code == 422 and refused.json()["field"] == "body.batch", refused.text
        assert (await post(http, f"logs/{LOG}", eve)).status_code == 201
        early = await post(http, f"visits/M1/forms/{QUESTIONNAIRE}", SYMPTOMS | {"assessed_on": str(EVE)})
        assert early.status_code == 404 and "1.0" in early.json()["detail"], early.text
        # ... and the web app offers the forms as 1.0 declares them.
        pages, page_request = web_pages(http)
        session = Session(bearer, time.time() + 3600, "inv-01", "Investigator", "investigator", "NFH", None, "-")
        title, questions = await entry_form(pages, page_request, session, f"record_{LOG.replace('-', '_')}")
        assert title == "合并用药" and "批号" not in questions, (title, questions)
        assert "record_scalp_symptoms" not in await pages.casebook_forms(page_request, pages.protocol)

        # NFH's day: 2.0 is in force there; the batch is required, and the questionnaire taken.
        clock.now = at(NFH_DAY)
        day = MEDICATION | {"start_date": str(NFH_DAY)}
        missing = await post(http, f"logs/{LOG}", day)
        assert missing.status_code == 422 and missing.json()["field"] == "body.batch", missing.text
        assert missing.json()["rule"] == "missing"
        taken = await post(http, f"logs/{LOG}", day | {"batch": "B-17"})
        assert taken.status_code == 201, taken.text
        symptoms = SYMPTOMS | {"assessed_on": str(NFH_DAY)}
        waiting = await post(http, f"visits/M1/forms/{QUESTIONNAIRE}", symptoms)
        assert waiting.status_code == 409 and waiting.json()["rule"] == "consent.current_version", waiting.text
        revised = {"consent_form_version": "2.0", "signed_on": str(NFH_DAY), "obtained_by": "inv-01"}
        assert (await post(http, "consent", revised | {"signed_by_subject": True})).status_code == 201
        answered = await post(http, f"visits/M1/forms/{QUESTIONNAIRE}", symptoms)
        assert answered.status_code == 201, answered.text
        # The web app, unrestarted, offers both as 2.0 declares them, in its words.
        title, questions = await entry_form(pages, page_request, session, f"record_{LOG.replace('-', '_')}")
        assert "批号" in questions, questions
        title, questions = await entry_form(pages, page_request, session, "record_scalp_symptoms")
        assert (title, questions[:2]) == ("头皮症状", ["评估日期", "瘙痒"])
        assert pages.form_title(f"{QUESTIONNAIRE}-M1", "zh") == "头皮症状 M1"

        # The exports hold every version's forms and items, whichever version each record was entered under.
        last = (await nc.jetstream().stream_info(EVENTS_STREAM)).state.last_seq
        pool = await build_read_models(nc, database_url, PROTOCOL, last)
        try:
            async with pool.acquire() as conn:
                files = await export_files(conn, PROTOCOL, settings.dictionaries(), as_of=at(NFH_DAY))
        finally:
            await pool.close()
        statistician = issue_token(
            {"t": TOKEN_KEY}, issuer=settings.token_issuer, role=Role.STATISTICIAN, site=None, hours=1
        )
        served = await http.get("/v1/reports/exports/QS.csv", headers={"Authorization": f"Bearer {statistician}"})
        assert served.status_code == 200 and served.text == files["qs.csv"], served.text
    answers = list(csv.DictReader(io.StringIO(files["qs.csv"])))
    assert [(q["USUBJID"][-7:], q["QSTESTCD"], q["QSORRES"]) for q in answers][:2] == [
        ("NFH-101", "ASSESSED", str(NFH_DAY)),
        ("NFH-101", "ITCH", "2"),
    ], answers
    batches = [q for q in csv.DictReader(io.StringIO(files["suppcm.csv"])) if q["QNAM"] == "CMBATCH"]
    assert [b["QVAL"] for b in batches] == ["B-17"]
    medications = list(csv.DictReader(io.StringIO(files["cm.csv"])))
    assert len(medications) == 2, "the entry of 1.0 and the entry of 2.0"
    assert "QS" in json.loads(files["define.json"]) and "CMBATCH" in files["define.json"]
    odm = files["odm.xml"].encode()
    assert odm_check.findings(odm) == []
    root, ns = ET.fromstring(odm), {"odm": odm_check.NS}
    entered = {
        c.get("MetaDataVersionOID"): sorted(f.get("FormOID", "") for f in c.iterfind(".//odm:FormData", ns))
        for c in root.iterfind("odm:ClinicalData", ns)
    }
    # The subject stands under 1.0 (screened before it); the entry and the questionnaire entered under 2.0 are there.
    assert entered["MDV.2.0"] == ["F.CONCOMITANT_MEDICATION", "F.SCALP_SYMPTOMS"], entered
    assert "F.CONCOMITANT_MEDICATION" in entered["MDV.1.0"], entered
    batch = root.findall(".//odm:ItemData[@ItemOID='IT.CONCOMITANT_MEDICATION.BATCH']", ns)
    assert [b.get("Value") for b in batch] == ["B-17"]

    recorded = [
        (e.data.form, e.envelope.protocolversion, "batch" in e.data.answers)
        for e in (await store.load(subject_history("NFH", "NFH-101"))).events
        if isinstance(e.data, FormRecorded)
    ]
    assert recorded == [(LOG, "1.0", False), (LOG, "2.0", True), (QUESTIONNAIRE, "2.0", False)]
