"""Scalp photographs through the gateway: kept without their metadata and named by the hash of what is kept, read
back only as recorded for the subject, every read audited; a file too large, not an image or a decompression bomb
is refused with 4xx and nothing is recorded; the image never reaches a log."""

import hashlib
import io
import xml.etree.ElementTree as ET
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
import pytest
from PIL import Image
from playwright.async_api import Browser

from services.gateway.auth import Role
from shared.contracts.events import ScalpPhotographRecorded
from shared.contracts.protocol import ProtocolDefinition
from shared.readmodels.catalogue import ReadModel
from shared.runtime.eventstore import EventStore, subject_history
from shared.runtime.projections import wait_for_checkpoint
from tests import odm_check
from tests.conftest import SubjectIds
from tests.e2e.api import System, headers, new_key, token
from tests.e2e.test_visits import TARGET_DAYS, assessments, randomized_days_ago, surgery
from tests.e2e.test_web import signed_in

pytestmark = pytest.mark.e2e

MARKER = "SUBJECT-HOME-ADDRESS-7F3A"  # metadata a phone might write: must not survive, nor reach a log


def photograph_with_gps() -> bytes:
    image = Image.new("RGB", (640, 480), (150, 110, 90))
    exif = Image.Exif()
    exif[0x010E] = MARKER  # ImageDescription
    exif[0x8825] = {1: "N", 2: (23.0, 11.0, 2.0), 3: "E", 4: (113.0, 19.0, 40.0)}  # GPSInfo: Guangzhou
    out = io.BytesIO()
    image.save(out, format="JPEG", exif=exif.tobytes())
    return out.getvalue()


async def photographed(
    client: httpx.AsyncClient,
    store: EventStore,
    subject_ids: SubjectIds,
    protocol: ProtocolDefinition,
    read_pool: asyncpg.Pool,
    *,
    arm: str,
    visit: str,
    view: str = "recipient_area",
) -> tuple[str, str, httpx.Response]:
    """A subject operated on day 5 after its randomization and seen at `visit` on its target day (the investigator's
    records; FG_HT with the fat graft), with a photograph taken at that visit (the coordinator's); the read models
    through it. Answers the site, the subject and the photograph's upload."""
    site, subject, randomized_on = await randomized_days_ago(store, subject_ids, protocol, TARGET_DAYS[visit] + 20, arm)
    base = f"/v1/sites/{site}/subjects/{subject}"
    investigator = token(Role.INVESTIGATOR, site)
    day0 = randomized_on + timedelta(days=5)
    for path, body in (
        ("procedures", surgery(day0, fat_graft=arm == "FG_HT")),
        (f"visits/{visit}", assessments(day0 + timedelta(days=TARGET_DAYS[visit]))),
    ):
        done = await client.post(f"{base}/{path}", json=body, headers=headers(investigator, new_key()))
        assert done.status_code == 201, done.text
    jpeg = headers(token(Role.SITE_COORDINATOR, site), new_key()) | {"Content-Type": "image/jpeg"}
    taken = await client.post(f"{base}/visits/{visit}/photographs/{view}", content=photograph_with_gps(), headers=jpeg)
    assert taken.status_code == 201, taken.text
    await wait_for_checkpoint(read_pool, ReadModel.VISITS, taken.json()["stream_sequence"])
    return site, subject, taken


def decompression_bomb() -> bytes:
    """A small PNG that decodes to 100 megapixels (one bit each, all white: it compresses to almost nothing)."""
    out = io.BytesIO()
    Image.new("1", (10_000, 10_000), 1).save(out, format="PNG", optimize=True)
    return out.getvalue()


# The width an image shows at once it has loaded (a thumbnail loads lazily, after the page: wait for it).
LOADED_WIDTH = """img => img.complete && img.naturalWidth ? img.naturalWidth
    : new Promise(done => img.addEventListener('load', () => done(img.naturalWidth), {once: true}))"""


def upload(base: str, visit: str, view: str) -> str:
    return f"{base}/visits/{visit}/photographs/{view}"


