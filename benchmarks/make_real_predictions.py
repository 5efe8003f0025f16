"""Build the real-predictions corpus: real embedded-model predictions of masked user turns, for blind labelling.

    python benchmarks/make_real_predictions.py generate   # conversations.jsonl -> items.jsonl, unlabelled (model)
    python benchmarks/make_real_predictions.py assemble   # items.jsonl + labels_A.jsonl -> items.jsonl, dev/test/shared

`generate` asks the embedded model (SmolLM2-135M-Instruct by default) for the user's next turn at every probe of
tests/data/real_predictions/conversations.jsonl (a probe is a user message right after an assistant message; its
context is everything before it, system message included), through the project's own request building and cleaning,
exactly as `runner._generate` does. Each probe gets one setting (prompt strategy x temperature), dealt round-robin
within each conversation kind so that every kind sees every setting; a seeded subset also gets the same strategy at
the other temperature, so temperatures can be compared on the same probes. It computes no score and no label.

`assemble` joins the items with the hand-written labels of reader A (labels_A.jsonl: item_id, label, confidence,
reason), rewriting items.jsonl in place (any earlier label fields are replaced, so it can be rerun), and writes a
split by conversation into dev.jsonl / test.jsonl (seeded, about 60/40, every kind in both; each line names one item,
whose full record is in items.jsonl) and shared.jsonl (item ids, without labels, for a second reader). Labels are
read, never computed, here.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
import zlib
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from utg_pytest.generate import Sampling, factory_for  # noqa: E402
from utg_pytest.generate.prompts import build_request, clean_turn  # noqa: E402
from utg_pytest.model import Message, Probe  # noqa: E402
from utg_pytest.settings import BackendConfig  # noqa: E402

DATA = ROOT / "tests" / "data" / "real_predictions"
CONVERSATIONS = DATA / "conversations.jsonl"
ITEMS = DATA / "items.jsonl"
LABELS = DATA / "labels_A.jsonl"

STRATEGIES = ("template", "roleswap", "instruct")
TEMPERATURES = (0.0, 0.7)
CELLS = [(s, t) for s in STRATEGIES for t in TEMPERATURES]
MAX_TOKENS = 64
SELECTION_SEED = 20240611
SECOND_SETTING_SHARE = 0.25
"""Share of probes that also get their strategy at the other temperature."""
CONTEXT_KEPT = 6
"""Context messages recorded with each item (the model saw all of them)."""


def load_conversations(path: Path = CONVERSATIONS) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def conversation_probes(conversation: dict[str, Any]) -> list[Probe]:
    """Every user message that directly follows an assistant message; turn k counts user messages from 1."""
    messages = [Message(m["role"], m["content"]) for m in conversation["messages"]]
    probes = []
    users = 0
    for index, message in enumerate(messages):
        if message.role != "user":
            continue
        users += 1
        if index > 0 and messages[index - 1].role == "assistant":
            probes.append(
                Probe(
                    id=f"{conversation['id']}::turn{users}",
                    source=CONVERSATIONS.name,
                    line=0,
                    conversation_id=conversation["id"],
                    turn=users,
                    context=tuple(messages[:index]),
                    target=message.text,
                )
            )
    return probes


def item_seed(item_id: str) -> int:
    return zlib.crc32(item_id.encode("utf-8")) % 2**31


def plan(conversations: list[dict[str, Any]]) -> list[tuple[dict[str, Any], Probe, str, float]]:
    """Which (probe, strategy, temperature) to generate: round-robin over the six settings within each kind, in a
    seeded shuffle, plus the other temperature for a seeded share of probes."""
    rng = random.Random(SELECTION_SEED)
    by_kind: dict[str, list[tuple[dict[str, Any], Probe]]] = defaultdict(list)
    for conversation in conversations:
        for probe in conversation_probes(conversation):
            by_kind[conversation["metadata"]["kind"]].append((conversation, probe))
    chosen = []
    for kind in sorted(by_kind):
        probes = by_kind[kind]
        rng.shuffle(probes)
        offset = rng.randrange(len(CELLS))
        for position, (conversation, probe) in enumerate(probes):
            strategy, temperature = CELLS[(position + offset) % len(CELLS)]
            chosen.append((conversation, probe, strategy, temperature))
            if rng.random() < SECOND_SETTING_SHARE:
                other = TEMPERATURES[1] if temperature == TEMPERATURES[0] else TEMPERATURES[0]
                chosen.append((conversation, probe, strategy, other))
    # Same strategy, same conversation, growing context: llama.cpp reuses the shared prompt prefix.
    order = {c["id"]: i for i, c in enumerate(conversations)}
    chosen.sort(key=lambda x: (STRATEGIES.index(x[2]), order[x[0]["id"]], x[1].turn, x[3]))
    return chosen


def item_id(probe: Probe, strategy: str, temperature: float) -> str:
    return f"{probe.conversation_id}:t{probe.turn}:{strategy}:{temperature:g}"


async def generate(out: Path, limit: int | None) -> None:
    conversations = load_conversations()
    chosen = plan(conversations)
    if limit is not None:
        chosen = chosen[:limit]
    config = BackendConfig()
    backend = await factory_for(config).open(config)
    started = time.perf_counter()
    rows = []
    try:
        for n, (conversation, probe, strategy, temperature) in enumerate(chosen, 1):
            iid = item_id(probe, strategy, temperature)
            seed = item_seed(iid)
            request = build_request(probe, strategy, backend.chat_template)
            answer, _ = await backend.generate(request, Sampling(temperature, MAX_TOKENS, seed))
            prediction = clean_turn(answer.text, request.stops)
            rows.append(
                {
                    "item_id": iid,
                    "conversation_id": probe.conversation_id,
                    "kind": conversation["metadata"]["kind"],
                    "lang": conversation["metadata"].get("lang", "en"),
                    "turn": probe.turn,
                    "strategy": strategy,
                    "temperature": temperature,
                    "seed": seed,
                    "max_tokens": MAX_TOKENS,
                    "context_messages": len(probe.context),
                    "context": [{"role": m.role, "content": m.text} for m in probe.context[-CONTEXT_KEPT:]],
                    "real_user_turn": probe.target,
                    "raw_output": answer.text,
                    "finish_reason": answer.finish_reason,
                    "completion_tokens": answer.completion_tokens,
                    "prediction": prediction,
                }
            )
            if n % 25 == 0:
                elapsed = time.perf_counter() - started
                print(f"{n}/{len(chosen)} items, {elapsed:.0f}s ({elapsed / n:.2f} s/item)", flush=True)
    finally:
        await backend.aclose()
    rows.sort(key=lambda r: r["item_id"])
    with out.open("w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
    elapsed = time.perf_counter() - started
    print(f"wrote {len(rows)} items to {out} in {elapsed:.0f}s; model {backend.identity}")
    print("per setting:", dict(Counter((r["strategy"], r["temperature"]) for r in rows)))
    print("per kind:", dict(Counter(r["kind"] for r in rows)))


SPLIT_SEED = 7
TEST_SHARE = 0.4
SHARED_SIZE = 120
SHARED_SEED = 11
LABELS_ORDER = ("genuine_followup", "restatement", "identity_drift", "irrelevant", "closing", "degenerate")


def split(conversations: list[dict[str, Any]]) -> dict[str, str]:
    """Conversation id -> "dev" or "test": within each kind, a seeded shuffle and the first 40% (at least one) go to
    test, so every kind is in both."""
    rng = random.Random(SPLIT_SEED)
    by_kind: dict[str, list[str]] = defaultdict(list)
    for conversation in conversations:
        by_kind[conversation["metadata"]["kind"]].append(conversation["id"])
    assignment = {}
    for kind in sorted(by_kind):
        ids = sorted(by_kind[kind])
        rng.shuffle(ids)
        n_test = max(1, min(len(ids) - 1, round(len(ids) * TEST_SHARE)))
        for i, cid in enumerate(ids):
            assignment[cid] = "test" if i < n_test else "dev"
    return assignment


def shared_ids(items: list[dict[str, Any]]) -> list[str]:
    """SHARED_SIZE item ids for a second reader, spread over labels and kinds: every (label, kind) stratum is drawn
    in turn, rarest labels first, until the quota is met."""
    rng = random.Random(SHARED_SEED)
    strata: dict[tuple[str, str], list[str]] = defaultdict(list)
    for item in items:
        strata[(item["label"], item["kind"])].append(item["item_id"])
    for ids in strata.values():
        ids.sort()
        rng.shuffle(ids)
    label_counts = Counter(item["label"] for item in items)
    # Each label gets an equal quota where it can fill it; what a rare label cannot fill goes to the others.
    quota = {label: 0 for label in label_counts}
    remaining = SHARED_SIZE
    while remaining > 0:
        open_labels = [lab for lab in quota if quota[lab] < label_counts[lab]]
        if not open_labels:
            break
        for label in sorted(open_labels, key=lambda lab: label_counts[lab]):
            if remaining == 0:
                break
            quota[label] += 1
            remaining -= 1
    chosen: list[str] = []
    for label, wanted in quota.items():
        kinds = sorted(k for (lab, k) in strata if lab == label)
        picked = 0
        while picked < wanted:
            for kind in kinds:
                if picked < wanted and strata[(label, kind)]:
                    chosen.append(strata[(label, kind)].pop())
                    picked += 1
    return sorted(chosen)


def assemble() -> None:
    conversations = load_conversations()
    label_fields = ("split", "label", "confidence", "reason", "reader")
    predictions = [
        {k: v for k, v in json.loads(line).items() if k not in label_fields}
        for line in ITEMS.read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    labels = {}
    for line in LABELS.read_text(encoding="utf-8").splitlines():
        if line.strip():
            row = json.loads(line)
            labels[row["item_id"]] = row
    missing = [p["item_id"] for p in predictions if p["item_id"] not in labels]
    extra = sorted(set(labels) - {p["item_id"] for p in predictions})
    if missing or extra:
        raise SystemExit(f"labels do not match predictions: missing {missing[:5]}, extra {extra[:5]}")
    assignment = split(conversations)
    items = []
    for p in predictions:
        row = labels[p["item_id"]]
        if row["label"] not in LABELS_ORDER or row["confidence"] not in ("sure", "unsure"):
            raise SystemExit(f"bad label row {row}")
        items.append(
            {
                **p,
                "split": assignment[p["conversation_id"]],
                "label": row["label"],
                "confidence": row["confidence"],
                "reason": row["reason"],
                "reader": "A",
            }
        )

    def write(path: Path, rows: list[dict[str, Any]]) -> None:
        with path.open("w", encoding="utf-8") as f:
            for r in rows:
                f.write(json.dumps(r, ensure_ascii=False) + "\n")

    write(ITEMS, items)
    for name in ("dev", "test"):
        members = [
            {"item_id": i["item_id"], "conversation_id": i["conversation_id"], "kind": i["kind"]}
            for i in items
            if i["split"] == name
        ]
        write(DATA / f"{name}.jsonl", members)
    write(DATA / "shared.jsonl", [{"item_id": i} for i in shared_ids(items)])
    print(f"{len(items)} items: {dict(Counter(i['split'] for i in items))}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    gen = sub.add_parser("generate")
    gen.add_argument("--out", type=Path, default=ITEMS)
    gen.add_argument("--limit", type=int, default=None, help="only the first N planned items (a timing check)")
    sub.add_parser("assemble")
    sub.add_parser("plan", help="print how many items each setting and kind would get, without a model")
    args = parser.parse_args()
    if args.command == "generate":
        asyncio.run(generate(args.out, args.limit))
    elif args.command == "assemble":
        assemble()
    else:
        chosen = plan(load_conversations())
        print(len(chosen), "items")
        print(Counter((s, t) for _, _, s, t in chosen))
        print(Counter(c["metadata"]["kind"] for c, _, _, _ in chosen))


if __name__ == "__main__":
    main()
