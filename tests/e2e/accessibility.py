"""axe-core (Deque's accessibility engine, installed from `tests/e2e/axe/package-lock.json`) run in a page: every
violation of any impact, each with the rule, its help and where on the page."""

import re
from functools import cache
from pathlib import Path

from playwright.async_api import Page

AXE = Path(__file__).parent / "axe" / "node_modules" / "axe-core" / "axe.min.js"
RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ['violations']});
  const where = v => v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(', ');
  return result.violations.map(v => `${v.impact} ${v.id}: ${v.help} at ${where(v)}`);
}"""


@cache
def _source() -> str:
    return AXE.read_text()


async def violations(page: Page) -> list[str]:
    """The page's violations as axe-core reports them (its script evaluated in the page, not added as a tag, so
    the page's own Content-Security-Policy stays as it is)."""
    if not await page.evaluate("() => typeof axe !== 'undefined'"):
        await page.evaluate(_source())
    found: list[str] = await page.evaluate(RUN)
    return found


def template(path: str) -> str:
    """A page's kind: its path with ids and numbers put aside (`/sites/NFH/subjects/NFH-003` and `…/NFH-004` are
    one kind)."""
    return re.sub(r"[0-9a-f]{8}-[0-9a-f-]{27}|\d+", "N", path)