async def test_a_photograph_is_kept_without_its_gps_named_by_its_hash_and_every_read_audited(
    client: httpx.AsyncClient,
    store: EventStore,
    subject_ids: SubjectIds,
    protocol: ProtocolDefinition,
    read_pool: asyncpg.Pool,
    system: System,
) -> None:
    site, subject, randomized_on = await randomized_days_ago(store, subject_ids, protocol, 40, "HT")
    base, bearer = f"/v1/sites/{site}/subjects/{subject}", token(Role.SITE_COORDINATOR, site)
    operated = await client.post(
        f"{base}/procedures", json=surgery(randomized_on + timedelta(days=5), fat_graft=False),
        headers=headers(token(Role.INVESTIGATOR, site), new_key()),
    )  # fmt: skip
    assert operated.status_code == 201, operated.text
    original = photograph_with_gps()
    assert MARKER.encode() in original

    taken = await client.post(
        upload(base, "M1", "recipient_area"),
        content=original,
        headers=headers(bearer, new_key()) | {"Content-Type": "image/jpeg"},
    )
    assert taken.status_code == 201, taken.text
    sha256 = taken.json()["sha256"]
    assert (taken.json()["width"], taken.json()["height"]) == (640, 480)
    history = (await store.load(subject_history(site, subject))).events
    [fact] = [e.data for e in history if isinstance(e.data, ScalpPhotographRecorded)]
    assert (fact.visit, fact.view, fact.sha256) == ("M1", "recipient_area", sha256)

    await wait_for_checkpoint(read_pool, ReadModel.VISITS, taken.json()["stream_sequence"])
    monitor = token(Role.MONITOR)
    kept = await client.get(f"{base}/photographs/{sha256}", headers=headers(monitor))
    assert kept.status_code == 200 and kept.headers["content-type"] == "image/jpeg", kept.text
    assert hashlib.sha256(kept.content).hexdigest() == sha256, "the hash recorded is the hash of what is kept"
    assert MARKER.encode() not in kept.content
    with Image.open(io.BytesIO(kept.content)) as image:
        assert not image.getexif() and image.getexif().get_ifd(0x8825) == {}, "no EXIF, no GPS"
    small = await client.get(f"{base}/photographs/{sha256}", params={"thumbnail": "true"}, headers=headers(monitor))
    assert small.status_code == 200 and len(small.content) < len(kept.content)
    with Image.open(io.BytesIO(small.content)) as thumbnail:
        assert max(thumbnail.size) <= 320

    reads = await read_pool.fetch(
        "SELECT actor, role, thumbnail FROM photograph_reads WHERE subject_id = $1 ORDER BY read_id", subject
    )
    assert [(r["role"], r["thumbnail"]) for r in reads] == [("monitor", False), ("monitor", True)]

    again = await client.post(
        upload(base, "M1", "vertex"),
        content=original,
        headers=headers(bearer, new_key()) | {"Content-Type": "image/jpeg"},
    )
    assert again.status_code == 409 and again.json()["rule"] == "photograph.once", again.text
    other = await subject_ids.fresh(site)
    elsewhere = await client.get(f"/v1/sites/{site}/subjects/{other[1]}/photographs/{sha256}", headers=headers(monitor))
    assert elsewhere.status_code == 404, "a photograph is read only as the subject's it was recorded for"

    # The ODM export refers to it by its hash, at its visit, and still validates.
    exported = await client.get("/v1/reports/exports/odm.xml", headers=headers(token(Role.DATA_MANAGER)))
    assert exported.status_code == 200 and odm_check.findings(exported.content) == []
    root = ET.fromstring(exported.content)
    ns = {"odm": odm_check.NS}
    [subject_data] = [s for s in root.iterfind(".//odm:SubjectData", ns) if s.get("SubjectKey") == subject]
    [group] = subject_data.iterfind(".//odm:StudyEventData[@StudyEventOID='SE.M1']//odm:ItemGroupData", ns)
    assert group.get("ItemGroupOID") == "IG.PHOTOGRAPH" and group.get("ItemGroupRepeatKey") == sha256
    assert {i.get("Value") for i in group.iterfind("odm:ItemData", ns)} >= {sha256, "recipient_area"}

    assert system.processes.log_dir is not None
    for log in system.processes.log_dir.glob("*.log"):
        assert MARKER not in log.read_text(errors="replace"), f"the photograph's metadata reached {log.name}"


