"""From generations to scored results: similarity to the real turn, echo, plausibility label, and the combination
of a probe's samples into one result.

With several samples per probe, the probe's scores are the means over its samples that produced a prediction, its
label the most frequent label, and every sample is kept on the result; a probe fails with an error only when no
sample produced a prediction.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from utg_pytest import stats
from utg_pytest.model import Attempted, Probe, ProbeResult
from utg_pytest.scoring import similarity
from utg_pytest.scoring.echo import ECHO_THRESHOLD, echo_score
from utg_pytest.scoring.features import Semantic
from utg_pytest.scoring.judge import Judged
from utg_pytest.scoring.labels import Label, classify
from utg_pytest.scoring.references import last_text
from utg_pytest.scoring.scorers import Scorer, score_all


def judge_labels(verdict: Judged | None, judge: str) -> dict[str, Any]:
    tokens = verdict.tokens if verdict is not None else 0
    if verdict is None or verdict.judgement is None:
        error = verdict.error if verdict is not None else "no judgement"
        return {"label": None, "label_reason": "", "labelled_by": judge, "unjudged": error, "judge_tokens": tokens}
    found = verdict.judgement
    return {
        "label": found.label,
        "label_reason": found.reason,
        "labelled_by": judge,
        "plausibility": found.plausibility,
        "judge_tokens": tokens,
    }


LabelOf = Callable[[Probe, str, Semantic], Label]
"""The heuristic label of a probe's prediction, given how to compare two texts semantically."""


def heuristic(probe: Probe, prediction: str, semantic: Semantic) -> Label:
    return classify(prediction, probe.label_context, semantic)


def score_sample(
    probe: Probe,
    outcome: Attempted,
    verdict: Judged | None,
    references: dict[str, dict[str, float]],
    vectors: Mapping[str, Any],
    scorers: Sequence[Scorer],
    judge: str | None,
    label_of: LabelOf = heuristic,
) -> ProbeResult:
    """One generation of a probe, scored like every other. The reference predictors' scores on the probe (the same
    for each of its samples) ride along so each result can be compared with them on its own. With an LLM `judge`
    (its identity), its verdict labels the prediction; otherwise the heuristic classifier does (`label_of`)."""
    generation, prediction = outcome.generation, outcome.prediction
    if generation is None or prediction is None:
        return ProbeResult(
            probe.id,
            None,
            None,
            {},
            error=outcome.error,
            attempts=outcome.attempts,
            latency_s=outcome.latency_s,
            references=references,
        )
    echo = echo_score(prediction, last_text(probe, "assistant") or "")
    labels = judge_labels(verdict, judge) if judge is not None else {}
    if not labels:
        label = label_of(probe, prediction, lambda a, b: similarity.semantic(a, b, vectors))
        labels = {"label": label.label, "label_reason": label.reason}
    return ProbeResult(
        probe.id,
        prediction,
        generation.text,
        score_all(scorers, prediction, probe.target, vectors),
        attempts=outcome.attempts,
        latency_s=outcome.latency_s,
        prompt_tokens=generation.prompt_tokens,
        completion_tokens=generation.completion_tokens,
        references=references,
        echo_score=echo,
        echo=echo >= ECHO_THRESHOLD,
        cached=outcome.cached,
        **labels,
    )


def combine_samples(samples: Sequence[ProbeResult]) -> ProbeResult:
    if len(samples) == 1:
        return samples[0]
    done = [s for s in samples if s.ok]
    attempts = sum(s.attempts for s in samples)
    latency = sum(s.latency_s for s in samples)
    if not done:
        return replace(samples[0], attempts=attempts, latency_s=latency, samples=tuple(samples))
    first = done[0]
    labels = Counter(s.label for s in done if s.label is not None)
    label, count = labels.most_common(1)[0] if labels else (None, 0)
    ratings = [s.plausibility for s in done if s.plausibility is not None]
    echoes = [s.echo_score for s in done if s.echo_score is not None]
    return replace(
        first,
        scores={metric: stats.mean([s.scores[metric] for s in done]) for metric in first.scores},
        attempts=attempts,
        latency_s=latency,
        prompt_tokens=sum(s.prompt_tokens for s in done),
        completion_tokens=sum(s.completion_tokens for s in done),
        judge_tokens=sum(s.judge_tokens for s in done),
        echo_score=stats.mean(echoes) if echoes else None,
        echo=sum(s.echo for s in done) * 2 > len(done),
        cached=all(s.cached for s in done),
        label=label,
        label_reason=f"most frequent label: {count} of {len(done)} samples" if label else "",
        plausibility=round(stats.mean(ratings)) if ratings else None,
        unjudged=None if label else first.unjudged,
        samples=tuple(samples),
    )
