"""Drift between two arms over the same probes: is the candidate significantly worse than the baseline, and could
these probes have seen it if it were? Pure functions over two run records.

A baseline is a recorded arm (a run record). Probes pair by id, falling back to the fingerprint of their content, so
a renamed log still pairs; what pairs with nothing is counted, never dropped silently. Two arms scored by different
embedding models, labellers or scorers are refused, naming what differs.

Per metric, over the paired probes (a probe's mean over its samples is the unit): the mean difference (candidate minus
baseline) with a 95% bootstrap interval that resamples conversations (probes of one conversation move together), a
p-value (Wilcoxon signed-rank for scores and per-probe shares; exact McNemar for the flips of a yes/no property),
Holm-adjusted across the gated metrics, and the minimum detectable effect at this n from the clustered standard error
of the differences. Margins are how much worse a metric may get, in its own units and direction: a similarity or the
follow-up rate must not fall by more, the degenerate or echo rate must not rise by more. Verdicts:
- fail: the change is worse than the margin and significant after Holm;
- inconclusive: worse than the margin but not significant, or the minimum detectable effect is above the margin (the
  probes cannot tell; the verdict says how many probes would);
- pass: otherwise.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from utg_pytest import stats
from utg_pytest.model import ProbeResult
from utg_pytest.record import ProbeRecord, RunHeader, RunRecord
from utg_pytest.scoring.labels import DEGENERATE, GENUINE, LABELS
from utg_pytest.scoring.references import REFERENCES
from utg_pytest.scoring.scorers import LEXICAL, SEMANTIC
from utg_pytest.settings import DriftSettings

SEED = 0
"""Seed of the paired bootstrap, reported with every comparison."""


@dataclass(frozen=True)
class DriftMetric:
    name: str
    label: str
    higher_is_better: bool
    margin: float
    """Default margin: how much worse it may get."""
    measure: Callable[[ProbeResult], float | None]
    """The metric on one probe (None where it does not apply, e.g. an unjudged prediction)."""
    binary: Callable[[ProbeResult], bool] | None = None
    """For a yes/no property measured once per probe: McNemar on its flips."""


def _samples(result: ProbeResult) -> list[ProbeResult]:
    return [s for s in result.samples if s.ok] if result.samples else [result]


def _score(metric: str) -> Callable[[ProbeResult], float | None]:
    return lambda result: result.scores.get(metric)


def _label_share(label: str) -> Callable[[ProbeResult], float | None]:
    def share(result: ProbeResult) -> float | None:
        labels = [s.label for s in _samples(result) if s.label is not None]
        return labels.count(label) / len(labels) if labels else None

    return share


def _echo_share(result: ProbeResult) -> float | None:
    done = _samples(result)
    return sum(s.echo for s in done) / len(done) if done else None


DRIFT_METRICS: tuple[DriftMetric, ...] = (
    DriftMetric(SEMANTIC, "mean semantic similarity", True, 0.03, _score(SEMANTIC)),
    DriftMetric(LEXICAL, "mean lexical similarity", True, 0.03, _score(LEXICAL)),
    DriftMetric(
        "followup_rate", "genuine follow-up rate", True, 0.05, _label_share(GENUINE), lambda r: r.label == GENUINE
    ),
    DriftMetric(
        "degenerate_rate", "degenerate rate", False, 0.05, _label_share(DEGENERATE), lambda r: r.label == DEGENERATE
    ),
    DriftMetric("echo_rate", "echo rate", False, 0.05, _echo_share, lambda r: r.echo),
)
BY_NAME = {metric.name: metric for metric in DRIFT_METRICS}


def drift_metrics(scorers: Iterable[str] = ()) -> tuple[DriftMetric, ...]:
    """The gated drift metrics of runs scored by `scorers`: the built-in five, then the mean of each scorer a plugin
    registered (higher is better, default margin 0.03)."""
    extra = [name for name in scorers if name not in (SEMANTIC, LEXICAL) and name not in BY_NAME]
    return DRIFT_METRICS + tuple(DriftMetric(name, f"mean {name}", True, 0.03, _score(name)) for name in extra)


VERDICTS = ("pass", "inconclusive", "fail")


class IncomparableError(ValueError):
    """The two arms were scored differently; the message names what differs."""


@dataclass(frozen=True)
class Pair:
    probe_id: str
    conversation: str
    """Cluster of the bootstrap: probes of one conversation are not independent."""
    base: ProbeRecord
    new: ProbeRecord


@dataclass(frozen=True)
class Alignment:
    pairs: tuple[Pair, ...]
    by_fingerprint: int
    """Pairs whose ids differ, joined on the content fingerprint."""
    only_base: int
    only_new: int


COMPARED_FIELDS = {
    "embedding_model": "embedding model",
    "labeller": "labeller",
    "scorers": "scorers (and their versions)",
}


def incompatibilities(base: RunHeader, new: RunHeader) -> list[str]:
    return [
        f"{what}: baseline {getattr(base, field)!r}, candidate {getattr(new, field)!r}"
        for field, what in COMPARED_FIELDS.items()
        if getattr(base, field) != getattr(new, field)
    ]


def align(base: RunRecord, new: RunRecord) -> Alignment:
    ours = {p.probe_id: p for p in new.probes}
    by_content = {p.fingerprint: p for p in new.probes if p.fingerprint}
    used: set[str] = set()
    pairs: list[Pair] = []
    fallback = 0
    for probe in base.probes:
        found = ours.get(probe.probe_id)
        if found is None and probe.fingerprint:
            found = by_content.get(probe.fingerprint)
            fallback += found is not None
        if found is None or found.probe_id in used:
            continue
        used.add(found.probe_id)
        pairs.append(Pair(found.probe_id, f"{found.source}::{found.conversation_id}", probe, found))
    return Alignment(tuple(pairs), fallback, len(base.probes) - len(pairs), len(new.probes) - len(pairs))


@dataclass(frozen=True)
class Drift:
    metric: str
    label: str
    n: int
    base: float | None
    new: float | None
    difference: float | None
    """Candidate minus baseline."""
    ci_low: float | None
    ci_high: float | None
    p: float | None
    p_adjusted: float | None
    mde: float | None
    margin: float
    needed: int | None
    """Probes at which the margin would be the minimum detectable effect."""
    higher_is_better: bool
    verdict: str
    detail: str

    @property
    def worsening(self) -> float | None:
        """How much worse the candidate is, in the metric's units (negative: better)."""
        if self.difference is None:
            return None
        return -self.difference if self.higher_is_better else self.difference


