"""The generation phase's orchestration, against an in-memory backend: stages share one backend, the cache answers
before the backend starts, failures are retried and then carried on their probe, samples differ by seed."""

from __future__ import annotations

import sys
from collections.abc import Iterable
from pathlib import Path

import pytest
from fakes import FakeBackend, FakeFactory

from utg_pytest.cache import GenerationCache
from utg_pytest.cores import Cores
from utg_pytest.generate.prompts import Request
from utg_pytest.model import Message, Probe
from utg_pytest.pipeline import Overlap
from utg_pytest.runner import CachePolicy, LazyBackend, Stage, generate
from utg_pytest.scoring.embeddings import Embedder, TextVectors
from utg_pytest.settings import GenerationConfig, build

PROBES = [
    Probe(f"logs.jsonl::c{i}::turn2", "logs.jsonl", i + 1, f"c{i}", 2,
          (Message("user", f"question {i}"), Message("assistant", f"answer {i}")), f"follow-up {i}")
    for i in range(4)
]  # fmt: skip
SETTINGS = build({"base_url": "http://fake/v1", "prompt": "roleswap", "retries": 1, "concurrency": 2})


def backend(factory: FakeFactory) -> LazyBackend:
    return LazyBackend(lambda: factory.open(SETTINGS.model))


def test_every_stage_uses_one_backend_opened_once_and_closed_at_the_end() -> None:
    factory = FakeFactory()
    stages = [
        Stage("predictions", PROBES, GenerationConfig(prompt="roleswap")),
        Stage("at 0.7", PROBES, GenerationConfig(prompt="roleswap", temperature=0.7)),
    ]
    found = generate(stages, backend(factory), SETTINGS)
    assert len(factory.opened) == 1
    assert factory.opened[0].closed
    assert [o.prediction for o in found[0].attempted] == ["reply at 0"] * 4
    assert [o.prediction for o in found[1].attempted] == ["reply at 0.7"] * 4
    assert len(factory.opened[0].requests) == 8


def test_cache_hits_never_start_the_backend(tmp_path: Path) -> None:
    cache = GenerationCache(tmp_path)
    policy = CachePolicy(cache, "use", "fake#model", "fp")
    stage = [Stage("predictions", PROBES, GenerationConfig(prompt="roleswap"))]
    generate(stage, backend(FakeFactory()), SETTINGS, policy)
    again = FakeFactory()
    replayed = generate(stage, backend(again), SETTINGS, policy)
    assert again.opened == []
    assert all(o.cached and o.prediction == "reply at 0" for o in replayed[0].attempted)
    cache.close()


def test_a_failing_probe_is_retried_then_reported_and_the_others_are_answered() -> None:
    def fails(request: Request) -> bool:
        return any("question 2" in m["content"] for m in request.messages or ())

    factory = FakeFactory(fail=fails)
    found = generate([Stage("predictions", PROBES, GenerationConfig(prompt="roleswap"))], backend(factory), SETTINGS)
    outcomes = found[0].attempted
    assert [o.error is None for o in outcomes] == [True, True, False, True]
    assert outcomes[2].attempts == 2
    assert "ConnectionError: scripted failure (after 2 attempt(s))" in (outcomes[2].error or "")


def test_samples_of_a_probe_get_their_own_seeds() -> None:
    factory = FakeFactory(answer=lambda request, sampling: f"seed {sampling.seed}")
    stage = Stage("predictions", PROBES[:1], GenerationConfig(prompt="roleswap", seed=5, samples=3))
    found = generate([stage], backend(factory), SETTINGS)
    assert [o.prediction for o in found[0].attempted] == ["seed 5", "seed 6", "seed 7"]


def test_without_the_embedded_extra_the_error_names_the_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    from utg_pytest.generate.embedded import load_llama

    monkeypatch.setitem(sys.modules, "llama_cpp", None)
    with pytest.raises(ImportError, match=r'pip install "utg-pytest\[embedded\]"'):
        load_llama()


class Watched(TextVectors):
    """Records how many requests the backend had answered when encoding began beside generation."""

    def __init__(self, factory: FakeFactory) -> None:
        super().__init__(Embedder())
        self.factory = factory
        self.began_after: list[int] = []
        self.added: list[str] = []

    def add(self, texts: Iterable[str]) -> None:
        self.added.extend(texts)

    def start(self, threads: int | None = None, cores: Cores | None = None) -> None:
        self.began_after.append(sum(len(b.requests) for b in self.factory.opened))


@pytest.mark.parametrize("judged", [False, True], ids=["plain", "judged"])
def test_encoding_begins_beside_generation_only_after_the_model_first_answered(tmp_path: Path, judged: bool) -> None:
    """Cached predictions settle before the backend opens, and the encoder must not import its stack while the
    backend's client is importing the same packages; a judged run encodes after generation."""
    cache = GenerationCache(tmp_path)
    policy = CachePolicy(cache, "use", "fake#model", "fp")
    factory = FakeFactory()
    warm = [Stage("predictions", PROBES[:2], GenerationConfig(prompt="roleswap"))]
    generate(warm, backend(factory), SETTINGS, policy)
    factory = FakeFactory()
    vectors = Watched(factory)
    beside = Overlap(vectors, judged=judged)
    lazy = LazyBackend(lambda: factory.open(SETTINGS.model), on_start=beside.started)
    found = generate([Stage("predictions", PROBES, GenerationConfig(prompt="roleswap"))], lazy, SETTINGS, policy,
                     on_prediction=beside.arrived)  # fmt: skip
    assert sum(o.cached for o in found[0].attempted) == 2
    assert len(vectors.began_after) == (0 if judged else 1)
    assert all(answered >= 1 for answered in vectors.began_after)
    assert vectors.added == ["reply at 0"] * 4
    cache.close()


def test_a_fully_cached_run_encodes_after_generation(tmp_path: Path) -> None:
    cache = GenerationCache(tmp_path)
    policy = CachePolicy(cache, "use", "fake#model", "fp")
    generate([Stage("predictions", PROBES, GenerationConfig(prompt="roleswap"))], backend(FakeFactory()), SETTINGS,
             policy)  # fmt: skip
    factory = FakeFactory()
    vectors = Watched(factory)
    beside = Overlap(vectors, judged=False)
    lazy = LazyBackend(lambda: factory.open(SETTINGS.model), on_start=beside.started)
    generate([Stage("predictions", PROBES, GenerationConfig(prompt="roleswap"))], lazy, SETTINGS, policy,
             on_prediction=beside.arrived)  # fmt: skip
    assert factory.opened == []
    assert vectors.began_after == []
    cache.close()


class LocalBackend(FakeBackend):
    remote = False


@pytest.mark.parametrize("cores", [None, "the model's cores"], ids=["no cores", "cores"])
def test_a_local_backend_is_encoded_beside_only_when_it_shares_its_cores(cores: object) -> None:
    started: list[tuple[int | None, object]] = []

    class Recorded(TextVectors):
        def start(self, threads: int | None = None, cores: Cores | None = None) -> None:
            started.append((threads, cores))

    local = LocalBackend(lambda request, sampling: "", lambda request: False)
    if cores is not None:
        local.cores = cores  # type: ignore[attr-defined]
    beside = Overlap(Recorded(Embedder()), judged=False)
    beside.started(local)
    beside.arrived("first")
    beside.arrived("second")
    assert started == ([] if cores is None else [(1, cores)])
