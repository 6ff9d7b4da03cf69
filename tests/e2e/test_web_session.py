"""A web session ends where it lives: sign-out makes a copied cookie worthless and ends the provider's session too;
a fresh sign-in before a signature must bring back the same person; the SAE stream is the safety team's only."""

import asyncio

import httpx
import pytest
from playwright.async_api import Browser, Page

from devstack.identity import sign_in_at_provider
from tests.conftest import SubjectIds
from tests.e2e.api import REAUTHENTICATION_SECONDS, System, eligible_subject
from tests.e2e.test_web import signed_in

pytestmark = pytest.mark.e2e


async def sign_out(page: Page, system: System) -> None:
    async with page.expect_navigation(url=f"{system.web_url}/signed-out"):
        await page.click("form[action='/signout'] button[type=submit]")


async def test_a_cookie_copied_before_sign_out_is_refused_after_it(browser: Browser, system: System) -> None:
    page = await signed_in(browser, system, "site-coordinator.nfh")
    subjects = f"{system.web_url}/sites/NFH/subjects"
    copied = await page.context.cookies()

    await sign_out(page, system)

    elsewhere = await browser.new_context()
    await elsewhere.add_cookies(copied)  # type: ignore[arg-type]  # the same cookies, as a thief would set them
    thief = await elsewhere.new_page()
    await thief.goto(subjects)
    assert not thief.url.startswith(subjects), "the copied session still opened the site's subjects"
    await thief.wait_for_selector("input[name=login]")  # sent to sign in at the provider instead


async def test_after_sign_out_signing_in_again_in_the_same_browser_asks_for_credentials(
    browser: Browser, system: System
) -> None:
    page = await signed_in(browser, system, "monitor")

    await sign_out(page, system)
    await page.goto(f"{system.web_url}/signin")

    await page.wait_for_selector("input[name=login]")
    assert page.url.startswith(system.identity_provider), "the provider asked who is signing in"


async def test_a_fresh_sign_in_as_another_person_before_signing_is_refused_and_the_session_kept(
    browser: Browser, system: System, client: httpx.AsyncClient, subject_ids: SubjectIds
) -> None:
    site, subject, _ = await eligible_subject(client, subject_ids)
    investigator = await signed_in(browser, system, f"investigator.{site.lower()}")
    await asyncio.sleep(REAUTHENTICATION_SECONDS / 2 + 1)  # past half the window: a fresh sign-in is asked for

    await investigator.goto(f"{system.web_url}/sites/{site}/subjects/{subject}/sign/eligibility")
    await sign_in_at_provider(investigator, f"site-coordinator.{site.lower()}", "not the investigator")
    await investigator.wait_for_url(f"{system.web_url}/signin/callback**")

    assert "Another person signed in" in await investigator.inner_text("h1")
    assert await investigator.locator("#meaning").count() == 0, "no signature is offered"
    await investigator.goto(f"{system.web_url}/sites/{site}/subjects/{subject}")
    assert "Investigator" in await investigator.inner_text("header"), "still signed in as the investigator"


async def test_the_sae_event_stream_is_refused_to_a_site_coordinator(browser: Browser, system: System) -> None:
    page = await signed_in(browser, system, "site-coordinator.nfh")
    answer = await page.request.get(f"{system.web_url}/safety/events", timeout=5000)
    assert answer.status == 403
    assert not answer.headers["content-type"].startswith("text/event-stream")
