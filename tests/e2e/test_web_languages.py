"""Both languages complete: every page each role reaches, walked in Simplified Chinese, holds no text the English
catalogue has (the page frames, the data dictionary's words, states, outcomes, roles, rule messages, criteria) and
no accessibility violation axe-core finds, of any impact; and every form posted with a bad value per item answers
with a message beside that item, in the page's language."""

import asyncio
import re
from collections import Counter, deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import asyncpg
import httpx
import pytest
from playwright.async_api import Browser, Page

from devstack.examples import ELIGIBLE, serious_adverse_event
from services.web.i18n import english_catalogue
from shared.contracts.access import Role
from shared.contracts.protocol import ProtocolDefinition, load_protocol
from shared.readmodels.catalogue import ReadModel
from shared.runtime.eventstore import EventStore
from shared.runtime.projections import wait_for_read_models
from tests.conftest import SubjectIds
from tests.e2e.accessibility import template, violations
from tests.e2e.api import System, allocation, append, consent_on, consented, headers, new_key, token
from tests.e2e.test_photographs import photograph_with_gps
from tests.e2e.test_visits import assessments, surgery
from tests.e2e.test_web import signed_in
from tests.questionnaire import NAME

pytestmark = pytest.mark.e2e

# Links a walk does not follow: leaving the session or the language, files rather than pages.
NOT_PAGES = re.compile(r"/(signout|signin|language)\b|/static/|/exports/|^/reports/[^/]+\.(json|svg)$")
TEXTS = """() => {
  const found = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    if (node.parentElement.closest('script, style, [translate=no]')) continue;
    const text = node.textContent.trim();
    if (text) found.push(text);
  }
  for (const element of document.querySelectorAll('[title], [placeholder], [aria-label]')) {
    for (const name of ['title', 'placeholder', 'aria-label']) {
      const text = (element.getAttribute(name) || '').trim();
      if (text) found.push(text);
    }
  }
  return found;
}"""
LOGINS = {
    Role.SITE_COORDINATOR: "site-coordinator.{site}",
    Role.INVESTIGATOR: "investigator.{site}",
    Role.MONITOR: "monitor",
    Role.DATA_MANAGER: "data-manager",
    Role.SAFETY_OFFICER: "safety-officer",
    Role.STATISTICIAN: "statistician",
    Role.OUTCOME_ASSESSOR: "outcome-assessor",
}


@dataclass(frozen=True)
class Records:
    site: str
    screen_failed: str
    randomized: str
    operated: str  # seen at W1 and M1, with a serious adverse event and an open query


async def a_site_with_every_record(
    client: httpx.AsyncClient,
    store: EventStore,
    subject_ids: SubjectIds,
    protocol: ProtocolDefinition,
    read_pool: asyncpg.Pool,
) -> Records:
    """A site whose subjects show what a page can show: a screen failure, a subject randomized today, and one
    operated and seen at W1 and M1 with a serious adverse event and an open query; the read models through them."""
    site, failed, bearer = await consented(client, subject_ids)
    too_old = ELIGIBLE | {"screening_date": protocol.local_date(site, datetime.now(UTC)).isoformat(), "age_years": 70}
    answer = await client.post(
        f"/v1/sites/{site}/subjects/{failed}/screening", json=too_old, headers=headers(bearer, new_key())
    )
    assert answer.status_code == 201 and not answer.json()["eligible"], answer.text
    _, randomized = await subject_ids.fresh(site)
    now = datetime.now(UTC)
    await append(store, site, randomized, [(consent_on(now.date()), now), (allocation(site, "FG_HT"), now)])
    _, subject = await subject_ids.fresh(site)
    then = now - timedelta(days=35)
    await append(store, site, subject, [(consent_on(then.date()), then), (allocation(site, "FG_HT"), then)])
    day0 = protocol.local_date(site, then)
    at = f"/v1/sites/{site}/subjects/{subject}"
    posted = [
        (f"{at}/procedures", surgery(day0, fat_graft=True)),
        (f"{at}/visits/W1", assessments(day0 + timedelta(days=7))),
        (f"{at}/visits/M1", assessments(day0 + timedelta(days=30))),
        (f"{at}/adverse-events", serious_adverse_event()),
    ]
    for path, body in posted:
        answer = await client.post(path, json=body, headers=headers(bearer, new_key()))
        assert answer.status_code == 201, answer.text
    photograph = headers(bearer, new_key()) | {"Content-Type": "image/jpeg"}
    answer = await client.post(f"{at}/visits/M1/photographs/vertex", content=photograph_with_gps(), headers=photograph)
    assert answer.status_code == 201, answer.text
    query = {"form": "procedure", "field": "follicular_units", "text": "Please check the count"}
    answer = await client.post(f"{at}/queries", json=query, headers=headers(token(Role.MONITOR), new_key()))
    assert answer.status_code == 201, answer.text
    await wait_for_read_models(read_pool, list(ReadModel), answer.json()["stream_sequence"], timeout=30)
    return Records(site, failed, randomized, subject)


