"""The scoring phase: every prediction of every stage, and the reference predictors' answers for the same probes,
scored together against the real user turns, each distinct text embedded once.

The texts known up front (real turns, reference answers, the context a label is given against) are handed to the
encoder before generation starts and each prediction as it arrives, so encoding hides in the network wait or beside
the embedded model's token generation (`utg_pytest.scoring.embeddings`).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any

from utg_pytest.model import Probe, ProbeResult
from utg_pytest.runner import Generated
from utg_pytest.scoring.labels import CONTEXT, context_texts
from utg_pytest.scoring.outcomes import combine_samples, score_sample
from utg_pytest.scoring.references import reference_texts
from utg_pytest.scoring.scorers import Scorer, score_all


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


def score_stage(
    generated: Generated,
    references: Mapping[str, Mapping[str, str]],
    vectors: Mapping[str, Any],
    scorers: Sequence[Scorer],
    judge: str | None,
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
        score_sample(probe, outcome, verdict, reference_scores[probe.id], vectors, scorers, judge)
        for probe, outcome, verdict in zip(sampled, generated.attempted, generated.judged, strict=True)
    ]
    return [combine_samples(scored[i * samples : (i + 1) * samples]) for i in range(len(probes))]
