"""Gates: what must hold, per probe and over the run, for the model to pass. Pure functions over results."""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from utg_pytest import stats
from utg_pytest.model import GateVerdict, Probe, ProbeResult
from utg_pytest.scoring.labels import GENUINE
from utg_pytest.scoring.skill import echo_count, skill_report
from utg_pytest.settings import Settings

METRICS = ("semantic", "lexical")
SKILL_METRIC = "semantic"
"""The skill gate judges meaning; lexical skill is reported beside it."""

PROBE_THRESHOLD_METRIC = {"min_probe_similarity": "semantic", "min_probe_lexical": "lexical"}

COMPARE: dict[str, Callable[[float, float], bool]] = {">=": operator.ge, ">": operator.gt, "<=": operator.le}

NOTHING_SCORED = "no probe produced a prediction"


@dataclass(frozen=True)
class Measurement:
    value: float | None
    n: int
    label: str
    ci: tuple[float, float] | None = None
    detail: str = ""


@dataclass(frozen=True)
class Evidence:
    """What the gates judge: the run's results, and the results of control runs when there are any."""

    results: Sequence[ProbeResult]
    perturbed: Sequence[ProbeResult] = ()


@dataclass(frozen=True)
class Gate:
    name: str
    option: str
    comparison: str
    threshold: float
    measure: Callable[[Evidence], Measurement]


def _errors_note(results: Sequence[ProbeResult]) -> str:
    errors = sum(1 for r in results if not r.ok)
    return f"{errors} probe(s) without a prediction excluded" if errors else ""


def mean_similarity(metric: str) -> Callable[[Evidence], Measurement]:
    def measure(evidence: Evidence) -> Measurement:
        results = evidence.results
        label = f"mean {metric} similarity"
        values = [r.scores[metric] for r in results if r.ok]
        if not values:
            return Measurement(None, 0, label, detail=NOTHING_SCORED)
        return Measurement(
            stats.mean(values), len(values), label, stats.bootstrap_mean_ci(values), _errors_note(results)
        )

    return measure


def skill(evidence: Evidence) -> Measurement:
    results = evidence.results
    report = skill_report(results, SKILL_METRIC)
    if report is None:
        return Measurement(None, 0, f"{SKILL_METRIC} skill", detail=NOTHING_SCORED)
    label = f"{SKILL_METRIC} skill vs best reference ({report.best} {report.references[report.best]:.3f})"
    return Measurement(report.skill, report.n, label, (report.ci_low, report.ci_high), _errors_note(results))


def echo_rate(evidence: Evidence) -> Measurement:
    results = evidence.results
    echoes, n = echo_count(results)
    if not n:
        return Measurement(None, 0, "echo rate", detail=NOTHING_SCORED)
    detail = f"{echoes} prediction(s) near-copy the assistant's last message"
    return Measurement(
        echoes / n,
        n,
        "echo rate",
        stats.wilson_interval(echoes, n),
        detail="; ".join(filter(None, [detail, _errors_note(results)])),
    )


def followup_rate(evidence: Evidence) -> Measurement:
    """Share of labelled predictions that are genuine follow-ups. With one sample per probe the interval is Wilson's;
    with several, samples of one probe are not independent, so the rate is the mean of per-probe shares and its
    interval a bootstrap over probes."""
    results = [r for r in evidence.results if r.ok]
    label = "genuine follow-up rate"
    unjudged = sum(1 for r in results if not _labelled(r))
    shares = [_genuine_share(r) for r in results if _labelled(r)]
    if not shares:
        detail = f"no prediction was labelled ({unjudged} unjudged)" if unjudged else NOTHING_SCORED
        return Measurement(None, 0, label, detail=detail)
    notes = [_errors_note(evidence.results)] + ([f"{unjudged} unjudged excluded"] if unjudged else [])
    if any(r.samples for r in results):
        rate = stats.mean(shares)
        detail = "; ".join(filter(None, ["mean over probes of the genuine share of their samples", *notes]))
        return Measurement(rate, len(shares), label, stats.bootstrap_mean_ci(shares), detail)
    genuine = round(sum(shares))
    detail = "; ".join(filter(None, [f"{genuine} genuine follow-up(s)", *notes]))
    return Measurement(genuine / len(shares), len(shares), label, stats.wilson_interval(genuine, len(shares)), detail)


