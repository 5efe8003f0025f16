"""Summary statistics for score distributions. Pure functions, deterministic (seeded resampling)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence


def mean(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("mean of no values")
    return math.fsum(values) / len(values)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default), q in [0, 100]."""
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100.0
    low = math.floor(position)
    high = math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def bootstrap_mean_ci(
    values: Sequence[float], confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval for the mean. It makes no normality assumption, which matters for bounded,
    skewed similarity scores on a few dozen probes."""
    if not values:
        raise ValueError("interval of no values")
    if len(values) == 1:
        return values[0], values[0]
    rng = random.Random(seed)
    n = len(values)
    means = sorted(math.fsum(rng.choices(values, k=n)) / n for _ in range(resamples))
    tail = (1.0 - confidence) / 2.0
    return percentile(means, 100 * tail), percentile(means, 100 * (1 - tail))


def skill(model: Sequence[float], reference: Sequence[float]) -> float:
    """Share of the gap between the reference and a perfect score (1) that the model closes.

    0: no better than the reference; 1: perfect; negative: worse than the reference. Normalising by the reference's
    distance to perfect makes the figure comparable across metrics and log sets with different baselines.
    """
    if len(model) != len(reference) or not model:
        raise ValueError("skill needs paired, non-empty scores")
    base = mean(reference)
    return (mean(model) - base) / (1.0 - base) if base < 1.0 else 0.0


def paired_bootstrap_skill_ci(
    model: Sequence[float], reference: Sequence[float], confidence: float = 0.95, resamples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap over probes, resampling (model, reference) pairs together so the interval reflects how
    consistently the model beats the reference probe by probe, not the spread of either alone."""
    if len(model) != len(reference) or not model:
        raise ValueError("skill needs paired, non-empty scores")
    rng = random.Random(seed)
    n = len(model)
    values = []
    for _ in range(resamples):
        picks = [rng.randrange(n) for _ in range(n)]
        values.append(skill([model[i] for i in picks], [reference[i] for i in picks]))
    values.sort()
    tail = (1.0 - confidence) / 2.0
    return percentile(values, 100 * tail), percentile(values, 100 * (1 - tail))
