"""The heuristic plausibility classifier: its rules one by one, and its accuracy on the held-out labelled set."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from utg_pytest.model import Message
from utg_pytest.scoring import similarity
from utg_pytest.scoring.embeddings import Embedder, TextVectors
from utg_pytest.scoring.labels import LABELS, assistant_style, classify, degenerate_reason, is_closing

pytestmark = pytest.mark.heavy  # real sentence-transformers embeddings

DATA = Path(__file__).parent / "data" / "plausibility"
CONTEXT = (
    Message("user", "my router keeps dropping the connection every evening"),
    Message("assistant", "Does it happen on Wi-Fi only, or also with a cable? And which router model is it?"),
)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "empty"),
        ("   \n", "empty"),
        ("<|im_start|>user\nhello", "leaked chat-template tokens"),
        ("!!! ??? ... :-) 🙂🙂🙂", "mostly not letters"),
        ("ok ok ok ok ok ok ok ok", "repetition loop"),
        ("Is it on? Is it on? Is it on? Is it on?", "repetition loop"),
        ("xkcdq brrzt pfftk grrrk", "not language"),
        ("I tried restarting it but the", "stops mid-sentence"),
    ],
)
def test_degenerate_output_is_named(text: str, reason: str) -> None:
    assert degenerate_reason(text) == reason


@pytest.mark.parametrize(
    "text",
    ["only wifi, it's a TP-Link Archer C6", "which one is cheaper?", "Yes, the blue one.", "gracias, ¿y el envío?"],
)
def test_ordinary_turns_are_not_degenerate(text: str) -> None:
    assert degenerate_reason(text) is None


def test_closings_are_thanks_and_goodbyes_with_nothing_asked() -> None:
    assert is_closing("thanks, that's all I needed!")
    assert is_closing("ok")
    assert is_closing("Perfect, thank you so much. Bye!")
    assert not is_closing("thanks, but which cable should I buy?")
    assert not is_closing("ok it happens only on wifi")


def test_assistant_phrasing_is_recognised() -> None:
    assert assistant_style("Sure! Here's how to reset your router: unplug it for 30 seconds.")
    assert assistant_style("Could you please provide your order number?")
    assert assistant_style("1. Open settings\n2. Choose network")
    assert assistant_style("I have the TP-Link, should I try the cable?") is None


@given(st.text(max_size=200))
def test_classify_always_returns_a_known_label(text: str) -> None:
    label = classify(text, CONTEXT, lambda a, b: 0.5)
    assert label.label in LABELS
    assert label.reason


def load(split: str) -> list[dict[str, Any]]:
    with (DATA / f"{split}.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@pytest.mark.slow
def test_held_out_accuracy_is_at_least_85_percent() -> None:
    examples = load("test")
    counts = Counter(e["label"] for e in examples)
    assert all(counts[label] >= 20 for label in LABELS), counts
    contexts = [tuple(Message(m["role"], m["content"]) for m in e["context"]) for e in examples]
    vectors = TextVectors(Embedder())
    table = vectors.add_all([e["prediction"] for e in examples] + [m.text for c in contexts for m in c])
    predicted = [
        classify(e["prediction"], context, lambda a, b: similarity.semantic(a, b, table)).label
        for e, context in zip(examples, contexts, strict=True)
    ]
    correct = sum(p == e["label"] for p, e in zip(predicted, examples, strict=True))
    assert correct / len(examples) >= 0.85, f"{correct}/{len(examples)}"
