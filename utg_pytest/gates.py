"""Gates: what must hold, per probe and over the run, for the model to pass. Pure functions over a run's figures and
a probe's result."""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass

from utg_pytest.figures import Figures
from utg_pytest.model import GateVerdict, Probe, ProbeResult
from utg_pytest.scoring.scorers import LEXICAL, SEMANTIC
from utg_pytest.settings import GateSettings

SKILL_METRIC = SEMANTIC
"""The skill gate judges meaning; lexical skill is reported beside it."""

PROBE_THRESHOLD_METRIC = {"min_probe_similarity": SEMANTIC, "min_probe_lexical": LEXICAL}

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
class Gate:
    name: str
    option: str
    comparison: str
    threshold: float
    measure: Callable[[Figures], Measurement]


def _errors_note(figures: Figures) -> str:
    return f"{figures.failed} probe(s) without a prediction excluded" if figures.failed else ""


def _notes(*parts: str) -> str:
    return "; ".join(part for part in parts if part)


def mean_similarity(metric: str) -> Callable[[Figures], Measurement]:
    def measure(figures: Figures) -> Measurement:
        label = f"mean {metric} similarity"
        found = figures.similarity.get(metric)
        if found is None:
            return Measurement(None, 0, label, detail=NOTHING_SCORED)
        return Measurement(found.mean, found.n, label, (found.ci_low, found.ci_high), _errors_note(figures))

    return measure


def skill(figures: Figures) -> Measurement:
    report = figures.skill.get(SKILL_METRIC)
    if report is None:
        return Measurement(None, 0, f"{SKILL_METRIC} skill", detail=NOTHING_SCORED)
    label = f"{SKILL_METRIC} skill vs best reference ({report.best} {report.references[report.best]:.3f})"
    return Measurement(report.skill, report.n, label, (report.ci_low, report.ci_high), _errors_note(figures))


def echo_rate(figures: Figures) -> Measurement:
    found = figures.echo
    if found is None:
        return Measurement(None, 0, "echo rate", detail=NOTHING_SCORED)
    detail = f"{found.count} prediction(s) near-copy the assistant's last message"
    return Measurement(
        found.value, found.n, "echo rate", (found.ci_low, found.ci_high), _notes(detail, _errors_note(figures))
    )


def followup_rate(figures: Figures) -> Measurement:
    label = "genuine follow-up rate"
    found = figures.plausibility.followup
    unjudged = figures.plausibility.unjudged
    if found is None:
        detail = f"no prediction was labelled ({unjudged} unjudged)" if unjudged else NOTHING_SCORED
        return Measurement(None, 0, label, detail=detail)
    kind = (
        "mean over probes of the genuine share of their samples"
        if found.per_probe
        else f"{found.count} genuine follow-up(s)"
    )
    detail = _notes(kind, _errors_note(figures), f"{unjudged} unjudged excluded" if unjudged else "")
    return Measurement(found.value, found.n, label, (found.ci_low, found.ci_high), detail)


def grounding_gap(figures: Figures) -> Measurement:
    label = "semantic grounding gap (real minus shuffled assistant turn)"
    found = next((g for g in figures.gaps if g.metric == SEMANTIC), None)
    if found is None:
        return Measurement(None, 0, label, detail="no probe has a prediction under both contexts")
    detail = f"similarity to the real turn {found.real:.3f} with the real context, {found.perturbed:.3f} shuffled"
    return Measurement(found.gap, found.n, label, (found.ci_low, found.ci_high), detail)


def run_gates(settings: GateSettings, shuffle_control: bool = False) -> list[Gate]:
    found = [
        Gate("semantic_similarity", "--utg-min-similarity", ">=", settings.min_similarity, mean_similarity(SEMANTIC)),
        Gate("lexical_similarity", "--utg-min-lexical", ">=", settings.min_lexical, mean_similarity(LEXICAL)),
        Gate("skill", "--utg-min-skill", ">", settings.min_skill, skill),
        Gate("echo_rate", "--utg-max-echo-rate", "<=", settings.max_echo_rate, echo_rate),
        Gate("followup_rate", "--utg-min-followup-rate", ">=", settings.min_followup_rate, followup_rate),
    ]
    if shuffle_control:
        found.append(Gate("grounding_gap", "--utg-min-grounding-gap", ">", settings.min_grounding_gap, grounding_gap))
    for metric, comparison, threshold in settings.metric_gates:
        found.append(Gate(metric, "--utg-gate", comparison, threshold, mean_score(metric)))
    return found


def mean_score(metric: str) -> Callable[[Figures], Measurement]:
    """A registered scorer's mean, for --utg-gate."""

    def measure(figures: Figures) -> Measurement:
        label = f"mean {metric}"
        found = figures.similarity.get(metric)
        if found is None:
            return Measurement(None, 0, label, detail=f"no prediction has a {metric} score")
        return Measurement(found.mean, found.n, label, (found.ci_low, found.ci_high), _errors_note(figures))

    return measure


def evaluate(gate: Gate, figures: Figures, gate_on: str = "point") -> GateVerdict:
    """A gate with nothing to measure fails: no evidence is not a pass. With `gate_on` "lower", a gate that has an
    interval must pass on its conservative bound: the lower one for a minimum, the upper one for a maximum."""
    measured = gate.measure(figures)
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
        option=gate.option,
    )


def judge(settings: GateSettings, figures: Figures, shuffle_control: bool = False) -> tuple[GateVerdict, ...]:
    return tuple(evaluate(gate, figures, settings.gate_on) for gate in run_gates(settings, shuffle_control))


def probe_thresholds(probe: Probe, settings: GateSettings) -> dict[str, float]:
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
