"""Summary statistics for score distributions. Pure functions, deterministic (seeded resampling)."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

Z95 = 1.959963984540054
"""Two-sided 95% quantile of the standard normal."""


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


RESAMPLES = 2000
BATCH_ELEMENTS = 2_000_000
"""Resampled indices drawn per batch: bounds memory (16 MB) whatever the number of probes."""


def _resample(statistic: Callable[[Any], Any], n: int, resamples: int, seed: int) -> Any:
    """`statistic` maps a (k, n) array of resampled indices to k values; returns all `resamples` values."""
    import numpy as np

    rng = np.random.default_rng(seed)
    per_batch = max(1, BATCH_ELEMENTS // n)
    batches = []
    for start in range(0, resamples, per_batch):
        batches.append(statistic(rng.integers(0, n, size=(min(per_batch, resamples - start), n))))
    return np.concatenate(batches)


def _interval(values: Any, confidence: float) -> tuple[float, float]:
    import numpy as np

    tail = 100 * (1.0 - confidence) / 2.0
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def bootstrap_mean_ci(
    values: Sequence[float], confidence: float = 0.95, resamples: int = RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval for the mean. It makes no normality assumption, which matters for bounded,
    skewed similarity scores on a few dozen probes."""
    import numpy as np

    if not values:
        raise ValueError("interval of no values")
    if len(values) == 1:
        return values[0], values[0]
    data = np.asarray(values, dtype=float)
    return _interval(_resample(lambda picks: data[picks].mean(axis=1), len(data), resamples, seed), confidence)


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
    model: Sequence[float],
    reference: Sequence[float],
    confidence: float = 0.95,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap over probes, resampling (model, reference) pairs together so the interval reflects how
    consistently the model beats the reference probe by probe, not the spread of either alone."""
    import numpy as np

    if len(model) != len(reference) or not model:
        raise ValueError("skill needs paired, non-empty scores")
    ours = np.asarray(model, dtype=float)
    theirs = np.asarray(reference, dtype=float)

    def statistic(picks: Any) -> Any:
        gained = ours[picks].mean(axis=1)
        base = theirs[picks].mean(axis=1)
        headroom = 1.0 - base
        return np.where(headroom > 0, (gained - base) / np.where(headroom > 0, headroom, 1.0), 0.0)

    return _interval(_resample(statistic, len(ours), resamples, seed), confidence)


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float]:
    """Wilson score interval of a proportion: unlike the normal approximation it stays inside [0, 1] and is sensible
    for rates near 0 or 1, which is where follow-up rates of small models under greedy decoding sit."""
    if n <= 0:
        return 0.0, 1.0
    if not 0 <= successes <= n:
        raise ValueError(f"successes {successes} outside 0..{n}")
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    # At k = 0 or k = n one bound is exactly 0 or 1; rounding must not move it past the observed rate.
    low = 0.0 if successes == 0 else max(0.0, centre - half)
    high = 1.0 if successes == n else min(1.0, centre + half)
    return low, high