@dataclass(frozen=True)
class Regression:
    probe_id: str
    target: str
    base_prediction: str | None
    new_prediction: str | None
    change: float
    """Change of semantic similarity to the real turn, candidate minus baseline."""


@dataclass(frozen=True)
class Comparison:
    alignment: Alignment
    drifts: tuple[Drift, ...]
    transitions: dict[str, dict[str, int]]
    """Baseline label -> candidate label -> probes."""
    label_rates: dict[str, tuple[float, float]]
    """Each label's rate in the baseline and the candidate, over the probes labelled in both."""
    regressions: tuple[Regression, ...]
    """Paired probes by how much their semantic similarity fell, worst first."""
    alpha: float
    seed: int
    skill: Drift | None = None
    """The change in skill (semantic similarity minus the best reference's, per probe), reported next to the gates,
    not gated: the references are the same in both arms, so its change is the semantic change, but its levels say
    whether either arm beats a parrot at all."""

    def drift(self, metric: str) -> Drift:
        return next(d for d in self.drifts if d.metric == metric)

    @property
    def failed(self) -> bool:
        return any(d.verdict == "fail" for d in self.drifts)


def _paired(pairs: Sequence[Pair], metric: DriftMetric) -> tuple[list[float], list[float], list[str]]:
    base, new, clusters = [], [], []
    for pair in pairs:
        if not (pair.base.result.ok and pair.new.result.ok):
            continue
        one, other = metric.measure(pair.base.result), metric.measure(pair.new.result)
        if one is None or other is None:
            continue
        base.append(one)
        new.append(other)
        clusters.append(pair.conversation)
    return base, new, clusters


