"""The generation phase: every selected probe goes to the model once per sample, concurrently, answered from the
record/replay cache where it can be; then, with an LLM judge, every prediction is judged.

Items only read what this phase produced, so a failed request is retried here and then carried on its probe as an
error, never dropped and never scored.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from utg_pytest.cache import GenerationCache, generation_key
from utg_pytest.cost import Budget, BudgetExhausted, Usage, estimate_prompt_tokens
from utg_pytest.generate import Backend, ModelError, Sampling
from utg_pytest.generate.prompts import build_request, clean_turn
from utg_pytest.model import Attempted, Generation, Probe
from utg_pytest.scoring.judge import Judged, judge_one, judgement_key, parse_judgement
from utg_pytest.settings import GenerationConfig, LimitSettings, Settings

RETRY_DELAY_S = 0.5


@dataclass(frozen=True)
class Status:
    done: int
    total: int
    errors: int
    cached: int
    stage: str = "predictions"


Progress = Callable[[Status], None]
"""Called after each probe's generation settles."""


class LazyBackend:
    """Starts the backend on the first cache miss, so a fully cached run never loads a model or opens a connection.
    A backend that cannot start fails every probe that needs it with the same message."""

    def __init__(
        self,
        start: Callable[[], Awaitable[Backend]],
        on_start: Callable[[Backend], None] | None = None,
    ) -> None:
        self._start = start
        self._on_start = on_start
        self._backend: Backend | None = None
        self._lock = asyncio.Lock()
        self.failure: str | None = None

    async def get(self) -> Backend | None:
        async with self._lock:
            if self._backend is None and self.failure is None:
                try:
                    self._backend = await self._start()
                except Exception as exc:  # reported on every probe and in the summary
                    cause = str(exc) if isinstance(exc, ModelError) else f"{type(exc).__name__}: {exc}"
                    self.failure = f"model backend could not start: {cause}"
                else:
                    if self._on_start is not None:
                        self._on_start(self._backend)
        return self._backend

    @property
    def identity(self) -> str | None:
        return self._backend.identity if self._backend else None

    async def aclose(self) -> None:
        if self._backend is not None:
            await self._backend.aclose()


@dataclass(frozen=True)
class CachePolicy:
    cache: GenerationCache
    mode: str
    identity: str
    fingerprint: str

    def key(self, probe: Probe, generation: GenerationConfig, sample: int = 0) -> str:
        sampling = {
            "temperature": generation.temperature,
            "max_tokens": generation.max_tokens,
            "seed": generation.seed,
            **generation.decoding(),
        }
        return generation_key(self.identity, generation.prompt, self.fingerprint, probe, sampling, sample)

    def read(self, key: str) -> tuple[str, Generation] | None:
        """The cached answer, in the modes that read the cache (refresh asks again and overwrites)."""
        return self.cache.get(key) if self.mode in ("use", "replay") else None

    @property
    def offline(self) -> bool:
        """Replay mode: a miss is an error, the model is never called."""
        return self.mode == "replay"


class Limits:
    """What bounds calls to the model: requests in flight, requests and tokens per minute, and the token budget."""

    def __init__(self, settings: LimitSettings, period_s: float = 60.0) -> None:
        self.concurrency = settings.concurrency
        self.slots = asyncio.Semaphore(settings.concurrency)
        self.budget = Budget(settings.budget_tokens)
        self._rpm: Any = None
        self._tpm: Any = None
        self._tpm_max = settings.tpm or 0
        if settings.rpm or settings.tpm:
            from aiolimiter import AsyncLimiter

            self._rpm = AsyncLimiter(settings.rpm, period_s) if settings.rpm else None
            self._tpm = AsyncLimiter(settings.tpm, period_s) if settings.tpm else None

    async def pace(self, tokens: int) -> None:
        if self._rpm is not None:
            await self._rpm.acquire()
        if self._tpm is not None:
            await self._tpm.acquire(min(tokens, self._tpm_max))


def sample_seed(generation: GenerationConfig, sample: int) -> int | None:
    """Samples of a probe differ by seed, so repeated samples are not copies of one another (the embedded model would
    otherwise always use its default seed) and each stays reproducible. The first sample keeps the configured seed."""
    if generation.seed is None and sample == 0:
        return None
    return (generation.seed or 0) + sample


