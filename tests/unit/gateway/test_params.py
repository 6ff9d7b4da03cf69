"""A query parameter a route does not declare is refused with 422 naming it, on the first request and every later."""

from typing import Annotated

import httpx
from fastapi import Depends, FastAPI, Query

from services.gateway.errors import install_error_handlers
from services.gateway.params import known_query_parameters


def app_with(parameter: str) -> FastAPI:
    app = FastAPI(dependencies=[Depends(known_query_parameters)])
    install_error_handlers(app)

    def by_site(site: Annotated[str | None, Query()] = None) -> str | None:
        return site

    @app.get("/items")
    async def items(
        site: Annotated[str | None, Depends(by_site)], limit: Annotated[int, Query(alias=parameter)] = 5
    ) -> dict[str, object]:
        return {"site": site, "limit": limit}

    return app


async def get(app: FastAPI, query: str) -> httpx.Response:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://gateway") as client:
        return await client.get(f"/items?{query}")


async def test_a_declared_parameter_of_the_route_or_of_its_dependencies_is_taken() -> None:
    answer = await get(app_with("limit"), "site=NFH&limit=2")
    assert answer.status_code == 200 and answer.json() == {"site": "NFH", "limit": 2}


async def test_an_undeclared_parameter_is_422_naming_it_every_time() -> None:
    app = app_with("limit")
    for _ in range(3):
        answer = await get(app, "site=NFH&sort=desc")
        assert answer.status_code == 422
        assert answer.json()["rule"] == "query.unknown" and answer.json()["field"] == "query.sort"


async def test_each_app_knows_its_own_routes_parameters() -> None:
    assert (await get(app_with("limit"), "limit=2")).status_code == 200
    assert (await get(app_with("top"), "limit=2")).status_code == 422
    assert (await get(app_with("top"), "top=2")).status_code == 200
