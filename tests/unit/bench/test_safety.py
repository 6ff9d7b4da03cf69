"""The SAE benchmark reads the gateway's Server-Timing header and splits a report's time into its path's hops."""

import pytest

from bench.safety import SAE_PATH, path_hops, server_timing


def test_server_timing_is_read_as_milliseconds_by_hop_whatever_else_an_entry_carries() -> None:
    header = 'auth;dur=0.41, claim;desc="key";dur=0.73,cache, total;dur=7.9'
    assert server_timing(header) == {"auth": 0.41, "claim": 0.73, "total": 7.9}


def test_a_reports_hops_add_up_to_what_its_client_measured() -> None:
    timing = {"auth": 0.5, "claim": 0.75, "command": 4.0, "service": 1.5, "complete": 1.0, "total": 8.0}
    hops = dict(zip((h.name for h in SAE_PATH), path_hops(timing, 9.25), strict=True))
    assert hops == {
        "client and HTTP": 1.25,
        "token and revocation check": 0.5,
        "gateway: form, routing, answer": 1.75,
        "idempotency key claimed": 0.75,
        "command sent, verified, answered": 2.5,
        "service: history read, decide, append": 1.5,
        "idempotency answer stored": 1.0,
    }
    assert sum(hops.values()) == pytest.approx(9.25)
