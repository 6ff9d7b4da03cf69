"""The web app in a real browser (Debian's chromium driven by Playwright), signed in at the real identity
provider: a coordinator and an investigator take a subject from consent to randomization, the server's
validation messages stand next to their fields, and a Chinese-language session shows translated labels."""

import asyncio
import os
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from playwright.async_api import Browser, Page

from devstack.examples import CONSENT, ELIGIBLE, serious_adverse_event
from devstack.identity import sign_in_at_provider
from shared.contracts.access import Role
from shared.contracts.protocol import ProtocolDefinition
from shared.runtime.eventstore import EventStore
from shared.runtime.projections import wait_for_checkpoint
from tests.conftest import SubjectIds
from tests.e2e.api import REAUTHENTICATION_SECONDS, System, consented, headers, new_key, token
from tests.e2e.test_visits import assessments, randomized_days_ago, surgery

pytestmark = pytest.mark.e2e


async def signed_in(browser: Browser, system: System, login: str, *, language: str = "en-GB") -> Page:
    """A browser of its own, signed in at the provider's page as a person would."""
    context = await browser.new_context(locale=language, viewport={"width": 1024, "height": 1366})
    page = await context.new_page()
    await page.goto(system.web_url)
    await sign_in_at_provider(page, login)
    await page.wait_for_url(f"{system.web_url}/**")
    return page


async def shot(page: Page, name: str) -> None:
    """`make screenshots`: the page as the person sees it, for the README (SCREENSHOTS_DIR names the folder)."""
    folder = os.environ.get("SCREENSHOTS_DIR")
    if folder:
        await page.screenshot(path=str(Path(folder) / f"{name}.png"), full_page=False)


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


async def submit(page: Page, action_suffix: str) -> None:
    """Submit the form posting to this action, and wait for the page the app answers with."""
    async with page.expect_navigation():
        await page.click(f"form[action$='{action_suffix}'] button[type=submit]")


