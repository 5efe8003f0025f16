"""Controls that say whether the probes measure anything: a perturbation of the assistant's turn, and a sweep of
sampling temperatures. Pure functions over probes and results; the pipeline runs the extra generations.

Shuffle control: for a seeded sample of probes, the assistant's last message is swapped for the last assistant message
of another conversation and the model predicts again. A model that reads the interaction should now predict something
further from the real user turn, and something that is no longer a genuine follow-up to the real assistant message
(perturbed predictions are labelled against the real context). The grounding gap is real minus perturbed, paired by
probe; an interval that does not clear zero means these probes cannot see the model's interaction awareness.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from utg_pytest import stats
from utg_pytest.model import Probe, ProbeResult
from utg_pytest.scoring.labels import GENUINE, LABELS
from utg_pytest.scoring.references import donors, seeded_rank
from utg_pytest.scoring.scorers import LEXICAL, SEMANTIC

SHUFFLED_SUFFIX = "::shuffled"
FOLLOWUP = "followup"
GAP_METRICS = (SEMANTIC, LEXICAL, FOLLOWUP)


def shuffle_probes(probes: Sequence[Probe], pool: Sequence[Probe], seed: int, limit: int) -> list[Probe]:
    """Perturbed copies of up to `limit` probes (a seeded sample, stable as logs grow), each with its last assistant
    message replaced by a donor conversation's, and labelled against the real context."""
    ranked = sorted(probes, key=lambda p: seeded_rank("shuffle", seed, p))
    chosen = {p.id for p in ranked[:limit]}
    given = donors([p for p in probes if p.id in chosen], seed, pool, salt="shuffle")
    perturbed = []
    for probe in probes:
        donor = given.get(probe.id)
        if donor is None:
            continue
        replacement = next((m for m in reversed(donor.context) if m.role == "assistant"), None)
        position = next(
            (i for i in range(len(probe.context) - 1, -1, -1) if probe.context[i].role == "assistant"), None
        )
        if replacement is None or position is None:
            continue
        context = (*probe.context[:position], replacement, *probe.context[position + 1 :])
        perturbed.append(replace(probe, id=probe.id + SHUFFLED_SUFFIX, context=context, judged_against=probe.context))
    return perturbed


@dataclass(frozen=True)
class Gap:
    metric: str
    real: float
    perturbed: float
    gap: float
    ci_low: float
    ci_high: float
    n: int

    @property
    def significant(self) -> bool:
        return self.ci_low > 0.0


def _metric(result: ProbeResult, metric: str) -> float:
    if metric == FOLLOWUP:
        return 1.0 if result.label == GENUINE else 0.0
    return result.scores[metric]


def grounding_gaps(real: Sequence[ProbeResult], perturbed: Sequence[ProbeResult], seed: int = 0) -> list[Gap]:
    """Paired over the probes that have a prediction (and, for the follow-up rate, a label) in both runs."""
    by_id = {r.probe_id: r for r in real}
    gaps = []
    for metric in GAP_METRICS:
        pairs = []
        for shuffled in perturbed:
            original = by_id.get(shuffled.probe_id.removesuffix(SHUFFLED_SUFFIX))
            if original is None or not (original.ok and shuffled.ok):
                continue
            if metric == FOLLOWUP and (original.label is None or shuffled.label is None):
                continue
            pairs.append((_metric(original, metric), _metric(shuffled, metric)))
        if not pairs:
            continue
        differences = [a - b for a, b in pairs]
        low, high = stats.bootstrap_mean_ci(differences, seed=seed)
        gaps.append(
            Gap(
                metric,
                stats.mean([a for a, _ in pairs]),
                stats.mean([b for _, b in pairs]),
                stats.mean(differences),
                low,
                high,
                len(pairs),
            )
        )
    return gaps


@dataclass(frozen=True)
class SweepRow:
    temperature: float
    n: int
    followup: float | None
    ci_low: float | None
    ci_high: float | None
    scores: dict[str, float]
    """Mean of each metric over the predictions at this temperature."""
    labels: dict[str, int]
    errors: int


def sweep_row(temperature: float, results: Sequence[ProbeResult]) -> SweepRow:
    scored = [r for r in results if r.ok]
    labels = [r.label for r in scored if r.label is not None]
    counts = {label: labels.count(label) for label in LABELS if label in labels}
    followup = low = high = None
    if labels:
        genuine = labels.count(GENUINE)
        followup = genuine / len(labels)
        low, high = stats.wilson_interval(genuine, len(labels))
    means = {metric: stats.mean([r.scores[metric] for r in scored]) for metric in (scored[0].scores if scored else ())}
    return SweepRow(temperature, len(scored), followup, low, high, means, counts, len(results) - len(scored))
