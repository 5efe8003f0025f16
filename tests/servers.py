"""Loopback OpenAI-compatible servers speaking real HTTP, scripted for fault injection (not for generation tests,
which talk to a real llama.cpp server)."""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

SECRET = "sk-test-0123456789abcdef-secret"


def scripted(url: str) -> tuple[str, ...]:
    """Options that point a run of the small log at a scripted server."""
    return ("--utg-logs", "logs.jsonl", "--utg-base-url", url, "--utg-model", "scripted", "--utg-prompt", "roleswap")


class ScriptedModel(BaseHTTPRequestHandler):
    """A loopback OpenAI-compatible server speaking real HTTP; subclasses script the generations."""

    requests: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: dict[str, object], headers: dict[str, str] | None = None) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def do_GET(self) -> None:
        self._send(200, {"object": "list", "data": [{"id": "scripted", "object": "model", "owned_by": "me"}]})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
        self.requests.append(self.path)
        self.generate(body)

    def generate(self, body: dict[str, Any]) -> None:
        raise NotImplementedError

    @classmethod
    def reset(cls) -> None:
        """Forget what earlier tests sent (class-level script state)."""


class FailingModel(ScriptedModel):
    """Answers every generation with HTTP 500, quoting the caller's credentials back."""

    def generate(self, body: dict[str, Any]) -> None:
        auth = self.headers.get("Authorization", "")
        self._send(500, {"error": {"message": f"backend exploded while serving {auth}", "type": "server_error"}})


class ParrotModel(ScriptedModel):
    """Always answers with the last message it was given: under roleswap, the assistant's last message verbatim."""

    def generate(self, body: dict[str, Any]) -> None:
        self._send(200, chat_reply(body["messages"][-1]["content"]))


class LoopbackServer(ThreadingHTTPServer):
    """A listen backlog deeper than the standard library's 5: two xdist workers with 8 requests in flight each would
    otherwise see a connection refused now and then on a loaded machine, and retry."""

    request_queue_size = 128
    daemon_threads = True


@contextmanager
def serve(handler: type[ScriptedModel]) -> Iterator[str]:
    handler.requests = []
    handler.reset()
    server = LoopbackServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()


def chat_reply(
    text: str, prompt_tokens: int = 10, completion_tokens: int = 5, finish_reason: str = "stop"
) -> dict[str, object]:
    return {
        "id": "x",
        "object": "chat.completion",
        "created": 0,
        "model": "scripted",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish_reason}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


class SlowModel(ScriptedModel):
    """Parrots after a fixed delay and records the most requests it ever had in flight at once."""

    delay_s: ClassVar[float] = 0.3
    in_flight: ClassVar[int] = 0
    most_in_flight: ClassVar[int] = 0
    lock: ClassVar[threading.Lock] = threading.Lock()

    @classmethod
    def reset(cls) -> None:
        cls.in_flight = cls.most_in_flight = 0

    def generate(self, body: dict[str, Any]) -> None:
        cls = type(self)
        with cls.lock:
            cls.in_flight += 1
            cls.most_in_flight = max(cls.most_in_flight, cls.in_flight)
        time.sleep(cls.delay_s)
        with cls.lock:
            cls.in_flight -= 1
        self._send(200, chat_reply(body["messages"][-1]["content"]))


class RateLimitedModel(ScriptedModel):
    """Refuses the first request for each conversation with 429 and Retry-After, then answers; the arrival times of
    each conversation's requests are kept."""

    retry_after_s: ClassVar[int] = 1
    arrivals: ClassVar[dict[str, list[float]]] = {}

    @classmethod
    def reset(cls) -> None:
        cls.arrivals = {}

    def generate(self, body: dict[str, Any]) -> None:
        arrivals = self.arrivals.setdefault(json.dumps(body["messages"]), [])
        arrivals.append(time.monotonic())
        if len(arrivals) == 1:
            headers = {"Retry-After": str(self.retry_after_s)}
            self._send(429, {"error": {"message": "slow down", "type": "rate_limit"}}, headers)
        else:
            self._send(200, chat_reply(body["messages"][-1]["content"]))


