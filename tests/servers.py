"""Loopback OpenAI-compatible servers speaking real HTTP, scripted for fault injection (not for generation tests,
which talk to a real llama.cpp server)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

SECRET = "sk-test-0123456789abcdef-secret"


class ScriptedModel(BaseHTTPRequestHandler):
    """A loopback OpenAI-compatible server speaking real HTTP; subclasses script the generations."""

    requests: ClassVar[list[str]] = []

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, status: int, body: dict[str, object]) -> None:
        payload = json.dumps(body).encode()
        self.send_response(status)
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


class FailingModel(ScriptedModel):
    """Answers every generation with HTTP 500, quoting the caller's credentials back."""

    def generate(self, body: dict[str, Any]) -> None:
        auth = self.headers.get("Authorization", "")
        self._send(500, {"error": {"message": f"backend exploded while serving {auth}", "type": "server_error"}})


class ParrotModel(ScriptedModel):
    """Always answers with the last message it was given: under roleswap, the assistant's last message verbatim."""

    def generate(self, body: dict[str, Any]) -> None:
        text = body["messages"][-1]["content"]
        self._send(
            200,
            {
                "id": "x",
                "object": "chat.completion",
                "created": 0,
                "model": "scripted",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            },
        )


@contextmanager
def serve(handler: type[ScriptedModel]) -> Iterator[str]:
    handler.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    finally:
        server.shutdown()
        server.server_close()
