"""Shared fixtures: paths to the shipped logs and models, a real llama.cpp OpenAI-compatible server, and small logs."""

from __future__ import annotations

import importlib
import json
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from utg_pytest.generate.embedded import default_gguf

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"
SERVER_START_TIMEOUT_S = 120
LOW_GATES = (
    "--utg-min-similarity",
    "-1",
    "--utg-min-lexical",
    "0",
    "--utg-min-skill",
    "-100",
    "--utg-max-echo-rate",
    "1",
    "--utg-min-followup-rate",
    "0",
)
"""Gates no model can fail, for tests about everything but the gates' verdict."""
GATES = 5
"""Gate items in every run: semantic and lexical similarity, skill, echo rate, follow-up rate."""


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def gguf_path() -> Path:
    return default_gguf()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def llama_server(gguf_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `python -m llama_cpp.server` on 127.0.0.1 serving the bundled GGUF; yields its /v1 base URL."""
    port = free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "llama_cpp.server",
                "--model",
                str(gguf_path),
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--n_ctx",
                "4096",
                "--model_alias",
                "smollm2",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    try:
        while True:
            if process.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{base_url}/models", timeout=2) as response:
                    json.load(response)
                break
            except OSError:
                if time.monotonic() > deadline:
                    pytest.fail(f"llama_cpp.server not ready after {SERVER_START_TIMEOUT_S}s")
                time.sleep(0.5)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def read_results(path: Path) -> list[dict[str, Any]]:
    """The probe lines of a --utg-results file (its first line is the run header), each validated against the record
    schema and with its result's fields beside the probe's for brevity."""
    from jsonschema import Draft202012Validator

    from utg_pytest.ingest.schema import load_schema

    validator = Draft202012Validator(load_schema("record"))
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for line in lines:
        validator.validate(line)
    assert lines[0]["kind"] == "run"
    return [{**line["result"], **{k: v for k, v in line.items() if k != "result"}} for line in lines[1:]]


def validate_baseline(path: Path) -> int:
    """Check every line of a baseline file against schemas/baseline.schema.json (which refers to the record schema);
    returns the number of probe lines."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    from utg_pytest.ingest.schema import load_schema

    record = load_schema("record")
    registry = Registry().with_resource(record["$id"], Resource.from_contents(record))
    validator = Draft202012Validator(load_schema("baseline"), registry=registry)
    lines = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    for line in lines:
        validator.validate(line)
    return len(lines) - 1


def read_header(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text(encoding="utf-8").splitlines()[0]))


def pick_conversations(fixtures: Path, ids: list[str]) -> list[str]:
    """Lines of the shipped logs with the given conversation ids, in the order given."""
    found: dict[str, str] = {}
    for path in sorted((fixtures / "logs").glob("*.jsonl")):
        for line in path.read_text(encoding="utf-8").splitlines():
            conversation = json.loads(line)
            if conversation["id"] in ids:
                found[conversation["id"]] = line
    return [found[i] for i in ids]


SMALL_LOG_IDS = ["support-001", "shopping-002"]


@pytest.fixture
def small_log(pytester: pytest.Pytester, fixtures_dir: Path) -> Path:
    """Two real fixture conversations (support-001 has 3 probes, shopping-002 has at least 1) in the pytester dir."""
    path = pytester.path / "logs.jsonl"
    path.write_text("\n".join(pick_conversations(fixtures_dir, SMALL_LOG_IDS)) + "\n", encoding="utf-8")
    return path


HEAVY_FIXTURES = frozenset(("pytester", "llama_server"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests that run the plugin or a model need the heavy stack (torch, sentence-transformers, llama.cpp); the rest
    are unit tests, which `-m "not heavy"` runs without it installed."""
    for item in items:
        if HEAVY_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker("heavy")


@pytest.fixture(autouse=True)
def _heavy_modules_imported_once(request: pytest.FixtureRequest) -> None:
    """pytester's in-process runs drop modules first imported inside them, and native extensions (torch, llama.cpp)
    cannot be imported twice in one process, nor can phonenumbers keep its metadata registry across a second import:
    a test that runs pytest in process imports them first."""
    if "pytester" in request.fixturenames:
        import llama_cpp  # noqa: F401
        import openai  # noqa: F401
        import phonenumbers  # noqa: F401
        import sentence_transformers  # noqa: F401
        import stdnum.luhn  # noqa: F401

        # utg's own modules too: one first imported inside an inner run would come back as a second copy, whose
        # exception classes the first copy's callers no longer catch.
        for name in ("pipeline", "items", "extensions", "slicing", "history", "cli", "distributed", "report.outputs",
                     "report.markdown", "report.html", "ingest.registry", "runner", "scoring.phase"):  # fmt: skip
            importlib.import_module(f"utg_pytest.{name}")
        from utg_pytest.ingest.registry import builtin_formats

        builtin_formats()


@pytest.fixture(autouse=True)
def _no_api_key_leak(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never see a real key from the developer's environment."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


THREE_LOGS = ("support.jsonl", "travel.jsonl", "coding.jsonl")


@pytest.fixture
def logs(pytester: pytest.Pytester, fixtures_dir: Path) -> Path:
    """Three of the shipped logs (63 probes from 31 conversations) in the pytester dir's `logs/`."""
    directory = pytester.path / "logs"
    directory.mkdir()
    for name in THREE_LOGS:
        shutil.copy(fixtures_dir / "logs" / name, directory / name)
    return directory