async def walk(
    page: Page, start: str, limit: int = 60, checked: dict[str, list[str]] | None = None, per_kind: int = 3
) -> dict[str, list[str]]:
    """Every page reachable by links from `start` within the app (up to `limit`, and `per_kind` of each kind:
    three casebooks say what thirty would), with its texts; and where `checked` is given, each kind of page not
    yet in it checked by axe-core (its violations)."""
    origin = urlsplit(start).netloc
    seen, todo = {start}, deque([start])
    kinds = Counter([template(urlsplit(start).path)])
    texts: dict[str, list[str]] = {}
    while todo and len(texts) < limit:
        url = todo.popleft()
        answer = await page.goto(url)
        if answer is None or answer.status >= 400 or "html" not in answer.headers.get("content-type", ""):
            continue
        texts[url] = await page.evaluate(TEXTS)
        # The app's own pages: a fresh sign-in shows the identity provider's (the development one here).
        ours = urlsplit(page.url).netloc == origin
        if checked is not None and ours and (kind := template(urlsplit(url).path)) not in checked:
            checked[kind] = await violations(page)
        for href in await page.eval_on_selector_all("a[href]:not([lang])", "links => links.map(a => a.href)"):
            target = urljoin(url, href).split("#")[0]
            inside = urlsplit(target).netloc == origin and not NOT_PAGES.search(urlsplit(target).path)
            kind = template(urlsplit(target).path)
            if inside and target not in seen and kinds[kind] < per_kind:
                seen.add(target)
                kinds[kind] += 1
                todo.append(target)
    return texts


# Seven roles' walks of up to 60 pages each, each kind of page checked by axe-core: longer than one request's test.
@pytest.mark.timeout(300)
async def test_every_page_each_role_reaches_in_chinese_holds_no_english_the_catalogue_has(
    browser: Browser,
    system: System,
    client: httpx.AsyncClient,
    store: EventStore,
    subject_ids: SubjectIds,
    protocol: ProtocolDefinition,
    system_protocol_file: Path,
    read_pool: asyncpg.Pool,
) -> None:
    site = (await a_site_with_every_record(client, store, subject_ids, protocol, read_pool)).site
    english = english_catalogue(load_protocol(system_protocol_file))
    assert len(english) > 300, "the catalogue holds the app's words, the dictionary's and the rules'"
    found: dict[str, set[str]] = {}
    checked: dict[str, dict[str, list[str]]] = {role: {} for role in LOGINS}
    # The roles walk side by side (each in its own browser context), a few at a time: the walks wait on pages far
    # more than they compute.
    at_once = asyncio.Semaphore(3)

    async def walked_by(role: str, login: str) -> dict[str, list[str]]:
        async with at_once:
            page = await signed_in(browser, system, login.format(site=site.lower()), language="zh-CN")
            try:
                return await walk(page, page.url, checked=checked[role])
            finally:
                await page.context.close()

    walks = await asyncio.gather(*(walked_by(role, login) for role, login in LOGINS.items()))
    pages = sum(len(walked) for walked in walks)
    for role, walked in zip(LOGINS, walks, strict=True):
        for url, texts in walked.items():
            for text in texts:
                if text in english:
                    found.setdefault(text, set()).add(f"{role}: {urlsplit(url).path}")
    assert pages > 40, f"only {pages} pages walked"
    kinds = sum(len(by_kind) for by_kind in checked.values())
    assert kinds > 30, f"only {kinds} kinds of page checked for accessibility"
    inaccessible = {
        f"{role}: {kind}": found for role, by_kind in checked.items() for kind, found in by_kind.items() if found
    }
    assert not inaccessible, "axe-core violations:\n" + "\n".join(f"{k}: {v}" for k, v in inaccessible.items())
    assert not found, "English on Chinese pages:\n" + "\n".join(
        f"{text!r} on {sorted(where)[:3]}" for text, where in sorted(found.items())
    )


