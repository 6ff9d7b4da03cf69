"""ASGI middleware: correlation ids on every request, request metrics and timings, and a hard limit on body size."""

import contextlib
import re
import time
import uuid
from collections.abc import Iterator

import structlog
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.gateway.errors import Problem, problem_response
from shared.runtime.metrics import HTTP_REQUESTS, HTTP_SECONDS

CORRELATION_HEADER = "x-correlation-id"
_CORRELATION_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")


class CorrelationId:
    """Takes the caller's X-Correlation-Id when well-formed (else makes one), logs with it, echoes it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = dict(scope["headers"]).get(CORRELATION_HEADER.encode(), b"").decode("latin-1")
        correlation_id = given if _CORRELATION_ID.match(given) else str(uuid.uuid4())
        scope.setdefault("state", {})["correlation_id"] = correlation_id

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (CORRELATION_HEADER.encode(), correlation_id.encode()),
                ]
            await send(message)

        with structlog.contextvars.bound_contextvars(correlation_id=correlation_id):
            await self.app(scope, receive, send_with_id)


SERVER_TIMING = "server_timing"


def note_time(request: Request, hop: str, ms: float) -> None:
    """One hop of this request's time, for its `Server-Timing` header (nothing outside the middleware)."""
    hops: list[tuple[str, float]] | None = request.scope.get("state", {}).get(SERVER_TIMING)
    if hops is not None:
        hops.append((hop, ms))


@contextlib.contextmanager
def timed(request: Request, hop: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        note_time(request, hop, 1000 * (time.perf_counter() - started))


def server_timing(hops: list[tuple[str, float]], total_ms: float) -> bytes:
    """The W3C Server-Timing header's value: each hop, then the whole request up to its response."""
    return ", ".join(f"{hop};dur={ms:.2f}" for hop, ms in [*hops, ("total", total_ms)]).encode()


class RequestMetrics:
    """Counts and times every request by method, route template (never the concrete path) and status, and
    tells the caller where its time went: a `Server-Timing` header with the hops the route noted (`timed`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # unless a response starts
        hops: list[tuple[str, float]] = []
        scope.setdefault("state", {})[SERVER_TIMING] = hops

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                total_ms = 1000 * (time.perf_counter() - started)
                message["headers"] = [*message.get("headers", []), (b"server-timing", server_timing(hops, total_ms))]
            await send(message)

        try:
            await self.app(scope, receive, send_noting_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            HTTP_REQUESTS.labels(method=scope["method"], route=route, status=str(status)).inc()
            HTTP_SECONDS.labels(method=scope["method"], route=route).observe(time.perf_counter() - started)


class BodySizeLimit:
    """413 for bodies over the limit, whether announced by Content-Length or streamed in chunks.

    The body (small by construction) is read here in full before the app sees it, so an oversize
    stream is refused before any work is done.
    """

    def __init__(self, app: ASGIApp, *, max_bytes: int, larger: dict[str, int] | None = None) -> None:
        """`larger`: a limit of its own for the paths a pattern matches (a photograph's upload)."""
        self.app = app
        self.max_bytes = max_bytes
        self.larger = [(re.compile(pattern), limit) for pattern, limit in (larger or {}).items()]

    def limit(self, scope: Scope) -> int:
        path = scope.get("path", "")
        return next((limit for pattern, limit in self.larger if pattern.match(path)), self.max_bytes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.limit(scope)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._refuse(scope, receive, send, limit)
            return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away before sending its body: nothing to answer
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > limit:
                await self._refuse(scope, receive, send, limit)
                return
            if not message.get("more_body", False):
                break
        replayed = False

        async def buffered_receive() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()

        await self.app(scope, buffered_receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, limit: int) -> None:
        detail = f"request body over {limit} bytes"
        problem = Problem(type="/problems/payload-too-large", title="Payload too large", status=413, detail=detail)
        await problem_response(problem, Request(scope, receive))(scope, receive, send)
