"""Progress of long work (a rebuild, a benchmark): a live bar on a terminal; elsewhere (a log file, CI) one
plain line every half minute, not thousands of carriage-return frames."""

import sys
from collections.abc import Callable
from typing import IO, Any

from tqdm import tqdm

OFF_TERMINAL_EVERY_SECONDS = 30.0


class _Lines:
    """A file for tqdm that turns each redrawn frame into a line of its own."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def write(self, text: str) -> None:
        line = text.replace("\r", "").strip()
        if line:
            self.out.write(line + "\n")

    def flush(self) -> None:
        self.out.flush()


def progress(*, desc: str, unit: str, total: int | None = None, out: IO[str] | None = None) -> "tqdm[Any]":
    """A progress bar for `total` units (unknown: a count and a rate)."""
    out = out or sys.stderr
    if out.isatty():
        return tqdm(total=total, desc=desc, unit=unit, file=out)
    return tqdm(
        total=total,
        desc=desc,
        unit=unit,
        file=_Lines(out),  # tqdm only writes and flushes
        mininterval=OFF_TERMINAL_EVERY_SECONDS,
        maxinterval=OFF_TERMINAL_EVERY_SECONDS,
        ascii=True,
        dynamic_ncols=False,
        ncols=100,
    )


def shown_on(bar: "tqdm[Any]") -> Callable[[int, int], None]:
    """A progress callback (`done`, `total`) that moves `bar`."""

    def show(done: int, total: int) -> None:
        bar.total = total
        bar.update(done - bar.n)

    return show