async def test_site_staff_take_a_subject_from_consent_to_m1_with_a_signature_and_a_query_answered(
    browser: Browser, system: System, subject_ids: SubjectIds
) -> None:
    _, subject = await subject_ids.fresh("NFH")
    casebook = f"{system.web_url}/sites/NFH/subjects/{subject}"
    today = system.today("NFH")
    coordinator = await signed_in(browser, system, "site-coordinator.nfh")
    assert coordinator.url.endswith("/sites/NFH/subjects")
    await coordinator.fill("input[name=subject_id]", subject)
    await fill(coordinator, CONSENT | {"signed_on": today.isoformat()})
    await submit(coordinator, "/sites/NFH/subjects")
    assert "Consented" in await coordinator.inner_text("h1")

    # The investigator screens (EX11 is the investigator's judgement); a wrong weight is refused next to its field.
    investigator = await signed_in(browser, system, "investigator.nfh")
    await investigator.goto(casebook)
    screening = ELIGIBLE | {"screening_date": today.isoformat()}
    await fill(investigator, screening | {"weight_kg": "fifty-five"})
    await submit(investigator, "screen_subject")
    assert await investigator.get_attribute("#f-weight_kg", "aria-invalid") == "true"
    assert await investigator.locator("#f-weight_kg-error").is_visible()
    await fill(investigator, {"weight_kg": screening["weight_kg"]})
    await submit(investigator, "screen_subject")
    assert await investigator.inner_text("#eligible") == "Yes"
    assert "EX11" in await investigator.inner_text("table")
    # An exclusion not met is a pass for the subject, an inclusion met too: both read (and are coloured) as such.
    assert await investigator.inner_text("tr:has-text('EX05 —') td[data-outcome]") == "Passes"
    assert await investigator.get_attribute("tr:has-text('IN06 —') td[data-outcome='met']", "class") == "passes"
    await shot(investigator, "casebook")

    # Signing asks for a fresh sign-in at the provider first (this one has aged past half the protocol's window),
    # then states its meaning.
    await asyncio.sleep(REAUTHENTICATION_SECONDS / 2 + 1)
    await investigator.click("text=Sign eligibility")
    await sign_in_at_provider(investigator, "investigator.nfh", "signing again")
    await investigator.wait_for_selector("#meaning")
    assert "I confirm eligibility" in await investigator.inner_text("#meaning")
    async with investigator.expect_navigation():
        await investigator.click("form[action$='/sign/eligibility'] button[type=submit]")
    assert "(valid)" in await investigator.inner_text("#signatures")

    # The coordinator randomizes, with a confirmation step; the arm is shown after.
    await coordinator.goto(casebook)
    await coordinator.click("#randomize")
    await coordinator.wait_for_url(f"{casebook}/randomization")
    async with coordinator.expect_navigation():
        await coordinator.click("button:has-text('Confirm')")
    arm = (await coordinator.inner_text("#allocation")).split(":")[1].split("·")[0].strip()
    assert arm in ("FG_HT", "HT")

    # Surgery, then the visits the schedule names next: W1, then M1.
    await fill(coordinator, surgery(today, fat_graft=arm == "FG_HT"))
    await submit(coordinator, "record_procedure")
    for visit in ("W1", "M1"):
        assert (await coordinator.inner_text("form[action$='record_visit'] h2")).endswith(visit)
        await fill(coordinator, assessments(today))
        await submit(coordinator, "record_visit")
        # Seen on the day of surgery, outside the visit's window: questioned first, then saved as the source has it.
        assert "outside its window" in await coordinator.inner_text("form[action$='record_visit'] .advice")
        await coordinator.check("form[action$='record_visit'] input[name=checked]")
        await submit(coordinator, "record_visit")
    assert "Completed" in await coordinator.inner_text("table:has(caption:has-text('Visit schedule'))")

    # A monitor questions the screening weight; the coordinator answers.
    monitor = await signed_in(browser, system, "monitor")
    await monitor.goto(casebook)
    # The monitor reads the screening's values by their questions, units beside them, before questioning one.
    await monitor.click("tr[data-form='screening'] td a:has-text('Screening')")
    values = await monitor.inner_text("#values")
    assert "Weight" in values and f"{screening['weight_kg']} kg" in values and "Female" in values
    await monitor.goto(casebook)
    # The item is picked by its question, never typed as its name.
    assert "Weight" in await monitor.inner_text("#query-target option[value='screening|weight_kg']")
    await monitor.select_option("#query-target", "screening|weight_kg")
    await monitor.fill("#query-text", "The source says 57 kg")
    await submit(monitor, "/queries")
    await coordinator.goto(casebook)
    await coordinator.fill("#queries input[name=text]", "Checked: 55 kg in the source")
    await submit(coordinator, "/answer")
    assert await coordinator.get_attribute("#queries article", "data-state") == "answered"

    # The coordinator corrects the weight with a reason; EX11 stays the investigator's, and the signature over the
    # screening is invalidated by the change.
    await coordinator.click("tr[data-form='screening'] a:has-text('Correct')")
    assert await coordinator.locator("[name='investigator_judges_unsuitable']").count() == 0
    assert await coordinator.input_value("#f-weight_kg") == str(screening["weight_kg"])
    await fill(coordinator, {"weight_kg": "57", "reason": "weighed again: 57 kg"})
    await submit(coordinator, "/forms/screening/correction")
    assert await coordinator.inner_text("#eligible") == "Yes"
    assert "invalidated by a later change" in await coordinator.inner_text("#signatures")

    # A correction is questioned by the protocol's checks as an entry is: M1 stays outside its window.
    await coordinator.goto(f"{casebook}/forms/visit-M1/correction")
    await fill(coordinator, {"hair_density_per_cm2": "42.0", "reason": "read again from the photograph"})
    await submit(coordinator, "/forms/visit-M1/correction")
    assert "outside its window" in await coordinator.inner_text("form[action$='/correction'] .advice")
    await coordinator.check("form[action$='/correction'] input[name=checked]")
    await submit(coordinator, "/forms/visit-M1/correction")
    await coordinator.goto(f"{casebook}/forms/visit-M1")
    assert "42.0" in await coordinator.inner_text("#item-hair_density_per_cm2 .value")
    assert "read again from the photograph" in await coordinator.inner_text("#item-hair_density_per_cm2 .history")


