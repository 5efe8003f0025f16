"""The record/replay cache: keys, persistence, and replay runs that never reach the model."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from conftest import GATES, LOW_GATES, read_results
from servers import SECRET, ParrotModel, scripted, serve

from utg_pytest import generate
from utg_pytest.cache import GenerationCache, generation_key
from utg_pytest.generate.prompts import fingerprint
from utg_pytest.model import Generation, Message, Probe

PROBE = Probe("f::c::turn2", "f", 1, "c", 2, (Message("user", "hi"), Message("assistant", "which plan?")), "basic")
SAMPLING = {"temperature": 0.0, "max_tokens": 64, "seed": None}


def key(**changes: object) -> str:
    args: dict[str, object] = {
        "identity": "gguf:abc",
        "strategy": "template",
        "prompt_fingerprint": "fp",
        "probe": PROBE,
        "sampling": SAMPLING,
        "sample": 0,
    }
    args.update(changes)
    return generation_key(**args)  # type: ignore[arg-type]


def test_every_input_that_changes_the_answer_changes_the_key() -> None:
    variants = [
        key(),
        key(identity="gguf:def"),
        key(strategy="roleswap"),
        key(prompt_fingerprint="other"),
        key(probe=replace(PROBE, context=(*PROBE.context[:1], Message("assistant", "which plan, sir?")))),
        key(sampling={**SAMPLING, "temperature": 0.7}),
        key(sampling={**SAMPLING, "seed": 1}),
        key(sample=1),
    ]
    assert len(set(variants)) == len(variants)
    assert key() == key(probe=replace(PROBE, target="something else", id="g::c::turn2"))


def test_fingerprint_follows_the_instructions_of_a_strategy() -> None:
    assert fingerprint("roleswap") != fingerprint("instruct")
    assert fingerprint("template", "a") != fingerprint("template", "b")


def test_entries_persist_across_connections(tmp_path: Path) -> None:
    generation = Generation("raw text", 10, 3, "stop")
    first = GenerationCache(tmp_path)
    first.put("k", "clean text", generation)
    first.close()
    second = GenerationCache(tmp_path)
    assert second.get("k") == ("clean text", generation)
    assert second.get("missing") is None
    second.close()


def run(pytester: pytest.Pytester, url: str, *extra: str) -> pytest.RunResult:
    return pytester.runpytest(
        *scripted(url), "--utg-api-key-env", "MY_LLM_KEY", "--utg-retries", "0", *LOW_GATES, *extra
    )


def test_replay_needs_no_server_and_a_miss_is_an_error(
    pytester: pytest.Pytester, small_log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_LLM_KEY", SECRET)
    with serve(ParrotModel) as url:
        recorded = run(pytester, url, "--utg-max-probes", "3")
        recorded.assert_outcomes(passed=3 + GATES)
        assert len(ParrotModel.requests) == 3
        again = run(pytester, url, "--utg-max-probes", "3")
        again.assert_outcomes(passed=3 + GATES)
        assert len(ParrotModel.requests) == 3
    out = pytester.path / "replayed.jsonl"
    replayed = run(pytester, url, "--utg-max-probes", "3", "--utg-cache-mode", "replay", "--utg-results", str(out))
    replayed.assert_outcomes(passed=3 + GATES)
    replayed.stdout.fnmatch_lines(["predictions: 3 scored (3 from the cache)*"])
    records = read_results(out)
    assert all(r["cached"] and r["attempts"] == 0 for r in records)

    missing = run(pytester, url, "--utg-cache-mode", "replay")
    missing.assert_outcomes(passed=3 + GATES, errors=2)
    missing.stdout.fnmatch_lines(
        ["*no prediction: not in the cache, and --utg-cache-mode replay never calls the model"]
    )
    cache_bytes = b"".join(p.read_bytes() for p in (pytester.path / ".utg_cache").iterdir())
    assert SECRET.encode() not in cache_bytes


def test_refresh_calls_the_model_again_and_off_writes_nothing(pytester: pytest.Pytester, small_log: Path) -> None:
    with serve(ParrotModel) as url:
        run(pytester, url, "--utg-max-probes", "2").assert_outcomes(passed=2 + GATES)
        run(pytester, url, "--utg-max-probes", "2", "--utg-cache-mode", "refresh").assert_outcomes(passed=2 + GATES)
        assert len(ParrotModel.requests) == 4
        elsewhere = pytester.path / "elsewhere"
        run(pytester, url, "--utg-max-probes", "2", "--utg-cache-mode", "off", "--utg-cache", str(elsewhere))
        assert len(ParrotModel.requests) == 6
        assert not elsewhere.exists()


def test_a_cached_embedded_run_does_not_start_the_model(
    pytester: pytest.Pytester, small_log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = ("--utg-logs", "logs.jsonl", "--utg-max-probes", "2", *LOW_GATES)
    pytester.runpytest(*args).assert_outcomes(passed=2 + GATES)

    async def refuse(self: object, config: object) -> None:
        raise AssertionError("the backend was started although every answer is cached")

    monkeypatch.setattr(generate.EmbeddedFactory, "open", refuse)
    second = pytester.runpytest(*args)
    second.assert_outcomes(passed=2 + GATES)
    second.stdout.fnmatch_lines(
        ["model: gguf:SmolLM2-135M-Instruct.Q4_1.gguf*", "predictions: 2 scored (2 from the cache)*"]
    )


class StallingModel(ParrotModel):
    """Answers the first two requests, then stalls until released: a run against it has to be killed."""

    release = threading.Event()

    def generate(self, body: dict[str, Any]) -> None:
        if len(self.requests) > 2:
            self.release.wait(timeout=120)
            return
        super().generate(body)


@pytest.mark.slow
def test_a_killed_run_keeps_what_it_had_generated(pytester: pytest.Pytester, small_log: Path) -> None:
    StallingModel.release.clear()
    with serve(StallingModel) as url:
        process = pytester.popen(
            [sys.executable, "-m", "pytest", *scripted(url), "--utg-timeout", "600", "--utg-concurrency", "1"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 120
            while len(StallingModel.requests) < 3 and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.2)
            assert len(StallingModel.requests) == 3, "the run should be stalled on its third request"
        finally:
            process.kill()
            process.wait()
            StallingModel.release.set()
    resumed = run(pytester, url, "--utg-cache-mode", "replay")
    resumed.stdout.fnmatch_lines(["predictions: 2 scored (2 from the cache), 3 without a prediction*"])


def test_an_unusable_cache_fails_every_probe_with_one_message(pytester: pytest.Pytester, small_log: Path) -> None:
    blocker = pytester.path / "not-a-directory"
    blocker.write_text("")
    result = pytester.runpytest("--utg-logs", "logs.jsonl", "--utg-max-probes", "2", "--utg-cache", str(blocker))
    result.assert_outcomes(errors=2, failed=GATES)
    result.stdout.fnmatch_lines(["*no prediction: cache *not-a-directory unusable: FileExistsError: *"])


def test_a_cache_another_process_is_creating_is_opened_once_it_is_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two xdist workers open a new cache at once; the loser of the WAL switch is told "locked" and must retry."""
    import sqlite3

    from utg_pytest import cache

    real = cache._open
    answers = iter([sqlite3.OperationalError("database is locked")] * 3)

    def contended(path: Path) -> sqlite3.Connection:
        error = next(answers, None)
        if error is not None:
            raise error
        return real(path)

    monkeypatch.setattr(cache, "_open", contended)
    monkeypatch.setattr(cache, "OPEN_PAUSE_S", 0.0)
    GenerationCache(tmp_path).close()
    monkeypatch.setattr(cache, "_open", lambda path: (_ for _ in ()).throw(sqlite3.OperationalError("disk I/O error")))
    with pytest.raises(sqlite3.OperationalError, match="disk I/O error"):
        GenerationCache(tmp_path)
