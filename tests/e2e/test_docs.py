"""The API docs work in a hospital network without internet: every asset comes from the gateway itself."""

import re
from urllib.parse import urlsplit

import httpx
import pytest

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
async def test_the_docs_pages_load_every_asset_from_the_gateway(client: httpx.AsyncClient, page: str) -> None:
    html = await client.get(page)
    assert html.status_code == 200 and "text/html" in html.headers["content-type"]
    references = re.findall(r"""(?:src|href)\s*=\s*["']([^"']+)["']""", html.text)
    references += re.findall(r"""url\s*:\s*["']([^"']+)["']""", html.text)  # Swagger UI's spec URL
    assert references, html.text[:500]
    assert not [r for r in references if urlsplit(r).netloc], "no asset from another host (a CDN)"
    for reference in references:
        asset = await client.get(reference)
        assert asset.status_code == 200, (reference, asset.status_code)
