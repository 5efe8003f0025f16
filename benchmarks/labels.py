"""Accuracy and confusion matrix of the heuristic plausibility classifier on the hand-labelled set
(tests/data/plausibility: `dev` was used to choose the rules and cut-offs, `test` was not).

    python benchmarks/labels.py [--split test] [--errors]
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any

from utg_pytest.model import Message
from utg_pytest.scoring import similarity
from utg_pytest.scoring.embeddings import Embedder, TextVectors
from utg_pytest.scoring.labels import LABELS, Label, classify

DATA = Path(__file__).resolve().parent.parent / "tests" / "data" / "plausibility"


def load(split: str) -> list[dict[str, Any]]:
    with (DATA / f"{split}.jsonl").open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def predict(examples: list[dict[str, Any]], embedder: Embedder) -> list[Label]:
    contexts = [tuple(Message(m["role"], m["content"]) for m in e["context"]) for e in examples]
    vectors = TextVectors(embedder)
    vectors.add(e["prediction"] for e in examples)
    vectors.add(m.text for context in contexts for m in context)
    table = vectors.finish()
    return [
        classify(e["prediction"], context, lambda a, b: similarity.semantic(a, b, table))
        for e, context in zip(examples, contexts, strict=True)
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--split", default="test", choices=("dev", "test"))
    parser.add_argument("--errors", action="store_true", help="list the misclassified examples")
    args = parser.parse_args()
    examples = load(args.split)
    started = time.perf_counter()
    labels = predict(examples, Embedder())
    elapsed = time.perf_counter() - started
    gold = [e["label"] for e in examples]
    matrix = Counter(zip(gold, (label.label for label in labels), strict=True))
    correct = sum(matrix[(label, label)] for label in LABELS)
    short = {label: label.split("_")[0][:8] for label in LABELS}
    print(
        f"labels ({args.split}): {correct}/{len(examples)} correct, accuracy {correct / len(examples):.1%} "
        f"(target >= 85%); {elapsed:.1f} s including the embedding model"
    )
    header = "gold / predicted"
    print(f"  {header:<18}" + "".join(f"{short[p]:>9}" for p in LABELS) + "   recall")
    for g in LABELS:
        row = [matrix[(g, p)] for p in LABELS]
        total = sum(row)
        recall = f"{matrix[(g, g)] / total:.0%}" if total else "-"
        print(f"  {g:<18}" + "".join(f"{n:>9}" for n in row) + f"   {recall:>6}")
    if args.errors:
        for example, label in zip(examples, labels, strict=True):
            if label.label != example["label"]:
                print(f"- {example['id']}: gold {example['label']}, got {label.label} ({label.reason})")
                print(f"    prediction: {example['prediction']!r}")


if __name__ == "__main__":
    main()
