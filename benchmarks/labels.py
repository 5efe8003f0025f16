"""Agreement of the heuristic plausibility labeller with human readers, and the fit of its model.

Two labelled sets:
- handwritten (tests/data/plausibility): synthetic candidate turns written for this project;
- real (tests/data/real_predictions): real predictions of the embedded model, blind-labelled by reader A, with a
  second reader (B) on 120 shared items for reference.

Both have a fixed `dev` / `test` split. `--fit` refits the model (utg_pytest/scoring/labels_model.json) on the dev
splits only; the test splits are only ever measured.

    python benchmarks/labels.py [--corpus handwritten|real|both] [--split test|dev] [--errors]
    python benchmarks/labels.py --fit
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from utg_pytest.model import Message  # noqa: E402
from utg_pytest.scoring import similarity  # noqa: E402
from utg_pytest.scoring.embeddings import Embedder, TextVectors  # noqa: E402
from utg_pytest.scoring.features import NAMES, Semantic, features  # noqa: E402
from utg_pytest.scoring.labels import (  # noqa: E402
    CONTEXT,
    LABELS,
    MODEL_FILE,
    Label,
    classify,
    context_texts,
    measure,
    rule_label,
)

DATA = ROOT / "tests" / "data"
HANDWRITTEN = DATA / "plausibility"
REAL = DATA / "real_predictions"
MODEL = ROOT / "utg_pytest" / "scoring" / MODEL_FILE
REGULARISATION = 0.3
"""C of the logistic regression (inverse L2 strength), chosen by cross-validation over dev conversations."""
HANDWRITTEN_WEIGHT = 0.5
"""Weight of a handwritten dev line against a real one in the fit: the real predictions are what the labeller meets."""


@dataclass(frozen=True)
class Item:
    id: str
    prediction: str
    context: tuple[Message, ...]
    label: str


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def handwritten(split: str) -> list[Item]:
    return [
        Item(e["id"], e["prediction"], tuple(Message(m["role"], m["content"]) for m in e["context"]), e["label"])
        for e in read_jsonl(HANDWRITTEN / f"{split}.jsonl")
    ]


def real(split: str) -> list[Item]:
    """Each item with the whole context the model saw, as a run labels it (items.jsonl keeps only the last six
    messages; the rest comes from the conversation)."""
    conversations = {c["id"]: c["messages"] for c in read_jsonl(REAL / "conversations.jsonl")}
    items = {e["item_id"]: e for e in read_jsonl(REAL / "items.jsonl")}
    chosen = [items[line["item_id"]] for line in read_jsonl(REAL / f"{split}.jsonl")]
    return [
        Item(
            e["item_id"],
            e["prediction"],
            tuple(
                Message(m["role"], m["content"]) for m in conversations[e["conversation_id"]][: e["context_messages"]]
            ),
            e["label"],
        )
        for e in chosen
    ]


def vectors(items: Sequence[Item], embedder: Embedder) -> Mapping[str, Any]:
    table = TextVectors(embedder)
    table.add(item.prediction for item in items)
    table.add(text for item in items for text in context_texts(item.context[-CONTEXT:]))
    return table.finish()


def similarity_of(table: Mapping[str, Any]) -> Semantic:
    return lambda a, b: similarity.semantic(a, b, table)


def label_all(items: Sequence[Item], embedder: Embedder) -> list[Label]:
    semantic = similarity_of(vectors(items, embedder))
    return [classify(i.prediction, i.context, semantic) for i in items]


def report(name: str, items: Sequence[Item], labels: Sequence[Label], elapsed: float, errors: bool) -> None:
    gold = [i.label for i in items]
    predicted = [label.label for label in labels]
    found = measure(name, gold, predicted)
    matrix = Counter(zip(gold, predicted, strict=True))
    correct = sum(matrix[(label, label)] for label in LABELS)
    print(
        f"{name}: {correct}/{found.items} agree ({found.agreement:.1%}); genuine_followup precision "
        f"{found.genuine_precision:.2f}, recall {found.genuine_recall:.2f}; {elapsed:.1f} s"
    )
    print(f"  {'label':<18}{'precision':>10}{'recall':>8}{'n':>5}")
    for label in LABELS:
        said = sum(matrix[(g, label)] for g in LABELS)
        real_count = sum(matrix[(label, p)] for p in LABELS)
        precision = f"{matrix[(label, label)] / said:.2f}" if said else "-"
        recall = f"{matrix[(label, label)] / real_count:.2f}" if real_count else "-"
        print(f"  {label:<18}{precision:>10}{recall:>8}{real_count:>5}")
    short = {label: label.split("_")[0][:8] for label in LABELS}
    print(f"  {'reader / labeller':<18}" + "".join(f"{short[p]:>9}" for p in LABELS))
    for g in LABELS:
        print(f"  {g:<18}" + "".join(f"{matrix[(g, p)]:>9}" for p in LABELS))
    if errors:
        for item, label in zip(items, labels, strict=True):
            if label.label != item.label:
                print(f"- {item.id}: reader {item.label}, labeller {label.label} ({label.reason})")
                print(f"    prediction: {item.prediction[:300]!r}")


def readers() -> None:
    """Reader A against reader B on the shared items: the ceiling a labeller can be held to."""
    a = {e["item_id"]: e["label"] for e in read_jsonl(REAL / "items.jsonl")}
    b = {e["item"]: e["label"] for e in read_jsonl(REAL / "labels_B.jsonl")}
    same = sum(a[item] == label for item, label in b.items())
    print(f"reader A vs reader B on {len(b)} shared items: {same}/{len(b)} agree ({same / len(b):.1%})")


def fit(embedder: Embedder) -> None:
    """Fit the model on what the rules leave to it, on both dev splits, and write its weights."""
    import numpy as np
    from scipy.optimize import minimize

    rows, targets, weights = [], [], []
    for items, weight in ((real("dev"), 1.0), (handwritten("dev"), HANDWRITTEN_WEIGHT)):
        semantic = similarity_of(vectors(items, embedder))
        for item in items:
            if rule_label(item.prediction, item.context) is not None:
                continue
            found = features(item.prediction, item.context, semantic, CONTEXT)
            rows.append([found[name] for name in NAMES])
            targets.append(LABELS.index(item.label))
            weights.append(weight)
    x = np.asarray(rows)
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale == 0] = 1.0
    z = (x - mean) / scale
    onehot = np.eye(len(LABELS))[targets]
    w = np.asarray(weights)
    shape = (len(LABELS), len(NAMES) + 1)

    def loss(flat: Any) -> tuple[float, Any]:
        params = flat.reshape(shape)
        scores = z @ params[:, :-1].T + params[:, -1]
        scores -= scores.max(axis=1, keepdims=True)
        log_p = scores - np.log(np.exp(scores).sum(axis=1, keepdims=True))
        value = -(w[:, None] * onehot * log_p).sum() + (params[:, :-1] ** 2).sum() / (2 * REGULARISATION)
        residual = w[:, None] * (np.exp(log_p) - onehot)
        grad = np.hstack([residual.T @ z + params[:, :-1] / REGULARISATION, residual.sum(axis=0)[:, None]])
        return float(value), grad.ravel()

    found = minimize(loss, np.zeros(shape).ravel(), jac=True, method="L-BFGS-B", options={"maxiter": 5000})
    params = found.x.reshape(shape)
    document = {
        "about": (
            "Multinomial logistic regression of utg_pytest.scoring.labels, fitted by benchmarks/labels.py --fit on "
            f"the dev splits of tests/data/real_predictions and tests/data/plausibility (weight {HANDWRITTEN_WEIGHT}), "
            f"C={REGULARISATION}, on the {len(rows)} items the rules leave to it."
        ),
        "labels": list(LABELS),
        "features": list(NAMES),
        "mean": [round(float(v), 6) for v in mean],
        "scale": [round(float(v), 6) for v in scale],
        "weights": [[round(float(v), 6) for v in row[:-1]] for row in params],
        "bias": [round(float(v), 6) for v in params[:, -1]],
    }
    MODEL.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    print(f"fitted on {len(rows)} dev items ({found.message}); wrote {MODEL.relative_to(ROOT)}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--corpus", default="both", choices=("handwritten", "real", "both"))
    parser.add_argument("--split", default="test", choices=("dev", "test"))
    parser.add_argument("--errors", action="store_true", help="list the items where the labeller disagrees")
    parser.add_argument("--fit", action="store_true", help="refit the model on the dev splits and write its weights")
    args = parser.parse_args()
    embedder = Embedder()
    if args.fit:
        fit(embedder)
        return
    corpora = {"handwritten": handwritten, "real": real}
    for name in ("handwritten", "real") if args.corpus == "both" else (args.corpus,):
        items = corpora[name](args.split)
        started = time.perf_counter()
        labels = label_all(items, embedder)
        report(f"{name} ({args.split})", items, labels, time.perf_counter() - started, args.errors)
        if name == "real":
            readers()


if __name__ == "__main__":
    main()
