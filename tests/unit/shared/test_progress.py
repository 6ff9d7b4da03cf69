"""Long work off a terminal writes plain lines, not carriage-return frames."""

import io

from shared.runtime.progress import progress, shown_on


def test_off_a_terminal_progress_is_a_few_plain_lines_ending_with_the_total() -> None:
    out = io.StringIO()
    with progress(total=5000, desc="rebuild read models", unit="event", out=out) as bar:
        for _ in range(5000):
            bar.update()
    text = out.getvalue()
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert 1 <= len(lines) <= 3, lines
    assert lines[-1].startswith("rebuild read models: 100%") and "5000/5000" in lines[-1]


def test_a_callback_moves_the_bar_to_what_is_done_of_the_total() -> None:
    out = io.StringIO()
    with progress(desc="rebuild read models", unit="event", out=out) as bar:
        show = shown_on(bar)
        show(10, 40)
        show(40, 40)
        assert (bar.n, bar.total) == (40, 40)
