"""Synthetic chat logs of any size for the benchmarks, deterministic for a given seed."""

from __future__ import annotations

import json
import random
from pathlib import Path

WORDS = [
    "order",
    "refund",
    "invoice",
    "password",
    "router",
    "printer",
    "flight",
    "hotel",
    "booking",
    "payment",
    "card",
    "account",
    "error",
    "install",
    "update",
    "python",
    "function",
    "list",
    "delivery",
    "size",
    "colour",
    "return",
    "warranty",
    "subscription",
    "plan",
    "upgrade",
    "cancel",
    "schedule",
    "address",
    "the",
    "a",
    "my",
    "your",
    "it",
    "this",
    "that",
    "when",
    "why",
    "how",
    "which",
    "can",
    "could",
    "would",
    "please",
    "thanks",
    "still",
    "again",
    "second",
    "first",
    "other",
]


def sentence(rng: random.Random, low: int = 6, high: int = 24) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(low, high)))


def write_log(path: Path, conversations: int, messages: int, seed: int = 0) -> int:
    """Write `conversations` JSONL lines of `messages` alternating user/assistant turns (starting and ending with the
    user); returns the number of probes (assistant turns followed by a user turn)."""
    rng = random.Random(seed)
    with path.open("w", encoding="utf-8") as handle:
        for number in range(conversations):
            turns = [{"role": "user" if i % 2 == 0 else "assistant", "content": sentence(rng)} for i in range(messages)]
            handle.write(json.dumps({"id": f"conv-{number:07d}", "messages": turns}) + "\n")
    return conversations * ((messages - 1) // 2)
