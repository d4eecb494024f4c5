"""The few statistics a study reports: proportions with intervals, differences, rank correlation, and paired
differences between arms by resampling held-out problems (with Holm's correction over the pairs).

Avg@k pools k samples of each held-out problem; samples of one problem are correlated, so
intervals that treat them as independent are narrower than the truth. The report says so.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence

Z95 = 1.959964


def wilson(successes: int, trials: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval for a proportion (stays inside [0, 1] at 0 or all successes)."""
    if trials <= 0:
        return 0.0, 1.0
    p = successes / trials
    denominator = 1 + z * z / trials
    centre = (p + z * z / (2 * trials)) / denominator
    half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def difference_interval(a: int, n_a: int, b: int, n_b: int, z: float = Z95) -> tuple[float, float]:
    """Newcombe's hybrid interval for p_a - p_b from the two Wilson intervals (no normal-approximation collapse at
    0 or 1)."""
    p_a, p_b = a / n_a, b / n_b
    low_a, high_a = wilson(a, n_a, z)
    low_b, high_b = wilson(b, n_b, z)
    delta = p_a - p_b
    return (delta - math.sqrt((p_a - low_a) ** 2 + (high_b - p_b) ** 2),
            delta + math.sqrt((high_a - p_a) ** 2 + (p_b - low_b) ** 2))


def ranks(values: Sequence[float]) -> list[float]:
    """1-based ranks, ties sharing their mean rank."""
    order = sorted(range(len(values)), key=lambda i: values[i])
    result = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for position in range(i, j + 1):
            result[order[position]] = (i + j) / 2 + 1
        i = j + 1
    return result


def spearman(x: Sequence[float], y: Sequence[float]) -> float | None:
    """Spearman's rank correlation (Pearson on tie-averaged ranks); None with fewer than 3 points or a constant
    side, where it means nothing."""
    if len(x) != len(y):
        raise ValueError(f"spearman: {len(x)} x values against {len(y)} y values")
    if len(x) < 3:
        return None
    rx, ry = ranks(x), ranks(y)
    mx, my = sum(rx) / len(rx), sum(ry) / len(ry)
    sxy = sum((a - mx) * (b - my) for a, b in zip(rx, ry, strict=True))
    sxx = sum((a - mx) ** 2 for a in rx)
    syy = sum((b - my) ** 2 for b in ry)
    if sxx == 0 or syy == 0:
        return None
    return sxy / math.sqrt(sxx * syy)


def paired_cluster_bootstrap(a: Mapping[str, Sequence[bool]], b: Mapping[str, Sequence[bool]], *,
                             resamples: int = 2000, seed: int = 0) -> tuple[float, float, float, float]:
    """(difference, low, high, p) of accuracy a - b on the same held-out problems, resampling whole problems with
    replacement (a problem's k samples move together, and each problem carries both arms: paired and clustered).
    p is two-sided: twice the smaller share of resampled differences on either side of 0 (at least 1/resamples)."""
    problems = sorted(set(a) & set(b))
    if not problems:
        raise ValueError("no held-out problem evaluated in both arms")
    right = [(sum(a[p]), len(a[p]), sum(b[p]), len(b[p])) for p in problems]

    def difference(rows) -> float:
        return sum(r[0] for r in rows) / sum(r[1] for r in rows) - sum(r[2] for r in rows) / sum(r[3] for r in rows)

    rng = random.Random(seed)
    draws = sorted(difference([right[rng.randrange(len(right))] for _ in right]) for _ in range(resamples))
    low, high = draws[int(0.025 * resamples)], draws[min(resamples - 1, int(0.975 * resamples))]
    below, above = sum(d <= 0 for d in draws), sum(d >= 0 for d in draws)
    p = min(1.0, max(2 * min(below, above), 1) / resamples)
    return difference(right), low, high, p


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of several p-values (family-wise error), in the order given."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [0.0] * len(p_values), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted
