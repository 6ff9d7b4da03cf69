"""The report page in a real browser (Debian's chromium, driven by Playwright): the primary-endpoint table and
every picture render, and a screenshot of the page is kept with the test's files."""

import shutil
from datetime import timedelta
from pathlib import Path

import asyncpg
import httpx
import matplotlib.image
import numpy as np
import pytest
from playwright.async_api import async_playwright

from services.gateway.auth import Role
from shared.contracts.protocol import ProtocolDefinition
from shared.readmodels.catalogue import ReadModel
from shared.runtime.eventstore import EventStore
from shared.runtime.projections import wait_for_read_models
from tests.conftest import SubjectIds
from tests.e2e.api import System, headers, new_key, token
from tests.e2e.test_visits import assessments, randomized_days_ago, surgery

pytestmark = pytest.mark.e2e


async def followed_to_m6(
    client: httpx.AsyncClient,
    store: EventStore,
    subject_ids: SubjectIds,
    protocol: ProtocolDefinition,
    arm: str,
    n: int,
) -> int:
    """A subject operated 195 days ago, every visit up to M6 done in its window; returns the last sequence."""
    site, subject, randomized_on = await randomized_days_ago(store, subject_ids, protocol, 200, arm)
    bearer = token(Role.INVESTIGATOR, site)
    base = f"/v1/sites/{site}/subjects/{subject}"
    day0 = randomized_on + timedelta(days=5)
    response = await client.post(
        f"{base}/procedures", json=surgery(day0, fat_graft=arm == "FG_HT"), headers=headers(bearer, new_key())
    )
    assert response.status_code == 201, response.text
    for code, day in (("W1", 7), ("M1", 30), ("M3", 90), ("M6", 180)):
        form = assessments(day0 + timedelta(days=day)) | {
            "grafts_surviving": 900 + 40 * n + (150 if arm == "FG_HT" else 0)
        }
        response = await client.post(f"{base}/visits/{code}", json=form, headers=headers(bearer, new_key()))
        assert response.status_code == 201, response.text
    return int(response.json()["stream_sequence"])


async def test_the_report_page_shows_the_primary_endpoint_and_every_picture_in_a_browser(
    system: System,
    client: httpx.AsyncClient,
    store: EventStore,
    subject_ids: SubjectIds,
    protocol: ProtocolDefinition,
    read_pool: asyncpg.Pool,
    tmp_path: Path,
) -> None:
    last = 0
    for n in range(3):
        for arm in ("FG_HT", "HT"):
            last = max(last, await followed_to_m6(client, store, subject_ids, protocol, arm, n))
    # Every read model the report reads (randomizations, visits, data management) has the record through them.
    await wait_for_read_models(read_pool, list(ReadModel), last, timeout=60)
    reader = headers(token(Role.STATISTICIAN))
    primary = (await client.get("/v1/reports/primary-endpoint.json", headers=reader)).json()
    assert all(arm["n"] >= 3 for arm in primary["analyses"][0]["arms"]), primary
    chromium = shutil.which("chromium")
    assert chromium, "chromium is installed by `make test` (apt-get install -y chromium)"
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            context = await browser.new_context(
                extra_http_headers={"Authorization": f"Bearer {token(Role.STATISTICIAN)}"},
                viewport={"width": 1200, "height": 900},
            )
            page = await context.new_page()
            response = await page.goto(f"{system.url}/v1/reports", wait_until="load")
            assert response is not None and response.status == 200
            captions = await page.eval_on_selector_all("table caption", "all => all.map(c => c.textContent)")
            assert captions == [
                "Follicle survival (%) at M6",
                "Open queries by site, form and days open",
                "Source data verification by site",
            ]
            verification = await page.inner_text("table:nth-of-type(3)")
            assert "changed since verification" in verification and "\nnone" not in verification, verification
            assert "Welch t:" in await page.inner_text("table") and "Hodges-Lehmann:" in await page.inner_text("table")
            # Every picture decoded by the browser: an SVG that failed to load or parse has no width.
            widths = await page.eval_on_selector_all("img", "images => images.map(i => i.naturalWidth)")
            assert len(widths) == 3 and all(w > 0 for w in widths), widths
            shot = tmp_path / "report-page.png"
            await page.screenshot(path=str(shot), full_page=True)
        finally:
            await browser.close()
    pixels = matplotlib.image.imread(shot)
    assert pixels.shape[0] > 900, "the full page, pictures included, is taller than one screen"
    drawn = np.mean(pixels[..., :3] < 0.9)  # not blank: a real share of the page is ink
    assert drawn > 0.01, drawn
