"""The heuristic plausibility labeller: its rules and features one by one, its model file, and its agreement with
human readers on the held-out splits (the published figure is recomputed here, so it cannot go stale)."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from utg_pytest.model import Message
from utg_pytest.scoring import similarity
from utg_pytest.scoring.embeddings import Embedder, TextVectors
from utg_pytest.scoring.features import NAMES, assistant_style, cut_off_reason, degenerate_reason, is_closing
from utg_pytest.scoring.labels import (
    CONTEXT,
    DEGENERATE,
    GENUINE,
    HEURISTIC_AGREEMENT,
    IDENTITY_DRIFT,
    LABELS,
    READER_AGREEMENT,
    RESTATEMENT,
    classify,
    context_texts,
    measure,
    model,
)

pytestmark = pytest.mark.heavy  # real sentence-transformers embeddings

DATA = Path(__file__).parent / "data"
CONTEXT_MESSAGES = (
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
        ("I'm sorry about the delay. I'm sorry about the delay, really. I'm sorry about the delay.", "repetition loop"),
        ("xkcdq brrzt pfftk grrrk", "not language"),
    ],
)
def test_degenerate_output_is_named(text: str, reason: str) -> None:
    assert degenerate_reason(text) == reason


@pytest.mark.parametrize(
    "text",
    [
        "only wifi, it's a TP-Link Archer C6",
        "which one is cheaper?",
        "Yes, the blue one.",
        "gracias, ¿y el envío?",
        "x = 15",
        "I tried restarting it but the",
    ],
)
def test_ordinary_or_merely_cut_off_turns_are_not_degenerate_by_rule(text: str) -> None:
    """Being cut off is for the model to weigh: a cut-off reply in the assistant's voice is identity drift."""
    assert degenerate_reason(text) is None


def test_cut_off_text_is_recognised() -> None:
    assert cut_off_reason("I tried restarting it but the") == "stops mid-sentence"
    assert cut_off_reason("the router restarts and then the rout") == "cut off mid-word"
    assert cut_off_reason("it drops on wifi only.") is None


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


def test_copies_are_labelled_by_whose_text_they_copy() -> None:
    """Copies are found in the whole context, also beyond the window the semantic features look at."""
    long_ago = (
        Message("system", "You are the support assistant for Acme Telecom."),
        *CONTEXT_MESSAGES,
        *(
            Message(role, f"{role} message number {i} about something else")
            for i in range(4)
            for role in ("user", "assistant")
        ),
    )

    def label(prediction: str) -> str:
        return classify(prediction, long_ago, lambda a, b: 0.3).label

    assert label("my router keeps dropping the connection every evening") == RESTATEMENT
    assert label("Does it happen on Wi-Fi only, or also with a cable? And which router model is it?") == IDENTITY_DRIFT
    assert label("You are the support assistant for Acme Telecom.") == IDENTITY_DRIFT


def test_the_model_file_matches_the_features() -> None:
    found = model()
    assert found.names == NAMES
    assert found.labels == LABELS
    assert all(len(row) == len(NAMES) for row in found.weights)


@given(st.text(max_size=200))
def test_classify_always_returns_a_known_label(text: str) -> None:
    label = classify(text, CONTEXT_MESSAGES, lambda a, b: 0.5)
    assert label.label in LABELS
    assert label.reason


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def handwritten(split: str) -> list[tuple[str, tuple[Message, ...], str]]:
    return [
        (e["prediction"], tuple(Message(m["role"], m["content"]) for m in e["context"]), e["label"])
        for e in read_jsonl(DATA / "plausibility" / f"{split}.jsonl")
    ]


def real(split: str) -> list[tuple[str, tuple[Message, ...], str]]:
    """With the whole context the model saw, rebuilt from the conversation, as a run labels it."""
    root = DATA / "real_predictions"
    conversations = {c["id"]: c["messages"] for c in read_jsonl(root / "conversations.jsonl")}
    items = {e["item_id"]: e for e in read_jsonl(root / "items.jsonl")}
    chosen = [items[line["item_id"]] for line in read_jsonl(root / f"{split}.jsonl")]
    return [
        (
            e["prediction"],
            tuple(
                Message(m["role"], m["content"]) for m in conversations[e["conversation_id"]][: e["context_messages"]]
            ),
            e["label"],
        )
        for e in chosen
    ]


def labelled(examples: Sequence[tuple[str, tuple[Message, ...], str]]) -> list[str]:
    vectors = TextVectors(Embedder())
    table = vectors.add_all(
        [prediction for prediction, _, _ in examples]
        + [text for _, context, _ in examples for text in context_texts(context[-CONTEXT:])]
    )
    return [
        classify(prediction, context, lambda a, b: similarity.semantic(a, b, table)).label
        for prediction, context, _ in examples
    ]


def test_the_published_agreement_on_real_predictions_is_the_measured_one() -> None:
    examples = real("test")
    found = measure(HEURISTIC_AGREEMENT.corpus, [gold for _, _, gold in examples], labelled(examples))
    assert found.items == HEURISTIC_AGREEMENT.items
    assert found.agreement == pytest.approx(HEURISTIC_AGREEMENT.agreement, abs=5e-4)
    assert found.genuine_precision == pytest.approx(HEURISTIC_AGREEMENT.genuine_precision, abs=5e-4)
    assert found.genuine_recall == pytest.approx(HEURISTIC_AGREEMENT.genuine_recall, abs=5e-4)


def test_the_published_reader_agreement_is_the_readers_own() -> None:
    folder = Path(__file__).parent / "data" / "real_predictions"
    first = {row["item_id"]: row["label"] for row in map(json.loads, (folder / "labels_A.jsonl").open())}
    second = [json.loads(line) for line in (folder / "labels_B.jsonl").open()]
    assert sum(first[row["item"]] == row["label"] for row in second) / len(second) == READER_AGREEMENT


def test_agreement_counts_genuine_precision_and_recall() -> None:
    found = measure("x", [GENUINE, GENUINE, DEGENERATE, DEGENERATE], [GENUINE, DEGENERATE, GENUINE, DEGENERATE])
    assert (found.items, found.agreement, found.genuine_precision, found.genuine_recall) == (4, 0.5, 0.5, 0.5)


@pytest.mark.slow
def test_held_out_handwritten_accuracy_is_at_least_85_percent() -> None:
    examples = handwritten("test")
    counts = Counter(gold for _, _, gold in examples)
    assert all(counts[label] >= 20 for label in LABELS), counts
    predicted = labelled(examples)
    correct = sum(p == gold for p, (_, _, gold) in zip(predicted, examples, strict=True))
    assert correct / len(examples) >= 0.85, f"{correct}/{len(examples)}"
