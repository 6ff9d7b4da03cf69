"""The concealed allocation list: stratified permuted blocks of varying size from a secret seed. Pure.

Reproducible by the statistician (same seed, same list), unpredictable to sites (HMAC-SHA256 DRBG,
block sizes drawn at random from {2, 4, 6} and never shown outside the list). The list is committed
by the SHA-256 of its CSV export, which carries a nonce derived from the seed so the hash hides it.
"""

import csv
import hashlib
import hmac
import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

ALGORITHM = "hmac-sha256-drbg/permuted-blocks/v1"
CSV_COLUMNS = (
    "trial_id",
    "list_version",
    "algorithm",
    "seed_kind",
    "seed_fingerprint",
    "nonce",
    "stratum",
    "slot",
    "block",
    "block_size",
    "arm",
)


class SeedKind(StrEnum):
    TEST = "test"
    PRODUCTION = "production"


class HmacDrbg:
    """Deterministic random bits: HMAC-SHA256(seed, label ‖ counter), read as a stream of bytes."""

    def __init__(self, seed: bytes, label: str) -> None:
        self._seed = seed
        self._label = label.encode()
        self._counter = 0
        self._buffer = b""

    def _bytes(self, n: int) -> bytes:
        while len(self._buffer) < n:
            block = hmac.new(self._seed, self._label + self._counter.to_bytes(8, "big"), hashlib.sha256).digest()
            self._buffer += block
            self._counter += 1
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out

    def below(self, n: int) -> int:
        """Uniform in [0, n) by rejection sampling: no modulo bias."""
        if n <= 0:
            raise ValueError("n must be positive")
        limit = (1 << 32) - (1 << 32) % n
        while True:
            value = int.from_bytes(self._bytes(4), "big")
            if value < limit:
                return value % n


@dataclass(frozen=True, slots=True)
class Slot:
    stratum: str
    slot: int  # 1-based position within the stratum
    block: int
    block_size: int
    arm: str


@dataclass(frozen=True)
class ListParameters:
    trial_id: str
    list_version: int
    arms: tuple[str, str]
    strata: tuple[str, ...]
    slots_per_stratum: int
    block_sizes: tuple[int, ...]
    seed_kind: SeedKind

    def __post_init__(self) -> None:
        if any(size <= 0 or size % len(self.arms) for size in self.block_sizes):
            raise ValueError(f"block sizes {self.block_sizes} must be positive multiples of {len(self.arms)}")


@dataclass(frozen=True)
class AllocationList:
    parameters: ListParameters
    seed_fingerprint: str
    nonce: str
    slots: dict[str, tuple[Slot, ...]]

    def slot(self, stratum: str, position: int) -> Slot | None:
        """The `position`-th (1-based) slot of a stratum, or None when the stratum's list is used up."""
        stratum_slots = self.slots.get(stratum, ())
        return stratum_slots[position - 1] if 0 < position <= len(stratum_slots) else None

    def to_csv(self) -> bytes:
        """The export whose SHA-256 is the commitment: fixed column order, LF line ends, UTF-8."""
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        p = self.parameters
        for stratum in p.strata:
            for s in self.slots[stratum]:
                writer.writerow(
                    [
                        p.trial_id,
                        p.list_version,
                        ALGORITHM,
                        p.seed_kind,
                        self.seed_fingerprint,
                        self.nonce,
                        s.stratum,
                        s.slot,
                        s.block,
                        s.block_size,
                        s.arm,
                    ]
                )
        return out.getvalue().encode()

    @cached_property
    def commitment(self) -> str:
        return commitment_of(self.to_csv())


def commitment_of(exported_csv: bytes) -> str:
    return hashlib.sha256(exported_csv).hexdigest()


def seed_fingerprint(seed: bytes) -> str:
    """Names the seed in the record without revealing it."""
    return hmac.new(seed, b"fingerprint", hashlib.sha256).hexdigest()[:16]


def _blocks(drbg: HmacDrbg, arms: Sequence[str], sizes: Sequence[int]) -> Iterator[tuple[int, list[str]]]:
    while True:
        size = sizes[drbg.below(len(sizes))]
        block = [arm for arm in arms for _ in range(size // len(arms))]
        for i in range(len(block) - 1, 0, -1):  # Fisher–Yates
            j = drbg.below(i + 1)
            block[i], block[j] = block[j], block[i]
        yield size, block


def generate(parameters: ListParameters, seed: bytes) -> AllocationList:
    """The same parameters and seed always give the same list; each stratum has its own stream."""
    if len(seed) < 32:
        raise ValueError("the randomization seed must have at least 32 bytes")
    slots: dict[str, tuple[Slot, ...]] = {}
    for stratum in parameters.strata:
        label = f"{parameters.trial_id}|v{parameters.list_version}|{stratum}"
        drbg = HmacDrbg(seed, label)
        stratum_slots: list[Slot] = []
        for number, (size, block) in enumerate(_blocks(drbg, parameters.arms, parameters.block_sizes), start=1):
            for arm in block:
                stratum_slots.append(Slot(stratum, len(stratum_slots) + 1, number, size, arm))
            if len(stratum_slots) >= parameters.slots_per_stratum:
                break
        slots[stratum] = tuple(stratum_slots)
    nonce = hmac.new(seed, f"{parameters.trial_id}|v{parameters.list_version}|nonce".encode(), hashlib.sha256)
    return AllocationList(parameters, seed_fingerprint(seed), nonce.hexdigest(), slots)


def read_csv(exported_csv: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(exported_csv.decode())))
