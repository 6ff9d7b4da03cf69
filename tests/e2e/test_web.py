"""The web app in a real browser (Debian's chromium driven by Playwright), signed in at the real identity
provider: a coordinator and an investigator take a subject from consent to randomization, the server's
validation messages stand next to their fields, and a Chinese-language session shows translated labels."""

import shutil
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import pytest
from playwright.async_api import Browser, Page, async_playwright

from devstack.examples import CONSENT, ELIGIBLE
from tests.conftest import SubjectIds
from tests.e2e.api import System

pytestmark = pytest.mark.e2e


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    chromium = shutil.which("chromium")
    assert chromium, "chromium is installed by `make test` (apt-get install -y chromium)"
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            yield launched
        finally:
            await launched.close()


async def signed_in(browser: Browser, system: System, login: str, *, language: str = "en-GB") -> Page:
    """A browser of its own, signed in at the provider's page as a person would."""
    context = await browser.new_context(locale=language, viewport={"width": 1024, "height": 1366})
    page = await context.new_page()
    await page.goto(system.web_url)
    await page.fill("input[name=login]", login)
    await page.fill("input[name=password]", "any password will do here")
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{system.web_url}/**")
    return page


async def fill(page: Page, values: dict[str, Any], prefix: str = "") -> None:
    """A form's fields as a person types them: yes / no for booleans, boxes for lists, nested groups."""
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            await fill(page, value, f"{name}.")
        elif isinstance(value, list):
            for option in value:
                await page.check(f"input[name='{name}'][value='{option}']")
        elif isinstance(value, bool):
            await page.select_option(f"[name='{name}']", "true" if value else "false")
        elif await page.locator(f"select[name='{name}']").count():
            await page.select_option(f"select[name='{name}']", str(value))
        else:
            await page.fill(f"[name='{name}']", str(value))


async def test_a_coordinator_and_an_investigator_take_a_subject_from_consent_to_randomization(
    browser: Browser, system: System, subject_ids: SubjectIds
) -> None:
    _, subject = await subject_ids.fresh("NFH")
    coordinator = await signed_in(browser, system, "site-coordinator.nfh")
    assert coordinator.url.endswith("/sites/NFH/subjects")
    await coordinator.fill("input[name=subject_id]", subject)
    await fill(coordinator, CONSENT | {"signed_on": date.today().isoformat()})
    await coordinator.click("form:has(input[name=subject_id]) button[type=submit]")
    await coordinator.wait_for_url(lambda url: f"/sites/NFH/subjects/{subject}?seen=" in url)
    assert "consented" in await coordinator.inner_text("h1")

    # The investigator screens (EX11 is the investigator's judgement); a wrong weight is refused next to its field.
    investigator = await signed_in(browser, system, "investigator.nfh")
    await investigator.goto(f"{system.web_url}/sites/NFH/subjects/{subject}")
    screening = ELIGIBLE | {"screening_date": date.today().isoformat()}
    await fill(investigator, screening | {"weight_kg": "fifty-five"})
    await investigator.click("form[action$='screen_subject'] button[type=submit]")
    weight = investigator.locator("#f-weight_kg")
    assert await weight.get_attribute("aria-invalid") == "true"
    assert await investigator.locator("#f-weight_kg-error").is_visible()
    await fill(investigator, {"weight_kg": screening["weight_kg"]})
    await investigator.click("form[action$='screen_subject'] button[type=submit]")
    await investigator.wait_for_selector("#eligible")
    assert await investigator.inner_text("#eligible") == "Yes"
    criteria = await investigator.inner_text("table")
    assert "IN06" in criteria and "EX11" in criteria

    # The coordinator randomizes, with a confirmation step; the arm is shown after.
    await coordinator.reload()
    await coordinator.click("text=Randomize")
    await coordinator.wait_for_url(f"**/sites/NFH/subjects/{subject}/randomization")
    await coordinator.click("button:has-text('Confirm')")
    await coordinator.wait_for_selector("#allocation")
    allocation = await coordinator.inner_text("#allocation")
    assert "FG_HT" in allocation or "HT" in allocation


async def test_a_chinese_browser_gets_chinese_labels_and_can_switch_to_english(
    browser: Browser, system: System
) -> None:
    page = await signed_in(browser, system, "site-coordinator.gz2", language="zh-CN")
    assert await page.get_attribute("html", "lang") == "zh-Hans"
    assert "受试者" in await page.inner_text("h1")
    assert await page.inner_text("label[for='f-signed_on']") == "签署日期 *"
    await page.click("header a[lang='en']")
    await page.wait_for_selector("html[lang='en']")
    assert "Subjects" in await page.inner_text("h1")