def _labelled(result: ProbeResult) -> bool:
    return any(s.label is not None for s in result.samples) if result.samples else result.label is not None


def _genuine_share(result: ProbeResult) -> float:
    labels = [s.label for s in result.samples if s.ok and s.label is not None] if result.samples else [result.label]
    return labels.count(GENUINE) / len(labels)


def grounding_gap(evidence: Evidence) -> Measurement:
    from utg_pytest.controls import grounding_gaps

    label = "semantic grounding gap (real minus shuffled assistant turn)"
    found = next((g for g in grounding_gaps(evidence.results, evidence.perturbed) if g.metric == "semantic"), None)
    if found is None:
        return Measurement(None, 0, label, detail="no probe has a prediction under both contexts")
    detail = f"similarity to the real turn {found.real:.3f} with the real context, {found.perturbed:.3f} shuffled"
    return Measurement(found.gap, found.n, label, (found.ci_low, found.ci_high), detail)


def run_gates(settings: Settings) -> list[Gate]:
    found = [
        Gate("semantic_similarity", "--utg-min-similarity", ">=", settings.min_similarity, mean_similarity("semantic")),
        Gate("lexical_similarity", "--utg-min-lexical", ">=", settings.min_lexical, mean_similarity("lexical")),
        Gate("skill", "--utg-min-skill", ">", settings.min_skill, skill),
        Gate("echo_rate", "--utg-max-echo-rate", "<=", settings.max_echo_rate, echo_rate),
        Gate("followup_rate", "--utg-min-followup-rate", ">=", settings.min_followup_rate, followup_rate),
    ]
    if settings.control == "shuffle":
        found.append(Gate("grounding_gap", "--utg-min-grounding-gap", ">", settings.min_grounding_gap, grounding_gap))
    return found


def evaluate(gate: Gate, evidence: Evidence, gate_on: str = "point") -> GateVerdict:
    """A gate with nothing to measure fails: no evidence is not a pass. With `gate_on` "lower", a gate that has an
    interval must pass on its conservative bound: the lower one for a minimum, the upper one for a maximum."""
    measured = gate.measure(evidence)
    low, high = measured.ci if measured.ci else (None, None)
    basis, compared = "point", measured.value
    if gate_on == "lower" and measured.ci is not None:
        basis, compared = ("upper bound", high) if gate.comparison == "<=" else ("lower bound", low)
    passed = compared is not None and COMPARE[gate.comparison](compared, gate.threshold)
    return GateVerdict(
        gate.name,
        measured.label,
        measured.value,
        gate.comparison,
        gate.threshold,
        passed,
        measured.n,
        ci_low=low,
        ci_high=high,
        detail=measured.detail,
        basis=basis,
    )


def probe_thresholds(probe: Probe, settings: Settings) -> dict[str, float]:
    """Per-probe minimums by metric: the run's opt-in values, overridden by the conversation's metadata."""
    configured = {
        "min_probe_similarity": settings.min_probe_similarity,
        "min_probe_lexical": settings.min_probe_lexical,
    }
    merged = {key: value for key, value in configured.items() if value is not None}
    merged.update(probe.thresholds)
    return {PROBE_THRESHOLD_METRIC[key]: value for key, value in merged.items()}


def _shortfalls(scores: dict[str, float], thresholds: dict[str, float]) -> list[str]:
    return [
        f"{metric} similarity {scores[metric]:.3f} < {minimum:.3f}"
        for metric, minimum in thresholds.items()
        if scores[metric] < minimum
    ]


def probe_shortfalls(result: ProbeResult, thresholds: dict[str, float], min_pass_rate: float = 0.5) -> list[str]:
    """Why the probe fails its per-probe thresholds; empty when it passes. With several samples, the probe passes when
    at least `min_pass_rate` of the samples that produced a prediction meet every threshold."""
    if not result.samples:
        return _shortfalls(result.scores, thresholds)
    done = [s for s in result.samples if s.ok]
    if not thresholds or not done:
        return []
    passing = sum(1 for s in done if not _shortfalls(s.scores, thresholds))
    if passing / len(done) >= min_pass_rate:
        return []
    return [f"{passing}/{len(done)} samples met the per-probe thresholds; at least {min_pass_rate:.0%} must"]