class FlakyModel(ScriptedModel):
    """Fails every request for a conversation with HTTP 500 until its third attempt."""

    seen: ClassVar[dict[str, int]] = {}

    @classmethod
    def reset(cls) -> None:
        cls.seen = {}

    def generate(self, body: dict[str, Any]) -> None:
        key = json.dumps(body["messages"])
        self.seen[key] = self.seen.get(key, 0) + 1
        if self.seen[key] < 3:
            self._send(500, {"error": {"message": "try again", "type": "server_error"}})
        else:
            self._send(200, chat_reply(body["messages"][-1]["content"]))


class HungryModel(ScriptedModel):
    """Parrots, reporting 300 prompt tokens per request: a few requests exhaust a small token budget."""

    def generate(self, body: dict[str, Any]) -> None:
        self._send(200, chat_reply(body["messages"][-1]["content"], prompt_tokens=300))


class VariedModel(ScriptedModel):
    """A deterministic user who answers differently for each conversation: a reply picked by a hash of what it was
    sent, with a word of the assistant's last message, so predictions, scores and labels vary from probe to probe."""

    REPLIES: ClassVar[tuple[str, ...]] = (
        "ok, and what about {word}?",
        "that did not work, I still see {word}",
        "thanks, I will try {word} tonight",
        "can you explain {word} again, more simply?",
        "no, I meant the other {word}",
    )

    def generate(self, body: dict[str, Any]) -> None:
        last = body["messages"][-1]["content"]
        words = [w.strip(".,!?") for w in last.split() if len(w) > 4] or ["that"]
        digest = int(hashlib.sha256(last.encode()).hexdigest(), 16)
        text = self.REPLIES[digest % len(self.REPLIES)].format(word=words[digest % len(words)])
        self._send(200, chat_reply(text))


class RecordingModel(ParrotModel):
    """Parrots, and keeps every request body it received, to check what left the machine."""

    bodies: ClassVar[list[str]] = []

    @classmethod
    def reset(cls) -> None:
        cls.bodies = []

    def generate(self, body: dict[str, Any]) -> None:
        self.bodies.append(json.dumps(body, ensure_ascii=False))
        super().generate(body)


class ContentModel(ScriptedModel):
    """A user who always answers the same: it predicts some conversations' real turns well and others badly, so a
    run's slices differ."""

    REPLY = "thanks, that fixed it"

    def generate(self, body: dict[str, Any]) -> None:
        self._send(200, chat_reply(self.REPLY))


class SupportBreaksModel(ContentModel):
    """ContentModel, except on support conversations (their first message says so), where it talks of something
    else: a candidate that got worse on one slice only."""

    def generate(self, body: dict[str, Any]) -> None:
        first = next((m["content"] for m in body["messages"] if "question number" in m["content"]), "")
        self._send(200, chat_reply("the weather in Lisbon is lovely" if "support" in first else self.REPLY))


def tag(body: str) -> str:
    """A short token naming a request body: servers that answer with it let a prediction tell which request it
    answered."""
    return "t" + hashlib.sha256(body.encode()).hexdigest()[:10]


class TaggedSlowModel(ScriptedModel):
    """Answers `ok <tag of the body>` after a delay, keeping every body (canonical JSON) it received and, once the
    answer is written, answered: a run against it can be killed halfway, knowing which probes were answered."""

    delay_s: ClassVar[float] = 0.25
    received: ClassVar[list[str]] = []
    answered: ClassVar[list[str]] = []

    @classmethod
    def reset(cls) -> None:
        cls.received, cls.answered = [], []

    def generate(self, body: dict[str, Any]) -> None:
        canonical = json.dumps(body, sort_keys=True, ensure_ascii=False)
        self.received.append(canonical)
        time.sleep(self.delay_s)
        self._send(200, chat_reply(f"ok {tag(canonical)}"))
        self.answered.append(canonical)
