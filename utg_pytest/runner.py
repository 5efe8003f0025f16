"""The generation phase: every selected probe goes to the model once, then all predictions, and the reference
predictors' answers for the same probes, are scored in one batch.

Items only read what this phase produced, so a failed request is retried here and then carried on its probe as an
error, never dropped and never scored.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from utg_pytest.cache import GenerationCache, generation_key
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
    cached: bool = False


class LazyBackend:
    """Starts the backend on the first cache miss, so a fully cached run never loads a model or opens a connection.
    A backend that cannot start fails every probe that needs it with the same message."""

    def __init__(self, start: Callable[[], Backend]) -> None:
        self._start = start
        self._backend: Backend | None = None
        self.failure: str | None = None

    def get(self) -> Backend | None:
        if self._backend is None and self.failure is None:
            try:
                self._backend = self._start()
            except Exception as exc:  # reported on every probe and in the summary
                self.failure = f"model backend could not start: {type(exc).__name__}: {exc}"
        return self._backend

    @property
    def identity(self) -> str | None:
        return self._backend.identity if self._backend else None

    def close(self) -> None:
        if self._backend is not None:
            self._backend.close()


@dataclass(frozen=True)
class CachePolicy:
    cache: GenerationCache
    mode: str
    identity: str
    fingerprint: str


def _generate(backend: Backend, probe: Probe, settings: Settings) -> Attempted:
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


def _attempt(backend: LazyBackend, probe: Probe, settings: Settings, policy: CachePolicy | None) -> Attempted:
    key = None
    if policy is not None:
        sampling = {"temperature": settings.temperature, "max_tokens": settings.max_tokens, "seed": settings.seed}
        key = generation_key(policy.identity, settings.prompt, policy.fingerprint, probe, sampling)
        hit = policy.cache.get(key) if policy.mode in ("use", "replay") else None
        if hit is not None:
            return Attempted(hit[1], hit[0], None, 0, 0.0, cached=True)
        if policy.mode == "replay":
            return Attempted(None, None, "not in the cache, and --utg-cache-mode replay never calls the model", 0, 0.0)
    started = backend.get()
    if started is None:
        return Attempted(None, None, backend.failure, 0, 0.0)
    outcome = _generate(started, probe, settings)
    if policy is not None and key is not None and outcome.generation is not None and outcome.prediction is not None:
        policy.cache.put(key, outcome.prediction, outcome.generation)
    return outcome


def run_probes(
    probes: Sequence[Probe],
    backend: LazyBackend,
    settings: Settings,
    embedder: similarity.Embedder,
    progress: Progress | None = None,
    pool: Sequence[Probe] | None = None,
    policy: CachePolicy | None = None,
) -> list[ProbeResult]:
    """`pool` is every probe of the logs: the floor reference borrows targets from it, so a probe's floor does not
    depend on which other probes were selected. With a cache `policy`, hits skip the model entirely."""
    attempted: list[Attempted] = []
    errors = 0
    for done, probe in enumerate(probes, start=1):
        outcome = _attempt(backend, probe, settings, policy)
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
                cached=outcome.cached,
            )
        )
    return results


def _scores(text: str, target: str, semantic: float) -> dict[str, float]:
    return {"semantic": semantic, "lexical": similarity.lexical(text, target)}
