"""The allocation list: reproducible, unpredictable, balanced in every block, and committed by its hash."""

import hashlib
import random
from collections import Counter

import pytest

from services.randomization.allocation import (
    AllocationList,
    HmacDrbg,
    ListParameters,
    SeedKind,
    commitment_of,
    generate,
    read_csv,
)

PARAMETERS = ListParameters(
    trial_id="NCT06646146",
    list_version=1,
    arms=("FG_HT", "HT"),
    strata=("NFH", "GZ2", "SZ3"),
    slots_per_stratum=40,
    block_sizes=(2, 4, 6),
    seed_kind=SeedKind.TEST,
)
SEED = bytes(range(32))


def arms(allocation_list: AllocationList, stratum: str) -> list[str]:
    return [s.arm for s in allocation_list.slots[stratum]]


def test_the_same_seed_gives_the_same_list() -> None:
    assert generate(PARAMETERS, SEED).to_csv() == generate(PARAMETERS, SEED).to_csv()


def test_another_seed_gives_another_list() -> None:
    other = generate(PARAMETERS, bytes(reversed(range(32))))
    assert other.to_csv() != generate(PARAMETERS, SEED).to_csv()
    assert other.seed_fingerprint != generate(PARAMETERS, SEED).seed_fingerprint


def test_a_short_seed_is_refused() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        generate(PARAMETERS, b"short")


def test_every_block_is_balanced_and_whole() -> None:
    allocation_list = generate(PARAMETERS, SEED)
    for stratum in PARAMETERS.strata:
        slots = allocation_list.slots[stratum]
        assert len(slots) >= PARAMETERS.slots_per_stratum
        for block in {s.block for s in slots}:
            members = [s for s in slots if s.block == block]
            assert len(members) == members[0].block_size
            assert Counter(s.arm for s in members) == {"FG_HT": len(members) // 2, "HT": len(members) // 2}


def test_block_sizes_vary_within_a_stratum() -> None:
    allocation_list = generate(PARAMETERS, SEED)
    sizes = {s.block_size for s in allocation_list.slots["NFH"]}
    assert sizes <= {2, 4, 6} and len(sizes) >= 2


def test_strata_are_independent_streams() -> None:
    # Adding a site must not change the lists of the others.
    more = ListParameters(**{**PARAMETERS.__dict__, "strata": ("NFH", "GZ2", "SZ3", "XY4")})
    assert arms(generate(more, SEED), "NFH") == arms(generate(PARAMETERS, SEED), "NFH")


def test_the_commitment_is_the_sha256_of_the_exported_csv_with_its_nonce() -> None:
    allocation_list = generate(PARAMETERS, SEED)
    exported = allocation_list.to_csv()
    assert allocation_list.commitment == hashlib.sha256(exported).hexdigest() == commitment_of(exported)
    rows = read_csv(exported)
    assert {r["nonce"] for r in rows} == {allocation_list.nonce}
    assert {r["seed_kind"] for r in rows} == {"test"}
    tampered = exported.replace(b",FG_HT\n", b",HT\n", 1)
    assert commitment_of(tampered) != allocation_list.commitment


def test_the_drbg_draws_every_value_below_its_bound() -> None:
    drbg = HmacDrbg(SEED, "label")
    draws = Counter(drbg.below(6) for _ in range(6000))
    assert set(draws) == set(range(6))
    assert min(draws.values()) > 850  # ~1000 each; a biased or stuck generator fails


def test_simulated_enrolments_stay_balanced_over_thousands_of_seeds() -> None:
    largest = max(PARAMETERS.block_sizes)
    rng = random.Random(20261125)
    for _ in range(2000):
        allocation_list = generate(PARAMETERS, rng.randbytes(32))
        used: Counter[str] = Counter()
        per_site: dict[str, Counter[str]] = {s: Counter() for s in PARAMETERS.strata}
        for _ in range(40):
            site = rng.choice(PARAMETERS.strata)
            used[site] += 1
            slot = allocation_list.slot(site, used[site])
            assert slot is not None
            per_site[site][slot.arm] += 1
            imbalance = abs(per_site[site]["FG_HT"] - per_site[site]["HT"])
            assert imbalance <= largest // 2
        overall = sum((c for c in per_site.values()), Counter())
        assert abs(overall["FG_HT"] - overall["HT"]) <= len(PARAMETERS.strata) * (largest // 2)