async def test_a_chinese_browser_gets_chinese_labels_and_can_switch_to_english(
    browser: Browser, system: System
) -> None:
    page = await signed_in(browser, system, "site-coordinator.gz2", language="zh-CN")
    assert await page.get_attribute("html", "lang") == "zh-Hans"
    assert "受试者" in await page.inner_text("h1")
    assert await page.inner_text("label[for='f-signed_on']") == "签署日期 *"
    assert "研究协调员" in await page.inner_text("header"), "the role in the page's language"
    assert "staff code" not in await page.inner_text("main"), "no English help on a Chinese page"
    await page.click("header a[lang='en']")
    await page.wait_for_selector("html[lang='en']")
    assert "Subjects" in await page.inner_text("h1")


async def test_the_safety_officer_sees_a_new_sae_appear_without_reloading_and_acknowledges_it(
    browser: Browser, system: System, client: httpx.AsyncClient, subject_ids: SubjectIds
) -> None:
    safety = await signed_in(browser, system, "safety-officer")
    assert safety.url.endswith("/safety")
    # The stream opens after the page is drawn: it has the rows fetched again at once, whatever changed between.
    told_at_once = """() => new Promise(done => {
        const events = new EventSource("/safety/events");
        events.addEventListener("alerts", () => { events.close(); done(true); });
        setTimeout(() => { events.close(); done(false); }, 3000);
    })"""
    assert await safety.evaluate(told_at_once)
    site, subject = await subject_ids.fresh("SZ3")
    investigator = token(Role.INVESTIGATOR, site)
    base = f"/v1/sites/{site}/subjects/{subject}"
    assert (await client.post(f"{base}/consent", json=CONSENT, headers=headers(investigator, new_key()))).is_success
    reported = await client.post(
        f"{base}/adverse-events", json=serious_adverse_event(), headers=headers(investigator, new_key())
    )
    assert reported.status_code == 201 and reported.json()["serious"], reported.text
    row = safety.locator(f"tr[data-subject='{subject}']")
    await row.wait_for()  # pushed by the server: the page was not reloaded
    await shot(safety, "safety-inbox")
    async with safety.expect_navigation():
        await row.locator("button[type=submit]").click()
    # The consequence is said first; confirmed, the alert leaves the open ones for the acknowledged, with who.
    assert subject in await safety.inner_text(".consequence")
    async with safety.expect_navigation():
        await safety.click("#confirm-step button[type=submit]")
    assert await safety.locator(f"#alert-rows tr[data-subject='{subject}']").count() == 0
    assert "safety-officer" in await safety.inner_text(f"#acknowledged tr:has-text('{subject}')")


async def test_a_monitor_finds_forms_to_verify_and_a_data_manager_the_reports_pictures_and_exports(
    browser: Browser, system: System, client: httpx.AsyncClient, subject_ids: SubjectIds, read_pool: asyncpg.Pool
) -> None:
    site, subject = await subject_ids.fresh("GZ2")
    consented = await client.post(
        f"/v1/sites/{site}/subjects/{subject}/consent",
        json=CONSENT,
        headers=headers(token(Role.INVESTIGATOR, site), new_key()),
    )
    assert consented.status_code == 201, consented.text
    await wait_for_checkpoint(read_pool, "data_management", consented.json()["stream_sequence"])
    monitor = await signed_in(browser, system, "monitor")
    assert monitor.url.endswith("/worklist")
    # Oldest first (a long list in a long-running trial): at least this consent waits somewhere in it.
    assert await monitor.locator("#to-verify tbody a").count() > 0
    async with monitor.expect_navigation():
        await monitor.click("nav a:has-text('SZ3')")
    assert (await monitor.inner_text("h1")).endswith("SZ3")
    shown = await monitor.eval_on_selector_all("#to-verify tr:has(a) td:first-child", "c => c.map(x => x.textContent)")
    assert set(shown) <= {"SZ3"}, shown
    await monitor.goto(f"{system.web_url}/sites/{site}/subjects/{subject}")
    async with monitor.expect_navigation():
        await monitor.click("tr[data-form='consent'] button[type=submit]")
    assert await monitor.get_attribute("tr[data-form='consent'] .sdv", "data-sdv") == "verified"
    assert await monitor.inner_text("tr[data-form='consent'] .sdv") == "Verified"
    data_manager = await signed_in(browser, system, "data-manager")
    assert data_manager.url.endswith("/reports")
    await data_manager.wait_for_load_state("networkidle")
    widths = await data_manager.eval_on_selector_all("figure img", "images => images.map(i => i.naturalWidth)")
    assert len(widths) == 3 and all(w > 0 for w in widths), widths
    await shot(data_manager, "reports")
    await data_manager.click("a[href='/reports/page']")
    captions = await data_manager.eval_on_selector_all("table caption", "all => all.map(c => c.textContent)")
    assert "Open queries by site, form and days open" in captions, captions
    await data_manager.go_back()
    async with data_manager.expect_download() as download:
        await data_manager.click("a[href='/reports/exports/DM.csv']")
    saved = await (await download.value).path()
    assert saved is not None and (await asyncio.to_thread(Path(saved).read_text)).startswith("STUDYID")
    # Every query on it closed (none opened): the data manager locks the subject's casebook.
    await data_manager.goto(f"{system.web_url}/sites/{site}/subjects/{subject}")
    async with data_manager.expect_navigation():
        await data_manager.click("#forms form[action$='/casebook/lock'] button")
    assert subject in await data_manager.inner_text(".consequence"), "what a lock does, said before it is done"
    async with data_manager.expect_navigation():
        await data_manager.click("#confirm-step button[type=submit]")
    assert "Locked" in await data_manager.inner_text("#casebook-lock")
    # The JSON reports as tables, each under its title: a table, or the word saying there is nothing yet.
    for report, title in (("adverse-events.json", "Adverse events"), ("signatures.json", "Investigators' signatures")):
        await data_manager.goto(f"{system.web_url}/reports/table/{report}")
        assert (await data_manager.inner_text("h1")).startswith(title), report
        assert await data_manager.locator("main table, main p:has-text('None'), main dl").count() > 0, report


