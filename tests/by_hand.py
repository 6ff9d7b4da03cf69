"""The endpoint statistics computed independently of the code under test, for the tests to compare against."""

import math
import statistics
from collections import Counter
from itertools import combinations, product

from scipy.stats import t as student_t


def welch_by_formula(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """Welch (1947): the difference of means, its standard error and the Welch-Satterthwaite degrees of freedom."""
    va, vb = statistics.variance(a) / len(a), statistics.variance(b) / len(b)
    df = (va + vb) ** 2 / (va**2 / (len(a) - 1) + vb**2 / (len(b) - 1))
    difference = statistics.fmean(a) - statistics.fmean(b)
    half = student_t.ppf(0.975, df) * math.sqrt(va + vb)
    return difference, difference - half, difference + half


def hodges_lehmann_by_hand(a: list[float], b: list[float]) -> tuple[float, float, float]:
    """Every pairwise difference, sorted; the median; the Mann-Whitney order statistics: for untied samples small
    enough to enumerate, from the exact distribution counted over every way to split the ranks; else the normal
    quantile's."""
    differences = sorted(x - y for x, y in product(a, b))
    n, m = len(a), len(b)
    if len(set(a) | set(b)) == n + m and math.comb(n + m, n) <= 200_000:
        k = max(1, exact_lower_rank_by_enumeration(n, m))
    else:
        z = statistics.NormalDist().inv_cdf(0.975)
        k = max(1, math.floor(n * m / 2 - z * math.sqrt(n * m * (n + m + 1) / 12)))
    return statistics.median(differences), differences[k - 1], differences[n * m - k]


def exact_lower_rank_by_enumeration(n: int, m: int) -> int:
    """The smallest u with P(U <= u) >= 2.5 %, U counted for every choice of the first sample's ranks."""
    counts = Counter(
        sum(1 for x in chosen for y in range(n + m) if y not in chosen and x > y)
        for chosen in map(set, combinations(range(n + m), n))
    )
    total, below = math.comb(n + m, n), 0
    for u in range(n * m + 1):
        below += counts[u]
        if below >= 0.025 * total:
            return u
    return n * m
