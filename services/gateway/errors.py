"""RFC 9457 problem details: every refusal the gateway gives, and the one table mapping refusals to statuses."""

from typing import Any

import nats.errors
import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from shared.contracts.commands import Rejection
from shared.contracts.rules import Refusal
from shared.runtime.postgres import CONNECTION_ERRORS

log = structlog.get_logger(__name__)

PROBLEM_JSON = "application/problem+json"
PROBLEM_BASE = "/problems/"

# Postgres or the network failing under a request: the client retries later, nothing was half-written.
# Postgres, and NATS where the gateway reads the record itself (whose access is revoked): 503, retry.
DEPENDENCY_ERRORS = (*CONNECTION_ERRORS, nats.errors.Error)

STATUS_OF: dict[Refusal, int] = {
    Refusal.INVALID: 422,
    Refusal.CONFLICT: 409,
    Refusal.NOT_FOUND: 404,
    Refusal.FORBIDDEN: 403,
    Refusal.STALE: 412,
    Refusal.VERSION_REQUIRED: 428,
    Refusal.LOCKED: 423,
    Refusal.REAUTHENTICATE: 401,
}


class FieldError(BaseModel):
    field: str = Field(description="dotted path of the offending field, e.g. body.signed_on")
    rule: str = Field(description="the rule it breaks, e.g. missing, date_from_datetime_parsing, pattern")
    message: str


class Problem(BaseModel):
    """application/problem+json (RFC 9457), with the rule and fields it is about."""

    type: str
    title: str
    status: int
    detail: str
    instance: str | None = None
    rule: str | None = None
    field: str | None = None
    errors: list[FieldError] | None = None
    correlation_id: str | None = None
    current_version: str | None = Field(None, description="on 412: the record now current (its ETag, unquoted)")


class ProblemError(Exception):
    """Raise anywhere in a request to answer with a problem."""

    def __init__(
        self,
        status: int,
        slug: str,
        title: str,
        detail: str,
        *,
        rule: str | None = None,
        field: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.problem = Problem(
            type=PROBLEM_BASE + slug, title=title, status=status, detail=detail, rule=rule, field=field
        )
        self.headers = headers or {}


def unauthorized(detail: str) -> ProblemError:
    return ProblemError(401, "unauthorized", "Authentication required", detail, headers={"WWW-Authenticate": "Bearer"})


def forbidden(detail: str) -> ProblemError:
    return ProblemError(403, "forbidden", "Not allowed", detail)


def service_unavailable(detail: str) -> ProblemError:
    return ProblemError(503, "service-unavailable", "Service unavailable", detail, headers={"Retry-After": "2"})


def rejection_problem(rejection: Rejection) -> ProblemError:
    error = ProblemError(
        STATUS_OF[rejection.kind],
        f"rule/{rejection.rule}",
        rejection.title,
        rejection.detail,
        rule=rejection.rule,
        field=rejection.field,
    )
    if rejection.current_version is not None:
        error.problem.current_version = str(rejection.current_version)
        error.headers["ETag"] = f'"{rejection.current_version}"'
    if rejection.kind is Refusal.REAUTHENTICATE:
        # RFC 9470: the client signs the person in again, no older than max_age, and repeats the request.
        max_age = f', max_age="{rejection.max_age}"' if rejection.max_age is not None else ""
        error.headers["WWW-Authenticate"] = (
            f'Bearer error="insufficient_user_authentication", error_description="{rejection.detail}"{max_age}'
        )
    return error


def problem_response(problem: Problem, request: Request, headers: dict[str, str] | None = None) -> JSONResponse:
    problem = problem.model_copy(
        update={"instance": request.url.path, "correlation_id": getattr(request.state, "correlation_id", None)}
    )
    return JSONResponse(
        problem.model_dump(exclude_none=True), status_code=problem.status, media_type=PROBLEM_JSON, headers=headers
    )


def _field_errors(exc: RequestValidationError) -> list[FieldError]:
    return [
        FieldError(field=".".join(str(p) for p in err["loc"]), rule=err["type"], message=err["msg"])
        for err in exc.errors()
    ]


AUDIT_REFUSAL = """
INSERT INTO refused_requests (actor, role, method, path, detail) VALUES ($1, $2, $3, $4, $5)
"""


async def _audit_refusal(request: Request, caller: Any, detail: str) -> None:
    """A refusal for want of a right, kept with who asked (the path as asked: it names what was sought)."""
    try:
        await request.app.state.pool.execute(
            AUDIT_REFUSAL, caller.actor, str(caller.role), request.method, request.url.path, detail[:500]
        )
    except Exception as exc:  # the refusal stands; that it could not be kept is said where ops look
        log.error("refusal_not_audited", error=type(exc).__name__, path_template=_route(request))


def install_error_handlers(app: FastAPI) -> None:
    async def on_problem(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProblemError)
        if exc.problem.status in (401, 403):
            log.info(
                "request_refused", status=exc.problem.status, path_template=_route(request), detail=exc.problem.detail
            )
        caller = getattr(request.state, "caller", None)
        if exc.problem.status == 403 and caller is not None:
            await _audit_refusal(request, caller, exc.problem.detail or "")
        return problem_response(exc.problem, request, exc.headers)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = _field_errors(exc)
        first = errors[0] if errors else None
        detail = "; ".join(f"{e.field}: {e.message}" for e in errors[:5]) or "invalid request"
        problem = Problem(
            type=PROBLEM_BASE + "validation",
            title="Invalid request",
            status=422,
            detail=detail,
            field=first.field if first else None,
            rule=first.rule if first else None,
            errors=errors,
        )
        return problem_response(problem, request)

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        slug = {404: "not-found", 405: "method-not-allowed"}.get(exc.status_code, "http-error")
        problem = Problem(
            type=PROBLEM_BASE + slug, title=str(exc.detail), status=exc.status_code, detail=str(exc.detail)
        )
        return problem_response(problem, request, dict(exc.headers or {}))

    async def on_dependency_down(request: Request, exc: Exception) -> JSONResponse:
        log.error("dependency_unavailable", path_template=_route(request), error=type(exc).__name__)
        problem = service_unavailable("a backing service is unreachable; retry with the same key").problem
        return problem_response(problem, request, {"Retry-After": "2"})

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected_error", path_template=_route(request))
        problem = Problem(type=PROBLEM_BASE + "internal", title="Internal error", status=500, detail="unexpected error")
        return problem_response(problem, request)

    app.add_exception_handler(ProblemError, on_problem)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    for dependency_error in DEPENDENCY_ERRORS:
        app.add_exception_handler(dependency_error, on_dependency_down)
    app.add_exception_handler(Exception, on_unexpected)


def _route(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", "?")


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the problems an endpoint can answer."""
    return {s: {"model": Problem, "content": {PROBLEM_JSON: {}}} for s in statuses}
