"""Plausibility labels: is a predicted user turn a genuine follow-up to the assistant's last message, or one of the
failure modes the user-turn-generation method names (restating the earlier request, speaking as the assistant, an
unrelated request), or a closing, or degenerate output?

The heuristic labeller is deterministic and needs no extra model. Rules decide what readers decide first and
without doubt: degenerate output (empty, template tokens, not language, loops) and near-verbatim copies of a context
message. Everything else goes to a small multinomial logistic regression (weights in labels_model.json, fitted by
`python benchmarks/labels.py --fit` on the development splits only) over the features of `scoring.features`: surface
signs, rapidfuzz overlap with each kind of context message and sentence-embedding similarity to the recent context.
Its agreement with a human reader on real model predictions it was not fitted on is `HEURISTIC_AGREEMENT`.
"""

from __future__ import annotations

import hashlib
import json
import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache, cached_property
from importlib import resources
from typing import Any

from utg_pytest.model import Message
from utg_pytest.scoring.embeddings import STORED_DTYPE
from utg_pytest.scoring.features import (
    NAMES,
    Semantic,
    degenerate_reason,
    features,
    lexical,
    words,
)

GENUINE = "genuine_followup"
RESTATEMENT = "restatement"
IDENTITY_DRIFT = "identity_drift"
IRRELEVANT = "irrelevant"
CLOSING = "closing"
DEGENERATE = "degenerate"
CONTEXT = 6
"""Messages of context a label is given against, by the heuristic classifier or the LLM judge: the recent exchange a
follow-up reacts to. (The heuristic's copy rules also look further back, lexically.)"""
LABELS: tuple[str, ...] = (GENUINE, RESTATEMENT, IDENTITY_DRIFT, IRRELEVANT, CLOSING, DEGENERATE)
HEURISTIC = "heuristic"
VERSION = 3
"""The labeller's revision, recorded with every run: label rates of runs labelled by different revisions are not
compared. 3: rules for degenerate output and copies, then the fitted model."""
COPY = 0.85
"""Lexical similarity to a context message at or above which a prediction of at least `COPY_WORDS` words copies it."""
COPY_WORDS = 3
MODEL_FILE = "labels_model.json"


@dataclass(frozen=True)
class Label:
    label: str
    reason: str


@dataclass(frozen=True)
class Agreement:
    """How often the labeller agrees with a careful human reader, measured on items it was not fitted on."""

    corpus: str
    items: int
    agreement: float
    """Share of items where the labeller gave reader A's label."""
    genuine_precision: float
    genuine_recall: float


def measure(corpus: str, gold: Sequence[str], predicted: Sequence[str]) -> Agreement:
    """The figures `HEURISTIC_AGREEMENT` publishes, for any labeller against any reader's labels."""
    pairs = list(zip(gold, predicted, strict=True))
    hits = sum(g == GENUINE and p == GENUINE for g, p in pairs)
    said = sum(p == GENUINE for _, p in pairs)
    real = sum(g == GENUINE for g, _ in pairs)
    return Agreement(
        corpus,
        len(pairs),
        sum(g == p for g, p in pairs) / len(pairs) if pairs else 0.0,
        hits / said if said else 0.0,
        hits / real if real else 0.0,
    )


HEURISTIC_AGREEMENT = Agreement(
    corpus="real predictions, test split (tests/data/real_predictions)",
    items=209,
    agreement=0.675,
    genuine_precision=0.594,
    genuine_recall=0.633,
)
"""Recomputed by tests/test_labels.py, so it cannot go stale."""
READER_AGREEMENT = 106 / 120
"""How often two careful human readers, labelling blind, agree on the corpus's 120 shared items: the ceiling a
labeller's agreement is read against (recomputed by tests/test_labels.py)."""


