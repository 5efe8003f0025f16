"""The scoring phase: every prediction of every stage, and the reference predictors' answers for the same probes,
scored together against the real user turns, each distinct text embedded once.

The texts known up front (real turns, reference answers, the context a label is given against) are handed to the
encoder before generation starts and each prediction as it arrives, so encoding hides in the network wait or beside
the embedded model's token generation (`utg_pytest.scoring.embeddings`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from utg_pytest.model import Probe, ProbeResult
from utg_pytest.runner import Generated
from utg_pytest.scoring.features import Semantic
from utg_pytest.scoring.labels import CONTEXT, Label, cache_key, context_texts
from utg_pytest.scoring.outcomes import LabelOf, combine_samples, heuristic, score_sample
from utg_pytest.scoring.references import reference_texts
from utg_pytest.scoring.scorers import Scorer, score_all

if TYPE_CHECKING:
    from utg_pytest.cache import GenerationCache


def known_texts(probes: Sequence[Probe], references: Mapping[str, Mapping[str, str]]) -> Iterator[str]:
    """What scoring these probes needs embedded, whatever the model predicts."""
    for probe in probes:
        yield probe.target
        yield from references[probe.id].values()
        yield from context_texts(probe.label_context[-CONTEXT:])


def references_for(probes: Sequence[Probe], seed: int, pool: Sequence[Probe]) -> dict[str, dict[str, str]]:
    """`pool` is every probe of the logs: the floor reference borrows targets from it, so a probe's floor does not
    depend on which other probes were selected."""
    return reference_texts(probes, seed, pool)


def label_keys(generated: Sequence[Generated], labeller: str) -> dict[tuple[str, str], str]:
    """The cache key (`labels.cache_key`) of each (probe id, prediction) of the stages."""
    keys = {}
    for done in generated:
        samples = done.stage.generation.samples
        for index, outcome in enumerate(done.attempted):
            probe = done.stage.probes[index // samples]
            if outcome.prediction is not None and (probe.id, outcome.prediction) not in keys:
                keys[probe.id, outcome.prediction] = cache_key(labeller, probe.label_context, outcome.prediction)
    return keys


@dataclass
class Remembered:
    """The heuristic labeller with the labels an earlier run computed (`known`, from the cache, by `keys`); those it
    computes now are kept in `fresh`, for the caller to store."""

    keys: Mapping[tuple[str, str], str]
    known: Mapping[str, Label]
    fresh: dict[str, Label] = field(default_factory=dict)

    def __call__(self, probe: Probe, prediction: str, semantic: Semantic) -> Label:
        key = self.keys[probe.id, prediction]
        found = self.known.get(key) or self.fresh.get(key)
        if found is None:
            found = self.fresh[key] = heuristic(probe, prediction, semantic)
        return found


def remembered(generated: Sequence[Generated], labeller: str, cache: GenerationCache) -> Remembered:
    """The heuristic labeller over the labels `cache` holds for these predictions."""
    keys = label_keys(generated, labeller)
    found = cache.labels(sorted(set(keys.values())))
    return Remembered(keys, {key: Label(label, reason) for key, (label, reason) in found.items()})


def score_stage(
    generated: Generated,
    references: Mapping[str, Mapping[str, str]],
    vectors: Mapping[str, Any],
    scorers: Sequence[Scorer],
    judge: str | None,
    label_of: LabelOf = heuristic,
) -> list[ProbeResult]:
    """One result per probe of the stage, its samples combined."""
    probes = generated.stage.probes
    samples = generated.stage.generation.samples
    reference_scores = {
        probe.id: {name: score_all(scorers, text, probe.target, vectors) for name, text in references[probe.id].items()}
        for probe in probes
    }
    sampled = [probe for probe in probes for _ in range(samples)]
    scored = [
        score_sample(probe, outcome, verdict, reference_scores[probe.id], vectors, scorers, judge, label_of)
        for probe, outcome, verdict in zip(sampled, generated.attempted, generated.judged, strict=True)
    ]
    return [combine_samples(scored[i * samples : (i + 1) * samples]) for i in range(len(probes))]
