"""Skill: how much better the model predicts the real user turn than the best reference predictor on the same probes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from utg_pytest import stats
from utg_pytest.model import ProbeResult
from utg_pytest.scoring.references import REFERENCES


@dataclass(frozen=True)
class SkillReport:
    metric: str
    n: int
    model: float
    references: dict[str, float]
    """Mean score of each reference predictor over the same probes as `model`."""
    best: str
    skill: float
    ci_low: float
    ci_high: float


def skill_report(results: Sequence[ProbeResult], metric: str) -> SkillReport | None:
    """Paired over the probes that have a prediction; None when there is none or no reference applies.

    The best reference is the one with the highest mean on these probes, so the model is compared with the
    strongest parrot, not an average one.
    """
    scored = [r for r in results if r.ok]
    names = [name for name in REFERENCES if scored and all(name in r.references for r in scored)]
    if not names:
        return None
    means = {name: stats.mean([r.references[name][metric] for r in scored]) for name in names}
    best = max(names, key=lambda name: means[name])
    model = [r.scores[metric] for r in scored]
    reference = [r.references[best][metric] for r in scored]
    low, high = stats.paired_bootstrap_skill_ci(model, reference)
    return SkillReport(metric, len(scored), stats.mean(model), means, best, stats.skill(model, reference), low, high)


def echo_count(results: Sequence[ProbeResult]) -> tuple[int, int]:
    """(echoes, predictions)."""
    scored = [r for r in results if r.ok]
    return sum(r.echo for r in scored), len(scored)
