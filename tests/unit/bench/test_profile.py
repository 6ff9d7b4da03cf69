"""The benchmark's profile: py-spy's raw stacks read into each function's own share and each part's share."""

from pathlib import Path

import pytest

from bench.profile import summary

RAW = """\
process 7:"python -m services.gateway";Runner.run (asyncio/runners.py:118);execute (asyncpg/connection.py:377) 30
process 7:"gateway";Runner.run (asyncio/runners.py:118);validate (/venv/site-packages/pydantic/main.py:792) 10
process 7:"python -m services.gateway";Runner.run (asyncio/runners.py:118);writelines (asyncio/streams.py:346) 10
process 7:"python -m services.gateway";decide (shared/runtime/decisions.py:60) 10
process 7:"python -m services.gateway";Runner.run (asyncio/runners.py:118) 40
not a stack line
"""


def test_each_busy_sample_counts_for_the_innermost_frame_and_the_part_of_the_code_it_is_in(tmp_path: Path) -> None:
    raw = tmp_path / "profile-gateway.txt"
    raw.write_text(RAW)
    found = summary(raw, top=2)
    assert found["samples"] == 100
    assert found["busiest_pct"] == {
        "execute (asyncpg/connection.py:377)": 50.0,
        "validate (/venv/site-packages/pydantic/main.py:792)": 16.7,
    }
    assert found["parts_pct"] == {
        "Postgres driver (asyncpg)": 50.0,
        "validation and serialization (pydantic)": 16.7,
        "event loop and sockets (asyncio)": 16.7,
        "the trial's code": 16.7,
    }


def test_a_sample_whose_innermost_frame_runs_the_event_loop_is_waiting_not_work(tmp_path: Path) -> None:
    raw = tmp_path / "profile-gateway.txt"
    raw.write_text(RAW)
    found = summary(raw)
    assert found["waiting_pct"] == 40.0
    assert "Runner.run (asyncio/runners.py:118)" not in found["busiest_pct"]
    assert sum(found["parts_pct"].values()) == pytest.approx(100, abs=0.2)  # of the busy samples, each rounded