@dataclass(frozen=True)
class Model:
    """Multinomial logistic regression over standardised features."""

    names: tuple[str, ...]
    labels: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[tuple[float, ...], ...]
    """One row per label, one column per feature."""
    bias: tuple[float, ...]

    @classmethod
    def from_json(cls, document: Mapping[str, Any]) -> Model:
        def floats(values: Sequence[Any]) -> tuple[float, ...]:
            return tuple(float(v) for v in values)

        return cls(
            tuple(document["features"]),
            tuple(document["labels"]),
            floats(document["mean"]),
            floats(document["scale"]),
            tuple(floats(row) for row in document["weights"]),
            floats(document["bias"]),
        )

    def standardise(self, values: Mapping[str, float]) -> list[float]:
        return [(values[n] - m) / s for n, m, s in zip(self.names, self.mean, self.scale, strict=True)]

    @cached_property
    def _pull(self) -> tuple[tuple[float, ...], ...]:
        """Each label's weights less the labels' mean weight, feature by feature: what pulls towards that label
        rather than the others."""
        means = [sum(column) / len(self.weights) for column in zip(*self.weights, strict=True)]
        return tuple(tuple(w - m for w, m in zip(row, means, strict=True)) for row in self.weights)

    def _scores(self, z: Sequence[float]) -> dict[str, float]:
        scores = [b + sum(map(operator.mul, row, z)) for row, b in zip(self.weights, self.bias, strict=True)]
        top = max(scores)
        exps = [math.exp(s - top) for s in scores]
        total = sum(exps)
        return {label: e / total for label, e in zip(self.labels, exps, strict=True)}

    def probabilities(self, values: Mapping[str, float]) -> dict[str, float]:
        return self._scores(self.standardise(values))

    def label(self, values: Mapping[str, float]) -> Label:
        """The likeliest label, with the feature that pushed hardest towards it (against the other labels' pull)."""
        z = self.standardise(values)
        probabilities = self._scores(z)
        best = max(self.labels, key=lambda label: probabilities[label])
        pulls = [x * w for x, w in zip(z, self._pull[self.labels.index(best)], strict=True)]
        telling = max(range(len(pulls)), key=lambda j: pulls[j])
        name = self.names[telling]
        return Label(best, f"model p={probabilities[best]:.2f}; most telling: {name} = {values[name]:.2f}")


@cache
def identity() -> str:
    """What a heuristic label depends on besides the prediction, its context and the embedding model: the revision,
    the window, the fitted weights (a refit without a new revision must not reuse old labels) and the precision its
    similarities are computed from (the vector table's half-precision rows)."""
    weights = resources.files(__package__).joinpath(MODEL_FILE).read_bytes()
    return f"{HEURISTIC}-{VERSION}/window-{CONTEXT}/{hashlib.sha256(weights).hexdigest()[:16]}/vectors-{STORED_DTYPE}"


def cache_key(labeller: str, context: Sequence[Message], prediction: str) -> str:
    """Where a heuristic label is kept in the cache: classifying is most of what replaying a cached probe costs.
    `labeller` is `identity()` and the embedding model's identity."""
    payload = json.dumps([labeller, [[m.role, m.text] for m in context], prediction], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


@cache
def model() -> Model:
    found = Model.from_json(json.loads(resources.files(__package__).joinpath(MODEL_FILE).read_text(encoding="utf-8")))
    if found.names != NAMES or found.labels != LABELS:
        raise RuntimeError(f"{MODEL_FILE} does not match the features or labels: refit with benchmarks/labels.py --fit")
    return found


def copied(prediction: str, context: Sequence[Message]) -> Label | None:
    """A (near-)verbatim copy of a context message: the assistant's or the system prompt is the service's text,
    the user's own is a restatement. The whole context counts, not just the recent window."""
    if len(words(prediction)) < COPY_WORDS:
        return None
    for roles, label, what in (
        (("assistant", "system"), IDENTITY_DRIFT, "an assistant or system message"),
        (("user",), RESTATEMENT, "an earlier user message"),
    ):
        texts = [m.text for m in context if m.role in roles and m.text.strip()]
        similarity = max((lexical(prediction, text) for text in texts), default=0.0)
        if similarity >= COPY:
            return Label(label, f"copies {what} (lexical {similarity:.2f})")
    return None


def rule_label(prediction: str, context: Sequence[Message]) -> Label | None:
    """What the rules decide on their own, before the model is asked."""
    reason = degenerate_reason(prediction)
    if reason:
        return Label(DEGENERATE, reason)
    return copied(prediction, context)


def classify(prediction: str, context: Sequence[Message], semantic: Semantic, window: int = CONTEXT) -> Label:
    """`context` is everything before the predicted turn; `semantic` is only asked about the prediction and the
    texts `context_texts` gives for the last `window` messages."""
    return rule_label(prediction, context) or model().label(features(prediction, context, semantic, window))


def context_texts(context: Sequence[Message]) -> list[str]:
    """The texts `classify` may ask `semantic` about besides the prediction (those of the last `CONTEXT` messages),
    for encoding them up front."""
    return [m.text for m in context if m.text.strip()]