async def _generate(
    backend: Backend, probe: Probe, generation: GenerationConfig, retries: int, limits: Limits, sample: int
) -> Attempted:
    sampling = Sampling(
        generation.temperature,
        generation.max_tokens,
        sample_seed(generation, sample),
        tuple(generation.decoding().items()),
    )
    started = time.perf_counter()
    attempts = 0
    worst_case = 0
    used = Usage()
    try:
        while True:
            attempts += 1
            try:
                request = build_request(probe, generation.prompt, backend.chat_template)
                if attempts == 1:
                    worst_case = estimate_prompt_tokens(request) + generation.max_tokens
                    limits.budget.reserve(worst_case)
                await limits.pace(worst_case)
                answer, tries = await backend.generate(request, sampling)
                attempts += tries - 1
                used = Usage(answer.prompt_tokens, answer.completion_tokens)
                prediction = clean_turn(answer.text, request.stops)
                return Attempted(answer, prediction, None, attempts, time.perf_counter() - started)
            except BudgetExhausted as exc:
                worst_case = 0
                return Attempted(None, None, str(exc), 0, 0.0)
            except Exception as exc:  # any backend failure becomes the probe's reported error
                if attempts <= retries and backend.retryable(exc):
                    await asyncio.sleep(RETRY_DELAY_S * 2 ** (attempts - 1))
                    continue
                if isinstance(exc, ModelError):
                    attempts, message = attempts - 1 + exc.attempts, str(exc)
                else:
                    message = f"{type(exc).__name__}: {exc}"
                error = f"{backend.redact(message)} (after {attempts} attempt(s))"
                return Attempted(None, None, error, attempts, time.perf_counter() - started)
    finally:
        if worst_case:
            limits.budget.settle(worst_case, used)


def _lookup(
    probe: Probe, generation: GenerationConfig, policy: CachePolicy | None, sample: int
) -> tuple[str | None, Attempted | None]:
    """The cache key and, when the cache answers for this sample (a hit, or a miss in replay mode), the outcome."""
    if policy is None:
        return None, None
    key = policy.key(probe, generation, sample)
    hit = policy.read(key)
    if hit is not None:
        return key, Attempted(hit[1], hit[0], None, 0, 0.0, cached=True)
    if policy.offline:
        return key, Attempted(None, None, "not in the cache, and --utg-cache-mode replay never calls the model", 0, 0.0)
    return key, None


async def generate_all(
    probes: Sequence[Probe],
    backend: LazyBackend,
    generation: GenerationConfig,
    limits: Limits,
    retries: int,
    policy: CachePolicy | None = None,
    progress: Progress | None = None,
    on_prediction: Callable[[str], None] | None = None,
) -> list[Attempted]:
    """One outcome per sample of each probe (`generation.samples` per probe, probe after probe): answered from the
    cache where it can, the rest concurrently by the model. The backend stays open for the caller's next stage."""
    total = len(probes) * generation.samples
    outcomes: list[Attempted | None] = [None] * total
    counts = {"done": 0, "errors": 0, "cached": 0}

    def settled(index: int, outcome: Attempted) -> None:
        outcomes[index] = outcome
        counts["done"] += 1
        counts["errors"] += outcome.error is not None
        counts["cached"] += outcome.cached
        if outcome.prediction is not None and on_prediction is not None:
            on_prediction(outcome.prediction)
        if progress:
            progress(Status(counts["done"], total, counts["errors"], counts["cached"]))

    async def miss(index: int, probe: Probe, sample: int, key: str | None) -> None:
        async with limits.slots:
            started = await backend.get()
            if started is None:
                outcome = Attempted(None, None, backend.failure, 0, 0.0)
            else:
                outcome = await _generate(started, probe, generation, retries, limits, sample)
        if policy is not None and key is not None and outcome.generation is not None and outcome.prediction is not None:
            policy.cache.put(key, outcome.prediction, outcome.generation)
        settled(index, outcome)

    pending: list[tuple[int, Probe, int, str | None]] = []
    # Objects alive before the phase (the collected items, loaded modules) cannot become garbage during it; frozen,
    # the collector stops rescanning them between requests, which is measurable per-request CPU at high concurrency.
    gc.freeze()
    for index, (probe, sample) in enumerate((p, k) for p in probes for k in range(generation.samples)):
        key, answered = _lookup(probe, generation, policy, sample)
        if answered is not None:
            settled(index, answered)
        else:
            pending.append((index, probe, sample, key))
    jobs = iter(pending)

    async def worker() -> None:
        # As many workers as requests may be in flight, taking the misses in order: a task per miss held about
        # 2 KB for every probe of the run until the last one was answered.
        for job in jobs:
            await miss(*job)

    try:
        await asyncio.gather(*(worker() for _ in range(min(limits.concurrency, len(pending)))))
    finally:
        gc.unfreeze()
    return [outcome for outcome in outcomes if outcome is not None]


