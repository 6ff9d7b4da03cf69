"""The benchmark's profile: py-spy's raw stacks read into each function's own share and each part's share."""

from pathlib import Path

from bench.profile import summary

RAW = """\
process 7:"python -m services.gateway";run (asyncio/runners.py:118);execute (asyncpg/connection.py:377) 30
process 7:"gateway";run (asyncio/runners.py:118);validate (/venv/site-packages/pydantic/main.py:792) 10
process 7:"python -m services.gateway";run (asyncio/runners.py:118) 50
process 7:"python -m services.gateway";decide (shared/runtime/decisions.py:60) 10
not a stack line
"""


def test_each_sample_counts_for_the_innermost_frame_and_the_part_of_the_code_it_is_in(tmp_path: Path) -> None:
    raw = tmp_path / "profile-gateway.txt"
    raw.write_text(RAW)
    found = summary(raw, top=2)
    assert found["samples"] == 100
    assert found["busiest_pct"] == {"run (asyncio/runners.py:118)": 50.0, "execute (asyncpg/connection.py:377)": 30.0}
    assert found["parts_pct"] == {
        "event loop and socket writes (asyncio)": 50.0,
        "Postgres driver (asyncpg)": 30.0,
        "validation and serialization (pydantic)": 10.0,
        "the trial's code": 10.0,
    }
