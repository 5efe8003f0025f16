"""The OpenAI-compatible backend: against a real llama.cpp server, and against a failing HTTP server."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar

import jsonschema
import pytest

from utg_pytest.ingest.schema import load_schema

SECRET = "sk-test-0123456789abcdef-secret"


@pytest.mark.slow
@pytest.mark.parametrize("prompt", ["template", "roleswap"])
def test_llama_cpp_server_gives_results_of_the_same_shape(
    pytester: pytest.Pytester, small_log: Path, llama_server: str, prompt: str
) -> None:
    out = pytester.path / "results.jsonl"
    result = pytester.runpytest(
        "--utg-logs",
        str(small_log),
        "--utg-base-url",
        llama_server,
        "--utg-prompt",
        prompt,
        "--utg-max-probes",
        "3",
        "--utg-results",
        str(out),
        "--utg-min-similarity",
        "-1",
        "--utg-min-lexical",
        "0",
    )
    result.assert_outcomes(passed=5)
    result.stdout.fnmatch_lines([f"model: {llama_server}#smollm2 | prompt {prompt}*", "predictions: 3 scored*"])
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(records) == 3
    for record in records:
        jsonschema.validate(record, load_schema("result"))
        assert record["model"]["backend"] == f"{llama_server}#smollm2"
        assert record["usage"]["completion_tokens"] > 0


class FailingModel(BaseHTTPRequestHandler):
    """Lists one model, then answers every generation with HTTP 500, quoting the caller's credentials back."""

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
        self._send(200, {"object": "list", "data": [{"id": "broken-model", "object": "model", "owned_by": "me"}]})

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.requests.append(self.path)
        auth = self.headers.get("Authorization", "")
        self._send(500, {"error": {"message": f"backend exploded while serving {auth}", "type": "server_error"}})


@pytest.fixture
def failing_server() -> Iterator[str]:
    FailingModel.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FailingModel)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_model_errors_are_retried_then_reported_on_each_probe_without_the_key(
    pytester: pytest.Pytester, small_log: Path, failing_server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_LLM_KEY", SECRET)
    out = pytester.path / "results.jsonl"
    result = pytester.runpytest(
        "--utg-logs",
        str(small_log),
        "--utg-base-url",
        failing_server,
        "--utg-api-key-env",
        "MY_LLM_KEY",
        "--utg-retries",
        "1",
        "--utg-max-probes",
        "2",
        "--utg-results",
        str(out),
    )
    result.assert_outcomes(errors=2, failed=2)
    assert len(FailingModel.requests) == 4
    result.stdout.fnmatch_lines(
        [
            "*no prediction: InternalServerError: *backend exploded while serving Bearer *** (after 2 attempt(s))",
            "*FAIL semantic_similarity: no probe produced a prediction",
            "predictions: 0 scored, 2 without a prediction (model errors)",
        ]
    )
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["prediction"] for r in records] == [None, None]
    assert all("(after 2 attempt(s))" in r["error"] and r["passed"] is None for r in records)
    for record in records:
        jsonschema.validate(record, load_schema("result"))
    assert SECRET not in result.stdout.str() + result.stderr.str() + out.read_text(encoding="utf-8")


def test_unreachable_endpoint_is_reported_not_a_crash(pytester: pytest.Pytester, small_log: Path) -> None:
    from conftest import free_port

    url = f"http://127.0.0.1:{free_port()}/v1"
    result = pytester.runpytest(
        "--utg-logs",
        str(small_log),
        "--utg-base-url",
        url,
        "--utg-model",
        "m",
        "--utg-retries",
        "0",
        "--utg-timeout",
        "2",
        "--utg-max-probes",
        "1",
    )
    result.assert_outcomes(errors=1, failed=2)
    result.stdout.fnmatch_lines(["*no prediction: APIConnectionError: Connection error. (after 1 attempt(s))"])


def test_a_backend_that_cannot_start_fails_every_probe_with_one_message(
    pytester: pytest.Pytester, small_log: Path, tmp_path: Path
) -> None:
    result = pytester.runpytest(
        "--utg-logs", str(small_log), "--utg-gguf", str(tmp_path / "missing.gguf"), "--utg-max-probes", "2"
    )
    result.assert_outcomes(errors=2, failed=2)
    result.stdout.fnmatch_lines(
        ["*model backend could not start: FileNotFoundError: --utg-gguf *missing.gguf: no such file"]
    )
