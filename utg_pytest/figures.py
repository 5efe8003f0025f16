"""The statistics of a run, computed once from its results: what the gates judge and what every report shows.

Pure functions over ProbeResults. Intervals come from seeded resampling, so the same results in the same order give
the same figures: a record read back, or merged from shards, shows exactly what the live run showed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from utg_pytest import stats
from utg_pytest.controls import Gap, SweepRow, grounding_gaps, sweep_row
from utg_pytest.cost import Usage
from utg_pytest.model import ProbeResult
from utg_pytest.scoring.labels import GENUINE, LABELS
from utg_pytest.scoring.skill import SkillReport, echo_count, skill_report


@dataclass(frozen=True)
class Distribution:
    n: int
    mean: float
    ci_low: float
    ci_high: float
    p10: float
    p50: float
    p90: float


@dataclass(frozen=True)
class Rate:
    """A share of predictions, with its 95% interval and what it was counted over."""

    value: float
    ci_low: float
    ci_high: float
    n: int
    count: int
    """Predictions with the property (for a mean of per-probe shares: their sum, rounded)."""
    per_probe: bool = False
    """The mean over probes of the share of their samples (several samples per probe), with a bootstrap interval
    over probes; otherwise a count over predictions with a Wilson interval."""


@dataclass(frozen=True)
class Plausibility:
    labelled_by: str
    followup: Rate | None
    labels: dict[str, int]
    unjudged: int
    first_unjudged: str | None
    mean_plausibility: float | None
    rated: int


@dataclass(frozen=True)
class Figures:
    results: int
    scored: int
    cached: int
    similarity: dict[str, Distribution]
    """Mean and spread of each metric over the predictions."""
    skill: dict[str, SkillReport]
    """The model against the reference predictors, per metric."""
    echo: Rate | None
    plausibility: Plausibility
    sweep: tuple[SweepRow, ...]
    gaps: tuple[Gap, ...]
    spent: Usage
    replayed: Usage
    judge_tokens: int

    @property
    def failed(self) -> int:
        return self.results - self.scored


def distribution(values: Sequence[float]) -> Distribution:
    low, high = stats.bootstrap_mean_ci(values)
    return Distribution(
        len(values),
        stats.mean(values),
        low,
        high,
        stats.percentile(values, 10),
        stats.percentile(values, 50),
        stats.percentile(values, 90),
    )


def _labelled(result: ProbeResult) -> bool:
    return any(s.label is not None for s in result.samples) if result.samples else result.label is not None


def _genuine_share(result: ProbeResult) -> float:
    labels = [s.label for s in result.samples if s.ok and s.label is not None] if result.samples else [result.label]
    return labels.count(GENUINE) / len(labels)


def followup_rate(scored: Sequence[ProbeResult]) -> Rate | None:
    """Share of labelled predictions that are genuine follow-ups. With one sample per probe the interval is Wilson's;
    with several, samples of one probe are not independent, so the rate is the mean of per-probe shares and its
    interval a bootstrap over probes."""
    shares = [_genuine_share(r) for r in scored if _labelled(r)]
    if not shares:
        return None
    if any(r.samples for r in scored):
        low, high = stats.bootstrap_mean_ci(shares)
        return Rate(stats.mean(shares), low, high, len(shares), round(sum(shares)), per_probe=True)
    genuine = round(sum(shares))
    low, high = stats.wilson_interval(genuine, len(shares))
    return Rate(genuine / len(shares), low, high, len(shares), genuine)


def _plausibility(scored: Sequence[ProbeResult]) -> Plausibility:
    labels = [r.label for r in scored if r.label is not None]
    unjudged = [r for r in scored if not _labelled(r)]
    ratings = [r.plausibility for r in scored if r.plausibility is not None]
    return Plausibility(
        labelled_by=scored[0].labelled_by if scored else "heuristic",
        followup=followup_rate(scored),
        labels={label: labels.count(label) for label in LABELS if label in labels},
        unjudged=len(unjudged),
        first_unjudged=unjudged[0].unjudged if unjudged else None,
        mean_plausibility=stats.mean(ratings) if ratings else None,
        rated=len(ratings),
    )


def _echo(scored: Sequence[ProbeResult]) -> Rate | None:
    echoes, n = echo_count(scored)
    if not n:
        return None
    low, high = stats.wilson_interval(echoes, n)
    return Rate(echoes / n, low, high, n, echoes)


def compute(
    results: Sequence[ProbeResult],
    metrics: Sequence[str],
    temperature: float,
    sweep: Mapping[float, Sequence[ProbeResult]] | None = None,
    perturbed: Sequence[ProbeResult] = (),
) -> Figures:
    """`results` are the run's, at its own `temperature`; `sweep` holds the results at each other temperature and
    `perturbed` those of the shuffle control."""
    scored = [r for r in results if r.ok]
    similarity = {m: distribution([r.scores[m] for r in scored]) for m in metrics if scored}
    skill = {m: found for m in metrics if (found := skill_report(scored, m)) is not None}
    rows: tuple[SweepRow, ...] = ()
    if sweep:
        runs = {temperature: results, **sweep}
        rows = tuple(sweep_row(t, runs[t]) for t in sorted(runs))
    return Figures(
        results=len(results),
        scored=len(scored),
        cached=sum(r.cached for r in scored),
        similarity=similarity,
        skill=skill,
        echo=_echo(scored),
        plausibility=_plausibility(scored),
        sweep=rows,
        gaps=tuple(grounding_gaps(results, perturbed)) if perturbed else (),
        spent=sum((Usage(r.prompt_tokens, r.completion_tokens) for r in scored if not r.cached), Usage()),
        replayed=sum((Usage(r.prompt_tokens, r.completion_tokens) for r in scored if r.cached), Usage()),
        judge_tokens=sum(r.judge_tokens for r in results),
    )