# A value each kind of input refuses: a date before 1900, a word for a number or an instant, a text past its
# longest, and for a select or a set of boxes a choice the list does not have (put there as a tampered page would).
SPOIL = """(form) => {
  const spoiled = [];
  for (const el of form.querySelectorAll('input:not([type=hidden]), select')) {
    if (el.name === 'subject_id' || el.name === 'checked') continue;
    if (el.tagName === 'SELECT') {
      const option = document.createElement('option');
      option.value = 'bogus';
      el.appendChild(option);
      el.value = 'bogus';
    } else if (el.type === 'checkbox') {
      if (spoiled.includes(el.name)) continue;
      const box = el.cloneNode();
      box.value = 'bogus';
      box.checked = true;
      el.parentElement.appendChild(box);
    } else if (el.type === 'date') {
      el.value = '1800-01-01';
    } else if (el.inputMode === 'decimal' || /_at$/.test(el.name)) {
      el.value = 'soon';
    } else {
      el.value = 'x'.repeat(2001);
    }
    spoiled.push(el.name);
  }
  return spoiled;
}"""
CJK = re.compile(r"[\u4e00-\u9fff]")


async def test_every_form_posted_with_a_bad_value_in_each_item_says_why_beside_each_item_in_chinese(
    browser: Browser,
    system: System,
    client: httpx.AsyncClient,
    store: EventStore,
    subject_ids: SubjectIds,
    protocol: ProtocolDefinition,
    read_pool: asyncpg.Pool,
) -> None:
    records = await a_site_with_every_record(client, store, subject_ids, protocol, read_pool)
    site, operated = records.site, records.operated
    casebook = f"{system.web_url}/sites/{site}/subjects"
    forms = [
        (casebook, f"/sites/{site}/subjects"),
        (f"{casebook}/{records.screen_failed}", "/forms/screen_subject"),
        (f"{casebook}/{records.randomized}", "/forms/record_procedure"),
        (f"{casebook}/{operated}", "/forms/record_visit"),
        (f"{casebook}/{operated}", f"/forms/record_{NAME.replace('-', '_')}"),
        (f"{casebook}/{operated}", "/forms/report_adverse_event"),
        (f"{casebook}/{operated}", "/forms/follow_up_adverse_event"),
        (f"{casebook}/{operated}", "/forms/record_concomitant_medication"),
        (f"{casebook}/{operated}", "/forms/record_medical_history"),
        (f"{casebook}/{operated}", "/forms/withdraw_subject"),
    ]
    page = await signed_in(browser, system, f"investigator.{site.lower()}", language="zh-CN")
    unexplained: dict[str, list[str]] = {}
    items = 0
    for url, action in forms:
        await page.goto(url)
        form = page.locator(f"form[action$='{action}']").first
        if action.endswith("/subjects"):
            await page.fill("input[name=subject_id]", (await subject_ids.fresh(site))[1])
        spoiled = await form.evaluate(SPOIL)
        assert spoiled, f"no items in {action}"
        async with page.expect_navigation():
            await form.locator("button[type=submit]").click()
        # A step said before it is taken is confirmed; a check's question before a save is answered "as entered".
        if await page.locator("#confirm-step").count():
            async with page.expect_navigation():
                await page.click("#confirm-step button[type=submit]")
        form = page.locator(f"form[action$='{action}']").first
        if await form.locator(".advice").count():  # the same bad values again, confirmed as entered
            await form.evaluate(SPOIL)
            await form.locator("input[name=checked]").check()
            async with page.expect_navigation():
                await form.locator("button[type=submit]").click()
            form = page.locator(f"form[action$='{action}']").first
        for name in dict.fromkeys(spoiled):
            items += 1
            error = form.locator(f"#f-{name.replace('.', '-')}-error")
            said = await error.inner_text() if await error.count() else ""
            if not CJK.search(said) or re.search(r"[A-Za-z]{4,}", said):
                unexplained.setdefault(action, []).append(f"{name}: {said!r}")
    assert items > 60, items
    assert not unexplained, unexplained
