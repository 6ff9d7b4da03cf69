"""A site's working day in a real browser, each role at its own desk: the coordinator's screening waits for the
investigator's judgement (EX11), which completes it; a subject goes from surgery to completion through the subject
matrix, a visit outside its window questioned before it is saved and confirmed; a monitor queries an item on the
form's view and verifies item by item; the investigator signs the casebook from the subject's page; a data manager
locks it after saying what a lock does."""

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import Browser, Page

from devstack.examples import CONSENT, ELIGIBLE
from devstack.identity import sign_in_at_provider
from shared.contracts.protocol import ProtocolDefinition
from shared.runtime.eventstore import EventStore
from tests.conftest import SubjectIds
from tests.e2e.accessibility import violations
from tests.e2e.api import REAUTHENTICATION_SECONDS, System, allocation, append, consent_on
from tests.e2e.test_visits import assessments, surgery
from tests.e2e.test_web import fill, shot, signed_in, submit

pytestmark = pytest.mark.e2e
SITE = "NFH"


async def cell(page: Page, system: System, subject: str, form: str) -> str:
    """The subject's cell of a form in the site's matrix: its status, after following its link."""
    await page.goto(f"{system.web_url}/sites/{SITE}/matrix")
    found = page.locator(f"tr[data-subject='{subject}'] td[data-form='{form}']")
    status = await found.get_attribute("data-status")
    async with page.expect_navigation():
        await found.locator("a").click()
    return str(status)


async def until_shown(page: Page, selector: str, seconds: float = 15) -> None:
    """What a reaction records after the write (an edit check's query): the page read again until it shows."""
    for _ in range(int(seconds * 2)):
        if await page.locator(selector).count():
            return
        await page.wait_for_timeout(500)
        await page.reload()
    raise AssertionError(f"{selector} never shown on {page.url}")


async def confirm(page: Page) -> None:
    async with page.expect_navigation():
        await page.click("#confirm-step button[type=submit]")


async def test_the_coordinators_screening_waits_for_the_investigators_judgement_which_completes_it(
    browser: Browser, system: System, subject_ids: SubjectIds
) -> None:
    _, subject = await subject_ids.fresh(SITE)
    casebook = f"{system.web_url}/sites/{SITE}/subjects/{subject}"
    today = system.today(SITE).isoformat()
    coordinator = await signed_in(browser, system, "site-coordinator.nfh")
    await coordinator.fill("input[name=subject_id]", subject)
    await fill(coordinator, CONSENT | {"signed_on": today})
    await submit(coordinator, f"/sites/{SITE}/subjects")
    screening = {k: v for k, v in ELIGIBLE.items() if k != "investigator_judges_unsuitable"}
    await fill(coordinator, screening | {"screening_date": today})
    await submit(coordinator, "screen_subject")
    # Complete as far as the coordinator goes: it says it waits for the investigator, and offers no new screening.
    assert "Awaiting the investigator's judgement (EX11)" in await coordinator.inner_text("#next-step")
    assert await coordinator.locator("form[action$='screen_subject']").count() == 0
    assert await coordinator.locator("#randomize").count() == 0
    assert await coordinator.locator("#give-judgement").count() == 0, "the judgement is the investigator's"
    await coordinator.goto(f"{system.web_url}/sites/{SITE}/matrix")
    assert "EX11" in await coordinator.inner_text(f"tr[data-subject='{subject}']")

    investigator = await signed_in(browser, system, "investigator.nfh")
    await investigator.goto(casebook)
    async with investigator.expect_navigation():
        await investigator.click("#give-judgement")
    assert "EX11" in await investigator.input_value("#f-reason"), "the reason says what the correction is"
    assert await investigator.input_value("#f-weight_kg") == str(ELIGIBLE["weight_kg"]), "the coordinator's values"
    await fill(investigator, {"investigator_judges_unsuitable": False})
    await submit(investigator, "/forms/screening/correction")
    assert await investigator.inner_text("#eligible") == "Yes"
    assert "Ready to randomize" in await investigator.inner_text("#next-step")

    await coordinator.goto(casebook)
    async with coordinator.expect_navigation():
        await coordinator.click("#randomize")
    await confirm_randomization(coordinator)
    assert await coordinator.locator("#allocation").count() == 1


