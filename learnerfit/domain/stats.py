"""The few statistics the study and the promotion gate use: proportions and their differences (Wilson, Newcombe),
rank correlation, accuracy intervals and paired differences between arms
by resampling held-out problems and training seeds (with Holm's correction over the pairs), and the power of the
comparison: the smallest difference it resolves.

Avg@k pools k samples of each held-out problem; samples of one problem are correlated, and two checkpoints trained on
one set with different seeds differ, so every interval resamples whole problems and then seeds rather than treating
samples as independent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


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


# One arm's held-out outcomes: per training seed, problem id -> whether each of its k samples was right (the base
# model, which is not trained, has one "seed").
Outcomes = Sequence[Mapping[str, Sequence[bool]]]


@dataclass(frozen=True)
class PairedDifference:
    difference: float   # accuracy a - b, each arm's accuracy the mean over its seeds
    low: float          # percentile interval (95% unless asked otherwise)
    high: float
    p: float            # two-sided
    se: float           # the resampled differences' standard deviation


def _problems(*arms: Outcomes) -> list[str]:
    if not all(arms):
        raise ValueError("an arm with no evaluated seed")
    problems = sorted(set.intersection(*(set(s) for arm in arms for s in arm)))
    if not problems:
        raise ValueError("no held-out problem evaluated in both arms" if len(arms) > 1 else "no held-out problem")
    return problems


def _resampled(arm: Outcomes, problems: Sequence[str], drawn, rng):
    """(observed accuracy, accuracy under each resample): the mean over the arm's seeds of its accuracy on the
    drawn problems, its seeds themselves drawn with replacement."""
    import numpy as np

    right = np.array([[sum(seed[p]) for p in problems] for seed in arm], dtype=float)
    asked = np.array([[len(seed[p]) for p in problems] for seed in arm], dtype=float)
    observed = float((right.sum(1) / asked.sum(1)).mean())
    per_seed = right[:, drawn].sum(-1) / asked[:, drawn].sum(-1)  # seeds x resamples
    seeds = rng.integers(0, len(arm), size=(drawn.shape[0], len(arm)))
    return observed, np.take_along_axis(per_seed.T, seeds, axis=1).mean(1)


def _percentiles(draws, resamples: int, level: float = 0.95) -> tuple[float, float]:
    import numpy as np

    ordered, tail = np.sort(draws), (1 - level) / 2
    return float(ordered[int(tail * resamples)]), float(ordered[min(resamples - 1, int((1 - tail) * resamples))])


def paired_cluster_bootstrap(a: Outcomes, b: Outcomes, *, resamples: int = 2000, seed: int = 0,
                             level: float = 0.95) -> PairedDifference:
    """Accuracy a - b on the same held-out problems, resampled in two stages: whole problems with replacement (a
    problem's k samples move together, and each problem carries both arms: paired and clustered), then each arm's
    training seeds with replacement (training noise: two checkpoints of one set differ). With one seed per arm the
    second stage changes nothing and the interval holds evaluation noise only. p is two-sided: twice the smaller
    share of resampled differences on either side of 0 (at least 1/resamples). `level`: the interval's coverage (a
    one-sided bound at 0.9 is the low end of the 0.8 interval)."""
    import numpy as np

    problems = _problems(a, b)
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, len(problems), size=(resamples, len(problems)))
    (observed_a, draws_a), (observed_b, draws_b) = _resampled(a, problems, drawn, rng), \
        _resampled(b, problems, drawn, rng)
    draws = draws_a - draws_b
    low, high = _percentiles(draws, resamples, level)
    below, above = int((draws <= 0).sum()), int((draws >= 0).sum())
    p = min(1.0, max(2 * min(below, above), 1) / resamples)
    return PairedDifference(observed_a - observed_b, low, high, p, float(draws.std()))


def accuracy_interval(arm: Outcomes, *, resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """(accuracy, low, high) of one arm, problems and seeds resampled as in paired_cluster_bootstrap."""
    import numpy as np

    problems = _problems(arm)
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, len(problems), size=(resamples, len(problems)))
    observed, draws = _resampled(arm, problems, drawn, rng)
    return (observed, *_percentiles(draws, resamples))


def detectable_difference(se: float, pairs: int, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true difference a pair compared with this standard error is resolved at `power`, testing at
    alpha / pairs (Bonferroni: Holm's first, strictest step): (z of 1 - alpha / 2 pairs + z of power) x se."""
    from statistics import NormalDist

    z = NormalDist().inv_cdf
    return (z(1 - alpha / (2 * max(pairs, 1))) + z(power)) * se


def planned_se(accuracy: float, problems: int, k: int, seeds: int, *, within_problem: float = 0.5,
               between_arms: float = 0.5, seed_sd: float = 0.03) -> float:
    """The standard error of a paired difference a study of this size should see, for planning (before a run):
    each arm's accuracy over `problems` x `k` samples, its samples of one problem correlated by `within_problem`,
    the two arms' per-problem accuracies correlated by `between_arms` (pairing), and a training seed's own spread
    `seed_sd` (measured on this machine, see docs/study.md) averaged over `seeds`."""
    per_problem = accuracy * (1 - accuracy) * (1 + (k - 1) * within_problem) / k
    evaluation = 2 * per_problem * (1 - between_arms) / problems
    return math.sqrt(evaluation + 2 * seed_sd ** 2 / seeds)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjustment of several p-values (family-wise error), in the order given."""
    order = sorted(range(len(p_values)), key=lambda i: p_values[i])
    adjusted, running = [0.0] * len(p_values), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted
