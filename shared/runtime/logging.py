"""structlog JSON logging with the correlation id bound per message. Logs name ids, codes and outcomes only: never
a form's values, a clinical text, or an error's message (which may quote what was sent: pydantic and Postgres both
do), so an error is logged as its kind and its codes (`error_summary`), and a traceback without its message."""

import logging
import sys
import traceback
from typing import Any

import structlog
from pydantic import ValidationError

from shared.contracts.events import UndecodableEvent


def error_summary(exc: BaseException) -> str:
    """What went wrong, without anything it was given: the exception's kind and, where it has them, its codes (a
    validation error's fields and rules, a Postgres error's SQLSTATE, a trial rule's code, a JetStream error's code).
    """
    kind = type(exc).__name__
    if isinstance(exc, UndecodableEvent):  # its message is written to name fields and rules only
        return f"{kind}: {exc}"
    if isinstance(exc, ValidationError):
        problems = ", ".join(
            f"{'.'.join(str(p) for p in e['loc'])} {e['type']}" for e in exc.errors(include_input=False)
        )
        return f"{kind}: {problems}"
    codes = [
        f"{name} {value}"
        for name in ("rule", "sqlstate", "err_code", "status")
        if isinstance(value := getattr(exc, name, None), str | int) and value not in ("", 0)
    ]
    return f"{kind} ({', '.join(codes)})" if codes else kind


def _exception_without_message(_: Any, __: str, event: structlog.typing.EventDict) -> structlog.typing.EventDict:
    """Where the error happened (the frames) and what kind it was; its message stays out."""
    exc_info = event.pop("exc_info", None)
    if exc_info:
        exc = exc_info if isinstance(exc_info, BaseException) else sys.exc_info()[1]
        if exc is not None:
            frames = "".join(traceback.format_tb(exc.__traceback__))
            event["exception"] = f"Traceback (most recent call last):\n{frames}{error_summary(exc)}"
    return event


def configure_logging(level: str = "INFO", fmt: str = "json", *, service: str) -> None:
    # Colours only on a terminal: a log redirected to a file (as `make run` does) stays plain text.
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    logging.basicConfig(level=level, stream=sys.stderr, format="%(message)s")
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _exception_without_message,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )
    structlog.contextvars.bind_contextvars(service=service)