def _p_value(pairs: Sequence[Pair], metric: DriftMetric, differences: Sequence[float]) -> float:
    done = [p for p in pairs if p.base.result.ok and p.new.result.ok]
    if metric.binary is not None and not any(p.base.result.samples or p.new.result.samples for p in done):
        kept = [
            p for p in done if metric.measure(p.base.result) is not None and metric.measure(p.new.result) is not None
        ]
        lost = sum(1 for p in kept if metric.binary(p.base.result) and not metric.binary(p.new.result))
        gained = sum(1 for p in kept if metric.binary(p.new.result) and not metric.binary(p.base.result))
        return stats.mcnemar_p(lost, gained) if metric.higher_is_better else stats.mcnemar_p(gained, lost)
    return stats.wilcoxon_p(differences)


def measure(
    pairs: Sequence[Pair], metric: DriftMetric, margin: float, alpha: float, seed: int
) -> tuple[Drift, float | None]:
    """A metric's paired change over `pairs`, with its unadjusted p-value (None where nothing paired); its verdict
    waits for the correction across the family it is tested in (`decide`)."""
    base, new, clusters = _paired(pairs, metric)
    if not base:
        drift = Drift(
            metric.name, metric.label, 0, None, None, None, None, None, None, None, None, margin, None,
            metric.higher_is_better, "inconclusive", "no probe has this metric in both arms",
        )  # fmt: skip
        return drift, None
    differences = [b - a for a, b in zip(base, new, strict=True)]
    low, high = stats.clustered_bootstrap_mean_ci(differences, clusters, seed=seed)
    error = stats.clustered_standard_error(differences, clusters)
    mde = stats.minimum_detectable_effect(error, alpha)
    p = _p_value(pairs, metric, differences)
    drift = Drift(
        metric.name,
        metric.label,
        len(differences),
        stats.mean(base),
        stats.mean(new),
        stats.mean(differences),
        low,
        high,
        p,
        None,
        mde,
        margin,
        stats.probes_needed(error, len(differences), margin, alpha),
        metric.higher_is_better,
        "pass",
        "",
    )
    return drift, p


def decide(drift: Drift, alpha: float) -> Drift:
    """The verdict of a measured drift whose p-value was adjusted for its family."""
    worse = drift.worsening
    if worse is None or drift.p_adjusted is None or drift.mde is None:
        return drift
    significant = drift.p_adjusted < alpha and worse > 0
    needed = f"; about {drift.needed} probes would detect {drift.margin:g}" if drift.needed else ""
    if significant and worse > drift.margin:
        return replace(drift, verdict="fail", detail=f"worse by {worse:.3f}, more than the margin {drift.margin:g}")
    if worse > drift.margin:
        detail = f"worse by {worse:.3f}, more than the margin {drift.margin:g}, but not significant{needed}"
        return replace(drift, verdict="inconclusive", detail=detail)
    if drift.mde > drift.margin:
        detail = f"these probes cannot see a change of {drift.margin:g} (minimum detectable {drift.mde:.3f}){needed}"
        return replace(drift, verdict="inconclusive", detail=detail)
    return replace(drift, verdict="pass", detail="")


def _transitions(pairs: Sequence[Pair]) -> dict[str, dict[str, int]]:
    counts = Counter(
        (p.base.result.label, p.new.result.label)
        for p in pairs
        if p.base.result.label is not None and p.new.result.label is not None
    )
    return {
        a: {b: counts[(a, b)] for b in LABELS if counts[(a, b)]} for a in LABELS if any(counts[(a, b)] for b in LABELS)
    }


