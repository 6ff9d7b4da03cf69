"""The path and header parameters routes share, each with its pattern: refused with 422 before anything runs;
and no parameter a route does not know (a mistyped filter would otherwise be ignored in silence)."""

import weakref
from typing import Annotated
from uuid import UUID

from fastapi import Header, Path, Request
from fastapi.dependencies.models import Dependant

from services.gateway.errors import ProblemError
from services.gateway.idempotency import KEY_PATTERN
from shared.contracts.forms import FORM_PATTERN, VISIT_CODE_PATTERN, Correctable
from shared.contracts.protocol import SITE_CODE_PATTERN, SUBJECT_ID_PATTERN

SitePath = Annotated[str, Path(pattern=SITE_CODE_PATTERN, examples=["NFH"], description="site code")]
SubjectPath = Annotated[str, Path(pattern=SUBJECT_ID_PATTERN, examples=["NFH-001"], description="subject id")]
VisitPath = Annotated[str, Path(pattern=VISIT_CODE_PATTERN, examples=["M6"], description="visit code")]
FormPath = Annotated[
    str, Path(pattern=FORM_PATTERN, examples=["screening"], description="consent, screening, visit-M1, ae-<id>, …")
]
QueryPath = Annotated[UUID, Path(description="the query's id")]
ETAG_PATTERN = r'^"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"$'
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        pattern=ETAG_PATTERN,
        description="a correction: the ETag of the form's record it was made on; stale → 412 with the current one",
    ),
]


def etag(version: UUID) -> str:
    return f'"{version}"'


def with_if_match(form: Correctable, if_match: str | None) -> Correctable:
    """A form sent with `If-Match` corrects the record that ETag names (`supersedes`, which it must agree with)."""
    if if_match is None:
        return form
    version = UUID(if_match.strip('"'))
    if form.supersedes not in (None, version):
        raise ProblemError(
            422,
            "validation",
            "Invalid request",
            f"If-Match names {version} but the body supersedes {form.supersedes}",
            rule="correction.if_match",
            field="header.if-match",
        )
    return form.model_copy(update={"supersedes": version})


IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        pattern=KEY_PATTERN,
        description="unique per intended request; a retry with the same key returns the first answer",
    ),
]


async def known_query_parameters(request: Request) -> None:
    """A query parameter the route does not declare is refused with 422, naming it."""
    route = request.scope.get("route")
    known = _declared_on(route) if route is not None else frozenset()
    unknown = sorted(set(request.query_params) - known)
    if unknown:
        raise ProblemError(
            422,
            "validation",
            "Invalid request",
            f"unknown query parameter {unknown[0]!r}; this operation takes {sorted(known) or 'none'}",
            rule="query.unknown",
            field=f"query.{unknown[0]}",
        )


# The query parameters each route declares, found once per route rather than by walking its dependencies on
# every request. By the route's id (a route compares by value, so it is no key), and only while that route lives:
# an app's routes go when the app goes.
_DECLARED: dict[int, tuple["weakref.ref[object]", frozenset[str]]] = {}


def _declared_on(route: object) -> frozenset[str]:
    found = _DECLARED.get(id(route))
    if found is None or found[0]() is not route:
        dependant = getattr(route, "dependant", None)
        key = id(route)
        alive = weakref.ref(route, lambda _: _DECLARED.pop(key, None))
        found = _DECLARED[key] = (alive, frozenset(_query_parameters(dependant) if dependant else ()))
    return found[1]


def _query_parameters(dependant: Dependant) -> set[str]:
    return {p.alias for p in dependant.query_params}.union(*map(_query_parameters, dependant.dependencies))