async def confirm_randomization(page: Page) -> None:
    async with page.expect_navigation():
        await page.click("button:has-text('Confirm')")


async def test_a_subject_goes_from_surgery_to_a_locked_casebook_through_the_matrix_at_every_desk(
    browser: Browser, system: System, store: EventStore, subject_ids: SubjectIds, protocol: ProtocolDefinition
) -> None:
    _, subject = await subject_ids.fresh(SITE)
    then = datetime.now(UTC) - timedelta(days=400)
    await append(store, SITE, subject, [(consent_on(then.date()), then), (allocation(SITE, "HT"), then)])
    day0 = protocol.local_date(SITE, then) + timedelta(days=1)
    coordinator = await signed_in(browser, system, "site-coordinator.nfh")
    await coordinator.wait_for_timeout(500)  # the read models reach the appended facts
    assert await cell(coordinator, system, subject, "procedure") == "not_started"
    await fill(coordinator, surgery(day0, fat_graft=False))
    await submit(coordinator, "record_procedure")

    # Each visit from its cell; W1 typed five days early is questioned before the save, then confirmed.
    for visit in protocol.schedule.follow_up:
        assert await cell(coordinator, system, subject, f"visit-{visit.code}") == "not_started"
        assert (await coordinator.inner_text("form[action$='record_visit'] h2")).endswith(visit.code)
        early = visit.code == "W1"
        on = day0 + timedelta(days=visit.target_day - (5 if early else 0))
        await fill(coordinator, assessments(on))
        await submit(coordinator, "record_visit")
        if early:
            advice = coordinator.locator("form[action$='record_visit'] .advice")
            assert "outside its window" in await advice.inner_text()
            assert await advice.locator("li[data-check='VISIT_OUT_OF_WINDOW'] a").get_attribute("href") == (
                "#f-visit_date"
            )
            assert await violations(coordinator) == []
            await coordinator.check("form[action$='record_visit'] input[name=checked]")
            await submit(coordinator, "record_visit")
    assert "Completed the study" in await coordinator.inner_text("h1")
    await coordinator.goto(f"{system.web_url}/sites/{SITE}/matrix")
    row = coordinator.locator(f"tr[data-subject='{subject}']")
    w1 = row.locator("td[data-form='visit-W1']")
    assert await w1.get_attribute("data-status") in ("query_open", "out_of_window")
    assert "outside its window" in await w1.inner_text() or await w1.get_attribute("data-status") == "out_of_window"
    await shot(coordinator, "matrix")
    assert await violations(coordinator) == []
    # Filtered as the form asks: by a form's status, by the subject's state.
    await coordinator.select_option("#filter-status", "out_of_window")
    async with coordinator.expect_navigation():
        await coordinator.click("form.filters button")
    assert await coordinator.locator(f"tr[data-subject='{subject}']").count() == 1
    late = await coordinator.locator("tr[data-subject]").evaluate_all(
        "rows => rows.map(r => r.querySelector('td[data-out-of-window]') !== null)"
    )
    assert late and all(late), "only subjects with a visit outside its window"
    await coordinator.goto(f"{system.web_url}/sites/{SITE}/matrix?state=consented")
    assert await coordinator.locator(f"tr[data-subject='{subject}']").count() == 0

    # The monitor questions an item on the form's view and verifies the record item by item.
    monitor = await signed_in(browser, system, "monitor")
    assert await cell(monitor, system, subject, "visit-M1") == "entered"
    item = monitor.locator("#item-grafts_surviving")
    await item.locator("summary").click()
    await item.locator("textarea").fill("The source says 1150 grafts")
    async with monitor.expect_navigation():
        await item.locator("form[action$='/queries'] button").click()
    assert await monitor.locator("#item-grafts_surviving article.query").get_attribute("data-state") == "open"
    for path in ("visit_date", "hair_density_per_cm2"):
        await monitor.check(f"#item-{path} input[name=items]")
    async with monitor.expect_navigation():
        await monitor.click("button[form='verify-items']")
    assert await monitor.locator("#item-visit_date [data-verified]").count() == 1
    assert await monitor.get_attribute("#sdv", "data-sdv") == "not_verified", "two items: the record is not yet"
    for box in await monitor.locator("input[name=items]").all():
        await box.check()
    async with monitor.expect_navigation():
        await monitor.click("button[form='verify-items']")
    assert await monitor.get_attribute("#sdv", "data-sdv") == "verified"

    # The coordinator answers beside the item; the monitor closes it.
    await coordinator.goto(f"{system.web_url}/sites/{SITE}/subjects/{subject}/forms/visit-M1")
    await coordinator.fill("#item-grafts_surviving input[name=text]", "1200 in the source: the count stands")
    async with coordinator.expect_navigation():
        await coordinator.click("#item-grafts_surviving form[action$='/answer'] button")
    await monitor.reload()
    thread = monitor.locator("#item-grafts_surviving article.query")
    assert await thread.get_attribute("data-state") == "answered"
    assert "the count stands" in await thread.inner_text()
    await shot(monitor, "form-view")
    assert await violations(monitor) == []
    await thread.locator("form[action$='/close'] input[name=text]").fill("Agreed")
    async with monitor.expect_navigation():
        await thread.locator("form[action$='/close'] button").click()
    assert await monitor.locator("#item-grafts_surviving article.query").get_attribute("data-state") == "closed"

    # W1's question from the protocol's check: answered by the site, closed by the data manager.
    await coordinator.goto(f"{system.web_url}/sites/{SITE}/subjects/{subject}/forms/visit-W1")
    await until_shown(coordinator, "#item-visit_date article.query")
    await coordinator.fill("#item-visit_date input[name=text]", "The subject came early: the date is right")
    async with coordinator.expect_navigation():
        await coordinator.click("#item-visit_date form[action$='/answer'] button")
    data_manager = await signed_in(browser, system, "data-manager")
    await data_manager.goto(f"{system.web_url}/sites/{SITE}/subjects/{subject}/forms/visit-W1")
    await data_manager.fill("#item-visit_date form[action$='/close'] input[name=text]", "Deviation recorded")
    async with data_manager.expect_navigation():
        await data_manager.click("#item-visit_date form[action$='/close'] button")

    # The investigator signs the casebook from the subject's page, signing in again first when it is needed.
    investigator = await signed_in(browser, system, "investigator.nfh")
    await asyncio.sleep(REAUTHENTICATION_SECONDS / 2 + 1)
    await investigator.goto(f"{system.web_url}/sites/{SITE}/subjects/{subject}")
    await investigator.click("#sign-casebook")
    await sign_in_at_provider(investigator, "investigator.nfh", "signing again")
    await investigator.wait_for_selector("#meaning")
    async with investigator.expect_navigation():
        await investigator.click("form[action$='/sign/casebook'] button[type=submit]")
    assert await investigator.locator("#signatures li[data-kind='casebook'][data-status='valid']").count() == 1
    assert await investigator.locator("#sign-casebook").count() == 0, "signed: not offered again"

    # The data manager locks it, told first what a lock does.
    await data_manager.goto(f"{system.web_url}/sites/{SITE}/subjects/{subject}")
    async with data_manager.expect_navigation():
        await data_manager.click("#forms form[action$='/casebook/lock'] button")
    assert "No form can be entered or corrected" in await data_manager.inner_text(".consequence")
    assert await violations(data_manager) == []
    await confirm(data_manager)
    assert "Locked" in await data_manager.inner_text("#casebook-lock")
    await coordinator.goto(f"{system.web_url}/sites/{SITE}/matrix")
    statuses = await row.locator("td[data-status]").evaluate_all("cells => cells.map(c => c.dataset.status)")
    assert "locked" in statuses and "query_open" not in statuses, statuses
    chinese = await signed_in(browser, system, "site-coordinator.nfh", language="zh-CN")
    await chinese.goto(f"{system.web_url}/sites/{SITE}/matrix")
    assert "已锁定" in await chinese.inner_text(f"tr[data-subject='{subject}']")
    await shot(chinese, "matrix-zh")
    # The audit trail keeps it all, the site's time beside each entry, the lock last for this subject.
    await data_manager.goto(f"{system.web_url}/audit")
    await data_manager.fill("#audit-subject", subject)  # the days left empty: any day
    async with data_manager.expect_navigation():
        await data_manager.click("form.filters button")
    entries = await data_manager.locator("#audit tbody tr").all_inner_texts()
    assert "Casebook locked" in entries[-1] and "(UTC+0800)" in entries[-1], entries[-1]
    assert any("Electronic signature" in e for e in entries)
    assert await violations(data_manager) == []
