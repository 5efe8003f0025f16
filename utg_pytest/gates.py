"""Gates: what must hold, per probe and over the run, for the model to pass. Pure functions over results."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from utg_pytest import stats
from utg_pytest.model import GateVerdict, Probe, ProbeResult
from utg_pytest.settings import Settings

METRICS = ("semantic", "lexical")

PROBE_THRESHOLD_METRIC = {"min_probe_similarity": "semantic", "min_probe_lexical": "lexical"}


@dataclass(frozen=True)
class Gate:
    name: str
    metric: str
    threshold: float
    option: str


def run_gates(settings: Settings) -> list[Gate]:
    return [
        Gate("semantic_similarity", "semantic", settings.min_similarity, "--utg-min-similarity"),
        Gate("lexical_similarity", "lexical", settings.min_lexical, "--utg-min-lexical"),
    ]


def evaluate(gate: Gate, results: Sequence[ProbeResult]) -> GateVerdict:
    """Mean of the metric over probes that produced a prediction; probes with errors are counted apart, not as 0."""
    values = [r.scores[gate.metric] for r in results if r.ok]
    errors = sum(1 for r in results if not r.ok)
    detail = f"{errors} probe(s) without a prediction excluded" if errors else ""
    if not values:
        return GateVerdict(
            gate.name, gate.metric, None, gate.threshold, False, 0, detail="no probe produced a prediction"
        )
    value = stats.mean(values)
    low, high = stats.bootstrap_mean_ci(values)
    return GateVerdict(
        gate.name,
        gate.metric,
        value,
        gate.threshold,
        value >= gate.threshold,
        len(values),
        ci_low=low,
        ci_high=high,
        detail=detail,
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


def probe_shortfalls(result: ProbeResult, thresholds: dict[str, float]) -> list[str]:
    """One line per metric below its per-probe minimum; empty when the probe passes."""
    return [
        f"{metric} similarity {result.scores[metric]:.3f} < {minimum:.3f}"
        for metric, minimum in thresholds.items()
        if result.scores[metric] < minimum
    ]
