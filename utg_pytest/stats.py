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


def clustered_bootstrap_mean_ci(
    values: Sequence[float],
    clusters: Sequence[str],
    confidence: float = 0.95,
    resamples: int = RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of a mean that resamples whole clusters (conversations): probes of one
    conversation share their context and move together, so resampling them one by one understates the spread."""
    import numpy as np

    if not values:
        raise ValueError("interval of no values")
    if len(values) != len(clusters):
        raise ValueError("one cluster per value")
    names = sorted(set(clusters))
    if len(names) == 1:
        return bootstrap_mean_ci(values, confidence, resamples, seed)
    index = {name: i for i, name in enumerate(names)}
    groups = np.asarray([index[c] for c in clusters])
    sums = np.bincount(groups, weights=np.asarray(values, dtype=float), minlength=len(names))
    counts = np.bincount(groups, minlength=len(names)).astype(float)

    def statistic(picks: Any) -> Any:
        return sums[picks].sum(axis=1) / counts[picks].sum(axis=1)

    return _interval(_resample(statistic, len(names), resamples, seed), confidence)


def clustered_standard_error(values: Sequence[float], clusters: Sequence[str]) -> float:
    """Standard error of a mean with observations correlated within clusters (the sandwich form with the G/(G-1)
    small-sample factor); with one observation per cluster it is the usual s/sqrt(n)."""
    n = len(values)
    if n < 2:
        return math.inf
    centre = mean(values)
    totals: dict[str, float] = {}
    for value, cluster in zip(values, clusters, strict=True):
        totals[cluster] = totals.get(cluster, 0.0) + (value - centre)
    groups = len(totals)
    if groups < 2:
        return math.inf
    return math.sqrt(groups / (groups - 1) * math.fsum(t * t for t in totals.values())) / n


def wilcoxon_p(differences: Sequence[float]) -> float:
    """Two-sided p-value of the Wilcoxon signed-rank test that paired differences centre on zero; zero differences
    are dropped (Wilcoxon's own treatment). No non-zero difference: 1."""
    from scipy.stats import wilcoxon

    nonzero = [d for d in differences if d != 0.0]
    if not nonzero:
        return 1.0
    return float(wilcoxon(nonzero, zero_method="wilcox", alternative="two-sided").pvalue)


def mcnemar_p(worse: int, better: int) -> float:
    """Exact McNemar: two-sided binomial test on the discordant pairs (a probe that lost the property against one
    that gained it), exact because the discordant counts are small at a few hundred probes."""
    from scipy.stats import binomtest

    flips = worse + better
    if flips == 0:
        return 1.0
    return float(binomtest(worse, flips, 0.5, alternative="two-sided").pvalue)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-adjusted p-values, in the order given: family-wise error at most alpha when each is compared with it."""
    order = sorted(range(len(pvalues)), key=lambda i: pvalues[i])
    adjusted = [1.0] * len(pvalues)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(pvalues) - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def z_quantile(p: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(p)


def minimum_detectable_effect(standard_error: float, alpha: float = 0.05, power: float = 0.8) -> float:
    """The smallest true difference a two-sided test at `alpha` detects with probability `power`, given the standard
    error of the observed mean difference: (z_{1-alpha/2} + z_power) * SE."""
    return (z_quantile(1 - alpha / 2) + z_quantile(power)) * standard_error


def probes_needed(standard_error: float, n: int, effect: float, alpha: float = 0.05, power: float = 0.8) -> int | None:
    """Probes (with the same design) at which `effect` becomes the minimum detectable effect, as SE shrinks with
    1/sqrt(n); None when the spread is unknown (fewer than two conversations)."""
    if effect <= 0 or not math.isfinite(standard_error):
        return None
    spread = standard_error * math.sqrt(n)
    return math.ceil(((z_quantile(1 - alpha / 2) + z_quantile(power)) * spread / effect) ** 2)


def shortfall_p(values: Sequence[float], clusters: Sequence[str], threshold: float, below: bool = True) -> float | None:
    """One-sided p-value that the mean of `values` is really below `threshold` (above it, with `below` False), from
    the conversation-clustered standard error and a t distribution on (conversations - 1) degrees of freedom: how
    surprising the observed shortfall is if the slice in fact met its threshold. None with fewer than two clusters,
    where nothing can be said."""
    from scipy.stats import t

    error = clustered_standard_error(values, clusters)
    groups = len(set(clusters))
    if groups < 2 or not math.isfinite(error):
        return None
    shift = mean(values) - threshold
    if error == 0.0:
        return 0.0 if (shift < 0 if below else shift > 0) else 1.0
    statistic = shift / error if below else -shift / error
    return float(t.cdf(statistic, groups - 1))