@pytest.mark.parametrize(
    ("body", "media_type", "status", "problem"),
    [
        (b"\xff\xd8\xff" + b"\0" * (30 * 1024 * 1024), "image/jpeg", 413, "payload-too-large"),
        (b"Dear doctor, the photographs follow.\n", "image/jpeg", 422, "not-an-image"),
        (photograph_with_gps(), "image/png", 422, "not-an-image"),  # a JPEG said to be a PNG
        (photograph_with_gps(), "image/gif", 415, "unsupported-media-type"),
        (b"Dear doctor, the photographs follow.\n", "application/octet-stream", 422, "not-an-image"),
        (decompression_bomb(), "image/png", 422, "decompression-bomb"),
    ],
    ids=["30 MB", "text named .jpg", "a JPEG sent as PNG", "a GIF", "text as bytes", "a decompression bomb"],
)
async def test_what_is_no_photograph_is_refused_with_4xx_and_nothing_is_recorded(
    client: httpx.AsyncClient,
    store: EventStore,
    subject_ids: SubjectIds,
    protocol: ProtocolDefinition,
    body: bytes,
    media_type: str,
    status: int,
    problem: str,
) -> None:
    site, subject = await subject_ids.fresh()  # refused before any service is asked: nobody need be enrolled
    base = f"/v1/sites/{site}/subjects/{subject}"
    refused = await client.post(
        upload(base, "D0", "frontal"),
        content=body,
        headers=headers(token(Role.SITE_COORDINATOR, site), new_key()) | {"Content-Type": media_type},
        timeout=60,
    )
    assert refused.status_code == status, refused.text
    assert refused.json()["type"].endswith(problem), refused.text
    history = (await store.load(subject_history(site, subject))).events
    assert not [e for e in history if isinstance(e.data, ScalpPhotographRecorded)]


@pytest.mark.parametrize(
    ("language", "refusal", "too_large", "view"),
    [
        ("zh-CN", "该文件不是可读取的JPEG或PNG图像。", "文件过大", "受区特写（用于计数）"),
        ("en-GB", "not a readable", "too large", "Recipient area close-up (for counting)"),
    ],
)
async def test_a_coordinator_uploads_a_photograph_in_the_web_app_and_sees_its_thumbnail(
    browser: Browser,
    system: System,
    store: EventStore,
    subject_ids: SubjectIds,
    protocol: ProtocolDefinition,
    tmp_path: Path,
    language: str,
    refusal: str,
    too_large: str,
    view: str,
) -> None:
    site, subject, _ = await randomized_days_ago(store, subject_ids, protocol, 10, "FG_HT")
    (tmp_path / "letter.jpg").write_text("Dear doctor, the photographs follow.")
    (tmp_path / "scalp.jpg").write_bytes(photograph_with_gps())
    page = await signed_in(browser, system, f"site-coordinator.{site.lower()}", language=language)
    casebook = f"{system.web_url}/sites/{site}/subjects/{subject}"
    await page.goto(casebook)
    form = page.locator("#upload-photograph")
    await form.locator("[name=photograph]").set_input_files(tmp_path / "letter.jpg")
    async with page.expect_navigation():
        await form.locator("button[type=submit]").click()
    assert refusal in await page.inner_text("main")
    await page.goto(casebook)
    (tmp_path / "huge.jpg").write_bytes(b"\xff\xd8\xff" + bytes(21 * 1024 * 1024))
    form = page.locator("#upload-photograph")
    await form.locator("[name=photograph]").set_input_files(tmp_path / "huge.jpg")
    async with page.expect_navigation():
        await form.locator("button[type=submit]").click()
    assert too_large in await page.inner_text("main")
    await page.goto(casebook)
    form = page.locator("#upload-photograph")
    await form.locator("[name=view]").select_option("recipient_area")
    await form.locator("[name=photograph]").set_input_files(tmp_path / "scalp.jpg")
    async with page.expect_navigation():
        await form.locator("button[type=submit]").click()
    await page.goto(casebook)
    thumbnail = page.locator("#photographs figure[data-visit='D0'] img")
    await thumbnail.wait_for()
    assert await thumbnail.evaluate(LOADED_WIDTH) == 320
    assert await thumbnail.get_attribute("alt") == f"{view} · D0"
    await page.context.close()


async def test_a_monitor_sees_a_visits_photographs_beside_its_values_to_verify_them(
    browser: Browser,
    system: System,
    client: httpx.AsyncClient,
    store: EventStore,
    subject_ids: SubjectIds,
    protocol: ProtocolDefinition,
    read_pool: asyncpg.Pool,
) -> None:
    site, subject, _ = await photographed(client, store, subject_ids, protocol, read_pool, arm="HT", visit="M1")
    page = await signed_in(browser, system, "monitor")
    await page.goto(f"{system.web_url}/sites/{site}/subjects/{subject}/forms/visit-M1")
    beside = page.locator("#source-photographs img")
    await beside.wait_for()
    assert await beside.evaluate(LOADED_WIDTH) == 320
    assert await beside.get_attribute("alt") == "Recipient area close-up (for counting)"
    await page.goto(f"{system.web_url}/sites/{site}/subjects/{subject}/forms/procedure")
    assert await page.locator("#source-photographs").count() == 0, "a visit's own photographs, on its record only"
    await page.context.close()
