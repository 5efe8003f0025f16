"""A loopback OpenAI-compatible endpoint that misbehaves the way real ones do, at a seeded rate and mix, over real
HTTP: rate limits, server errors, answers past the client's timeout, dropped connections, malformed or empty bodies,
truncated and filtered answers.

Whether a request is answered with a fault, and with which, is a function of the seed, the request body and how many
times that body has arrived before, so a rerun (or a retry that repeats a body) meets the same faults; every request
and what it was answered is recorded, for a test to reconcile with what the run reported.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from servers import ScriptedModel, chat_reply, tag

FAULTS = (
    "rate_limit",
    "server_error",
    "unavailable",
    "slow",
    "dropped",
    "cut",
    "malformed",
    "no_choices",
    "length",
    "content_filter",
)
"""429 with Retry-After; 500; 503; an answer later than the client's timeout; the connection closed before any
response; closed halfway through the body; a body that is not JSON; `choices: []`; a truncated answer
(finish_reason "length"); a filtered one (finish_reason "content_filter")."""
ANSWERED = ("ok", "length")
"""What the client gets a prediction from."""
FINAL = ("content_filter",)
"""Faults that are the endpoint's verdict on the request, not a passing failure: asking again would not change them."""


@dataclass(frozen=True)
class Exchange:
    body: str
    """The request body, canonical JSON (sorted keys)."""
    attempt: int
    """How many times this body had arrived, this one included."""
    answer: str
    """"ok" or the fault answered."""


class FaultyModel(ScriptedModel):
    """Configure with `faulty(...)`, which makes a subclass with its own state."""

    rate: ClassVar[float] = 0.2
    faults: ClassVar[tuple[str, ...]] = FAULTS
    seed: ClassVar[str] = "0"
    slow_s: ClassVar[float] = 3.0
    retry_after_s: ClassVar[float] = 1.0
    first: ClassVar[int | None] = None
    """When set, the first `first` attempts at each body are faults and later ones are answered: a fault that lasts
    exactly so long, to test the edge of the retry budget."""
    exchanges: ClassVar[list[Exchange]] = []
    lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def reset(cls) -> None:
        cls.exchanges = []

    @classmethod
    def decide(cls, body: str, attempt: int) -> str:
        digest = hashlib.sha256(f"{cls.seed}\0{attempt}\0{body}".encode()).digest()
        draw = int.from_bytes(digest[:8], "big") / 2**64
        faulty = draw < cls.rate if cls.first is None else attempt <= cls.first
        return cls.faults[int.from_bytes(digest[8:16], "big") % len(cls.faults)] if faulty else "ok"

    def generate(self, body: dict[str, Any]) -> None:
        canonical = json.dumps(body, sort_keys=True, ensure_ascii=False)
        cls = type(self)
        with cls.lock:
            attempt = 1 + sum(e.body == canonical for e in cls.exchanges)
            answer = cls.decide(canonical, attempt)
            cls.exchanges.append(Exchange(canonical, attempt, answer))
        self.answer(answer, tag(canonical))

    def answer(self, fault: str, token: str) -> None:
        if fault == "rate_limit":
            self._send(429, _error("slow down", "rate_limit"), {"Retry-After": f"{self.retry_after_s:g}"})
        elif fault in ("server_error", "unavailable"):
            self._send(500 if fault == "server_error" else 503, _error(f"fault: {fault}", "server_error"))
        elif fault == "slow":
            time.sleep(self.slow_s)
            with contextlib.suppress(OSError):  # the client gave up and closed the connection
                self._send(200, chat_reply(f"late {token}"))
        elif fault == "dropped":
            self.close_connection = True
        elif fault == "cut":
            self._cut(json.dumps(chat_reply(f"cut {token}")).encode())
        elif fault == "malformed":
            self._raw(b'{"id": "x", "choices": [{"index": 0, "message": ')
        elif fault == "no_choices":
            self._send(200, {**chat_reply(""), "choices": []})
        elif fault in ("length", "content_filter"):
            text = f"{'truncated' if fault == 'length' else 'filtered'} {token} and then I"
            self._send(200, chat_reply(text, finish_reason=fault))
        else:
            self._send(200, chat_reply(f"ok {token}"))

    def _raw(self, payload: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _cut(self, payload: bytes) -> None:
        """Headers promising the whole body, half of it, then the connection closed."""
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload[: len(payload) // 2])
        self.wfile.flush()
        self.close_connection = True


def _error(message: str, kind: str) -> dict[str, object]:
    return {"error": {"message": message, "type": kind}}


def faulty(
    rate: float = 0.2,
    faults: tuple[str, ...] = FAULTS,
    seed: str = "0",
    slow_s: float = 3.0,
    first: int | None = None,
    retry_after_s: float = 1.0,
) -> type[FaultyModel]:
    """A fault server class of its own, so its recorded exchanges are those of one test. `slow_s` must exceed the
    client's timeout."""
    unknown = set(faults) - set(FAULTS)
    assert not unknown, f"unknown faults: {unknown}"
    attributes = {
        "rate": rate,
        "faults": faults,
        "seed": seed,
        "slow_s": slow_s,
        "first": first,
        "retry_after_s": retry_after_s,
        "lock": threading.Lock(),
    }
    return type("Faulty", (FaultyModel,), attributes)


def expected_exchanges(model: type[FaultyModel], body: str, retries: int) -> list[str]:
    """What the server answers one probe's request, attempt after attempt, under the backend's policy: transient
    faults are asked again within 1 + retries attempts; an answer, or a final fault, ends it."""
    answers: list[str] = []
    for attempt in range(1, retries + 2):
        answers.append(model.decide(body, attempt))
        if answers[-1] in ANSWERED or answers[-1] in FINAL:
            break
    return answers


def log_probe_ids(directory: Path) -> set[str]:
    """Probe ids read from the logs without the plugin: each user message right after the assistant's, numbered by
    its place among the conversation's user messages."""
    found = set()
    for path in sorted(directory.glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            conversation = json.loads(line)
            previous, users = None, 0
            for message in conversation["messages"]:
                if message["role"] not in ("user", "assistant"):
                    continue
                users += message["role"] == "user"
                if message["role"] == "user" and previous == "assistant":
                    found.add(f"{path.relative_to(directory.parent)}::{conversation['id']}::turn{users}")
                previous = message["role"]
    return found