async def judge_all(
    probes: Sequence[Probe],
    predictions: Sequence[str | None],
    backend: LazyBackend,
    identity: str,
    policy: CachePolicy | None,
    concurrency: int,
    retries: int,
    seed: int | None,
) -> list[Judged | None]:
    """LLM judgements of the predictions (None where there is none), from the cache where possible; the judge's
    backend starts only on a miss."""
    slots = asyncio.Semaphore(concurrency)

    async def one(probe: Probe, prediction: str) -> Judged:
        key = judgement_key(identity, probe.label_context, prediction)
        hit = policy.read(key) if policy is not None else None
        if hit is not None:
            return Judged(parse_judgement(hit[0]), None, hit[0])
        if policy is not None and policy.offline:
            return Judged(None, "judgement not in the cache, and --utg-cache-mode replay never calls the judge")
        async with slots:
            started = await backend.get()
            if started is None:
                return Judged(None, f"judge {backend.failure}")
            judged = await judge_one(started, probe.label_context, prediction, retries, seed)
        if policy is not None and judged.judgement is not None and judged.raw is not None:
            policy.cache.put(key, judged.raw, Generation(judged.raw))
        return judged

    async def maybe(probe: Probe, prediction: str | None) -> Judged | None:
        return None if prediction is None else await one(probe, prediction)

    return list(await asyncio.gather(*(maybe(p, t) for p, t in zip(probes, predictions, strict=True))))


@dataclass(frozen=True)
class Stage:
    """One pass of generation over probes: the main run, a sweep temperature or the shuffle control."""

    name: str
    probes: Sequence[Probe]
    generation: GenerationConfig


@dataclass(frozen=True)
class Generated:
    stage: Stage
    attempted: list[Attempted]
    """One per sample of each probe, probe after probe."""
    judged: list[Judged | None]
    """The LLM judge's verdict on each, when the judge is on."""


@dataclass(frozen=True)
class Judge:
    """The LLM judge of a run: its backend, started lazily, and its identity for cache keys."""

    backend: LazyBackend
    identity: str


def generate(
    stages: Sequence[Stage],
    backend: LazyBackend,
    settings: Settings,
    policy: CachePolicy | None = None,
    progress: Progress | None = None,
    on_prediction: Callable[[str], None] | None = None,
    judge: Judge | None = None,
) -> list[Generated]:
    """Every stage, one after the other, in one event loop with one backend (and one judge): a model is loaded and a
    connection pool opened once per run, not once per stage."""

    async def run() -> list[Generated]:
        found = []
        limits = Limits(settings.limits)
        try:
            for stage in stages:
                staged = (lambda status, name=stage.name: progress(replace(status, stage=name))) if progress else None
                attempted = await generate_all(
                    stage.probes,
                    backend,
                    stage.generation,
                    limits,
                    settings.model.retries,
                    policy,
                    staged,
                    on_prediction,
                )
                found.append(Generated(stage, attempted, [None] * len(attempted)))
            if judge is not None:
                for index, done in enumerate(found):
                    sampled = [p for p in done.stage.probes for _ in range(done.stage.generation.samples)]
                    predictions = [outcome.prediction for outcome in done.attempted]
                    judged = await judge_all(
                        sampled,
                        predictions,
                        judge.backend,
                        judge.identity,
                        policy,
                        settings.limits.concurrency,
                        settings.model.retries,
                        done.stage.generation.seed,
                    )
                    found[index] = replace(done, judged=judged)
        finally:
            await backend.aclose()
            if judge is not None:
                await judge.backend.aclose()
        return found

    return asyncio.run(run())