async def test_a_coordinators_calendar_shows_the_visits_due_this_week(
    browser: Browser,
    system: System,
    client: httpx.AsyncClient,
    store: EventStore,
    subject_ids: SubjectIds,
    protocol: ProtocolDefinition,
) -> None:
    site, subject, randomized_on = await randomized_days_ago(store, subject_ids, protocol, 10, "HT")
    operated = await client.post(
        f"/v1/sites/{site}/subjects/{subject}/procedures",
        json=surgery(randomized_on + timedelta(days=2), fat_graft=False),
        headers=headers(token(Role.INVESTIGATOR, site), new_key()),
    )
    assert operated.status_code == 201, operated.text
    coordinator = await signed_in(browser, system, f"site-coordinator.{site.lower()}")
    await coordinator.goto(f"{system.web_url}/sites/{site}/calendar")
    due = await coordinator.inner_text("#due")
    assert subject in due and "W1" in due, due  # day 8 after surgery: W1's window (days 5 to 9) is open
    assert subject not in await coordinator.inner_text("#overdue")
    await coordinator.goto(f"{system.web_url}/sites/{site}/subjects")
    assert "W1 (" in await coordinator.inner_text(f"tr:has(a:has-text('{subject}'))"), "the next visit and its window"


async def test_a_form_speaks_with_the_data_dictionarys_words_units_and_decodes_in_the_pages_language(
    browser: Browser, system: System, client: httpx.AsyncClient, subject_ids: SubjectIds
) -> None:
    site, subject, _ = await consented(client, subject_ids)
    casebook = f"{system.web_url}/sites/{site}/subjects/{subject}"
    for language, height, hint, female in (
        ("zh-CN", "身高 (cm) *", "用于计算BMI", "女"),
        ("en-GB", "Height (cm) *", "For the BMI", "Female"),
    ):
        page = await signed_in(browser, system, f"investigator.{site.lower()}", language=language)
        await page.goto(casebook)
        assert await page.inner_text("label[for='f-height_cm']") == height
        assert hint in await page.inner_text("#f-height_cm-hint")
        assert female in await page.inner_text("#f-sex")
        assert await page.locator("#f-sex option[value='female']").count() == 1, "the code is what is posted"
        if language == "zh-CN":  # a refusal beside its item, in the page's words, from the item's range
            await fill(page, ELIGIBLE | {"screening_date": system.today(site).isoformat(), "height_cm": "0"})
            await submit(page, "screen_subject")
            assert await page.inner_text("#f-height_cm-error") == "请填写100至230cm之间的数字。"
        await page.context.close()
    coordinator = await signed_in(browser, system, f"site-coordinator.{site.lower()}")
    await coordinator.goto(casebook)
    assert await coordinator.locator("#f-investigator_judges_unsuitable").count() == 0, "the investigator's item"
