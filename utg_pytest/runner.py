"""The generation phase: every selected probe goes to the model once, then all predictions, and the reference
predictors' answers for the same probes, are scored in one batch.

Items only read what this phase produced, so a failed request is retried here and then carried on its probe as an
error, never dropped and never scored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from utg_pytest.generate import Backend, ModelError, Sampling
from utg_pytest.generate.prompts import build_request, clean_turn
from utg_pytest.model import Generation, Probe, ProbeResult
from utg_pytest.scoring import similarity
from utg_pytest.scoring.echo import ECHO_THRESHOLD, echo_score
from utg_pytest.scoring.references import last_text, reference_texts
from utg_pytest.settings import Settings

Progress = Callable[[int, int, int], None]
"""Called with (done, total, errors) after each probe."""

RETRY_DELAY_S = 0.5


@dataclass(frozen=True)
class Attempted:
    generation: Generation | None
    prediction: str | None
    error: str | None
    attempts: int
    latency_s: float


def _attempt(backend: Backend, probe: Probe, settings: Settings) -> Attempted:
    sampling = Sampling(settings.temperature, settings.max_tokens, settings.seed)
    started = time.perf_counter()
    attempts = 0
    while True:
        attempts += 1
        try:
            request = build_request(probe, settings.prompt, backend.chat_template)
            generation = backend.generate(request, sampling)
            prediction = clean_turn(generation.text, request.stops)
            return Attempted(generation, prediction, None, attempts, time.perf_counter() - started)
        except Exception as exc:  # any backend failure becomes the probe's reported error
            if attempts <= settings.retries and backend.retryable(exc):
                time.sleep(RETRY_DELAY_S * 2 ** (attempts - 1))
                continue
            if isinstance(exc, ModelError):
                attempts, message = attempts - 1 + exc.attempts, str(exc)
            else:
                message = f"{type(exc).__name__}: {exc}"
            error = f"{backend.redact(message)} (after {attempts} attempt(s))"
            return Attempted(None, None, error, attempts, time.perf_counter() - started)


def run_probes(
    probes: Sequence[Probe],
    backend: Backend,
    settings: Settings,
    embedder: similarity.Embedder,
    progress: Progress | None = None,
    pool: Sequence[Probe] | None = None,
) -> list[ProbeResult]:
    """`pool` is every probe of the logs: the floor reference borrows targets from it, so a probe's floor does not
    depend on which other probes were selected."""
    attempted: list[Attempted] = []
    errors = 0
    for done, probe in enumerate(probes, start=1):
        outcome = _attempt(backend, probe, settings)
        errors += outcome.error is not None
        attempted.append(outcome)
        if progress:
            progress(done, len(probes), errors)

    references = reference_texts(probes, settings.sample_seed, pool)
    pairs: list[tuple[str, str]] = []
    for probe, outcome in zip(probes, attempted, strict=True):
        if outcome.prediction is not None:
            pairs.append((outcome.prediction, probe.target))
        pairs.extend((text, probe.target) for text in references[probe.id].values())
    semantic = iter(similarity.semantic(pairs, embedder))

    results = []
    for probe, outcome in zip(probes, attempted, strict=True):
        generation, prediction = outcome.generation, outcome.prediction
        scores = _scores(prediction, probe.target, next(semantic)) if prediction is not None else {}
        scored_references = {
            name: _scores(text, probe.target, next(semantic)) for name, text in references[probe.id].items()
        }
        if generation is None or prediction is None:
            results.append(
                ProbeResult(
                    probe.id,
                    None,
                    None,
                    {},
                    error=outcome.error,
                    attempts=outcome.attempts,
                    latency_s=outcome.latency_s,
                    references=scored_references,
                )
            )
            continue
        echo = echo_score(prediction, last_text(probe, "assistant") or "")
        results.append(
            ProbeResult(
                probe.id,
                prediction,
                generation.text,
                scores,
                attempts=outcome.attempts,
                latency_s=outcome.latency_s,
                prompt_tokens=generation.prompt_tokens,
                completion_tokens=generation.completion_tokens,
                references=scored_references,
                echo_score=echo,
                echo=echo >= ECHO_THRESHOLD,
            )
        )
    return results


def _scores(text: str, target: str, semantic: float) -> dict[str, float]:
    return {"semantic": semantic, "lexical": similarity.lexical(text, target)}