def _label_rates(pairs: Sequence[Pair]) -> dict[str, tuple[float, float]]:
    labelled = [p for p in pairs if p.base.result.label is not None and p.new.result.label is not None]
    if not labelled:
        return {}
    n = len(labelled)
    return {
        label: (
            sum(p.base.result.label == label for p in labelled) / n,
            sum(p.new.result.label == label for p in labelled) / n,
        )
        for label in LABELS
    }


def _regressions(pairs: Sequence[Pair]) -> tuple[Regression, ...]:
    found = []
    for pair in pairs:
        base, new = pair.base.result, pair.new.result
        if SEMANTIC in base.scores and SEMANTIC in new.scores:
            change = new.scores[SEMANTIC] - base.scores[SEMANTIC]
            found.append(Regression(pair.probe_id, pair.new.target, base.prediction, new.prediction, change))
    return tuple(sorted(found, key=lambda r: (r.change, r.probe_id)))


def _skill_metric(pairs: Sequence[Pair]) -> DriftMetric | None:
    """Skill against the reference that predicts best on these probes (highest mean semantic similarity)."""
    done = [p.base.result for p in pairs if p.base.result.ok and p.new.result.ok]
    names = [name for name in REFERENCES if done and all(name in r.references for r in done)]
    if not names:
        return None
    best = max(names, key=lambda name: stats.mean([r.references[name][SEMANTIC] for r in done]))

    def skill(result: ProbeResult) -> float | None:
        found = result.scores.get(SEMANTIC)
        reference = result.references.get(best, {}).get(SEMANTIC)
        return None if found is None or reference is None else found - reference

    return DriftMetric("skill", f"semantic skill over the {best} reference", True, 0.0, skill)


def compare(
    base: RunRecord,
    new: RunRecord,
    margins: Mapping[str, float] | None = None,
    alpha: float = 0.05,
    seed: int = SEED,
) -> Comparison:
    """The candidate `new` against the `base` arm. Every metric of DRIFT_METRICS is gated, with its margin from
    `margins` or its default."""
    problems = incompatibilities(base.header, new.header)
    if problems:
        raise IncomparableError(
            "the two runs were scored differently, so their scores cannot be compared: " + "; ".join(problems)
        )
    alignment = align(base, new)
    measured = [
        measure(alignment.pairs, metric, (margins or {}).get(metric.name, metric.margin), alpha, seed)
        for metric in drift_metrics(new.header.scorers)
    ]
    tested = {i: p for i, (_, p) in enumerate(measured) if p is not None}
    adjusted = stats.holm(list(tested.values()))
    drifts = [drift for drift, _ in measured]
    for i, value in zip(tested, adjusted, strict=True):
        drifts[i] = decide(replace(drifts[i], p_adjusted=value), alpha)
    skill_metric = _skill_metric(alignment.pairs)
    skill = None
    if skill_metric is not None:
        measured_skill, _ = measure(alignment.pairs, skill_metric, 0.0, alpha, seed)
        skill = replace(measured_skill, verdict="reported", detail="reported, not gated")
    return Comparison(
        alignment,
        tuple(drifts),
        _transitions(alignment.pairs),
        _label_rates(alignment.pairs),
        _regressions(alignment.pairs),
        alpha,
        seed,
        skill,
    )


def margin_problem(names: Sequence[str], scorers: Iterable[str] = ()) -> str | None:
    """What is wrong with the metric names of a set of margins (--utg-max-drop), or None."""
    known = [metric.name for metric in drift_metrics(scorers)]
    unknown = [name for name in names if name not in known]
    if not unknown:
        return None
    return f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(known)}"


def judge(base: RunRecord, new: RunRecord, settings: DriftSettings) -> Comparison | str:
    """The comparison as the drift settings ask for it, or why the two runs cannot be compared."""
    try:
        return compare(base, new, dict(settings.max_drop), settings.alpha)
    except IncomparableError as exc:
        return str(exc)
