"""The OpenAI-compatible backend: against a real llama.cpp server, and against a failing HTTP server."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import GATES, LOW_GATES, free_port, read_header, read_results
from servers import SECRET, FailingModel, ParrotModel, serve


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
        *LOW_GATES,
    )
    result.assert_outcomes(passed=3 + GATES)
    result.stdout.fnmatch_lines([f"model: {llama_server}#smollm2 | prompt {prompt}*", "predictions: 3 scored*"])
    records = read_results(out)
    assert len(records) == 3
    assert read_header(out)["served_by"] == f"{llama_server}#smollm2"
    assert all(record["completion_tokens"] > 0 for record in records)


@pytest.fixture
def failing_server() -> Iterator[str]:
    with serve(FailingModel) as url:
        yield url


@pytest.mark.parametrize("workers", ["0", "2"], ids=["serial", "xdist"])
def test_a_parrot_passes_raw_similarity_but_fails_skill_and_echo_gates(
    pytester: pytest.Pytester, fixtures_dir: Path, workers: str
) -> None:
    out = pytester.path / "results.jsonl"
    shutil.copytree(fixtures_dir / "logs", pytester.path / "logs")
    with serve(ParrotModel) as url:
        result = pytester.runpytest(
            "--utg-logs",
            "logs",
            "--utg-base-url",
            url,
            "--utg-prompt",
            "roleswap",
            "--utg-min-similarity",
            "0.2",
            "--utg-min-lexical",
            "0",
            "--utg-results",
            str(out),
            "-rf",
            "-n",
            workers,
        )
    result.stdout.fnmatch_lines(
        [
            "  echo: 146/146 predictions (100.0%) near-copy the assistant's last message",
            "  plausibility (heuristic): genuine follow-up rate 0.000 [0.000..0.026] (0/146, Wilson 95%)",
            "    labels: identity_drift 146",
            "PASS semantic_similarity: mean semantic similarity * >= 0.200 over 146 probes",
            "FAIL skill: semantic skill vs best reference * not > 0.000 over 146 probes*",
            "FAIL echo_rate: echo rate 1.000 (95% CI 0.974..1.000) not <= 0.100 over 146 probes; 146 prediction(s)*",
        ]
    )
    result.stdout.fnmatch_lines(["FAILED utg::gate::skill - *", "FAILED utg::gate::echo_rate - *"])
    result.assert_outcomes(passed=146 + GATES - 2, failed=2)
    records = read_results(out)
    assert all(r["echo"] and r["echo_score"] == 1.0 for r in records)
    assert all(r["scores"] == r["references"]["echo"] for r in records)


@pytest.mark.parametrize("workers", ["0", "2"], ids=["serial", "xdist"])
def test_model_errors_are_retried_then_reported_on_each_probe_without_the_key(
    pytester: pytest.Pytester, small_log: Path, failing_server: str, monkeypatch: pytest.MonkeyPatch, workers: str
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
        "-n",
        workers,
    )
    result.assert_outcomes(errors=2, failed=GATES)
    assert len(FailingModel.requests) == 4
    result.stdout.fnmatch_lines(
        [
            "*no prediction: InternalServerError: *backend exploded while serving Bearer *** (after 2 attempt(s))",
            "*FAIL semantic_similarity: no probe produced a prediction",
            "predictions: 0 scored (0 from the cache), 2 without a prediction (model errors)",
        ]
    )
    records = read_results(out)
    assert [r["prediction"] for r in records] == [None, None]
    assert all("(after 2 attempt(s))" in r["error"] and r["passed"] is None for r in records)
    assert SECRET not in result.stdout.str() + result.stderr.str() + out.read_text(encoding="utf-8")


def test_unreachable_endpoint_is_reported_not_a_crash(pytester: pytest.Pytester, small_log: Path) -> None:
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
    result.assert_outcomes(errors=1, failed=GATES)
    result.stdout.fnmatch_lines(["*no prediction: APIConnectionError: Connection error. (after 1 attempt(s))"])


def test_a_backend_that_cannot_start_fails_every_probe_with_one_message(
    pytester: pytest.Pytester, small_log: Path, tmp_path: Path
) -> None:
    result = pytester.runpytest(
        "--utg-logs", str(small_log), "--utg-gguf", str(tmp_path / "missing.gguf"), "--utg-max-probes", "2"
    )
    result.assert_outcomes(errors=2, failed=GATES)
    result.stdout.fnmatch_lines(
        ["*model backend could not start: FileNotFoundError: --utg-gguf *missing.gguf: no such file"]
    )
