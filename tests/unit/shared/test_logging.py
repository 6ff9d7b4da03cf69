"""Console logs carry colour codes only on a terminal."""

from collections.abc import Iterator

import pytest
import structlog

from shared.runtime.logging import configure_logging


@pytest.fixture
def restored_logging() -> Iterator[None]:
    yield
    structlog.reset_defaults()


def test_console_logs_written_to_a_file_or_pipe_have_no_colour_codes(
    capsys: pytest.CaptureFixture[str], restored_logging: None
) -> None:
    configure_logging("INFO", "console", service="test")
    structlog.get_logger("test").info("visit_recorded", visit="M6")
    written = capsys.readouterr().err
    assert "visit_recorded" in written and "visit=M6" in written
    assert "\x1b[" not in written
