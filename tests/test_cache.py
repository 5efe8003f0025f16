"""The record/replay cache: keys, persistence, and replay runs that never reach the model."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import pytest
from conftest import GATES, LOW_GATES, read_results
from faults import log_probe_ids
from servers import SECRET, ParrotModel, TaggedSlowModel, scripted, serve, tag

from utg_pytest import generate
from utg_pytest.cache import GENERATION_TYPES, GenerationCache, check, generation_key
from utg_pytest.generate.prompts import fingerprint
from utg_pytest.model import Generation, Message, Probe

PROBE = Probe("f::c::turn2", "f", 1, "c", 2, (Message("user", "hi"), Message("assistant", "which plan?")), "basic")
SAMPLING = {"temperature": 0.0, "max_tokens": 64, "seed": None}
KEY = "0" * 64


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


def test_labels_are_kept_and_a_replay_reads_them_instead_of_classifying(
    pytester: pytest.Pytester, small_log: Path
) -> None:
    first_out, second_out = pytester.path / "first.jsonl", pytester.path / "second.jsonl"
    with serve(ParrotModel) as url:
        run(pytester, url, "--utg-max-probes", "3", "--utg-results", str(first_out)).assert_outcomes(passed=3 + GATES)
    first = read_results(first_out)
    cache_path = pytester.path / ".utg_cache" / "generations.sqlite3"
    with closing(sqlite3.connect(cache_path)) as db:
        kept = db.execute("SELECT label, reason FROM labels").fetchall()
    assert sorted(kept) == sorted((r["label"], r["label_reason"]) for r in first)
    assert check(cache_path).labels == len(kept)

    replayed = run(
        pytester, url, "--utg-max-probes", "3", "--utg-cache-mode", "replay", "--utg-results", str(second_out)
    )
    replayed.assert_outcomes(passed=3 + GATES)
    assert [(r["label"], r["label_reason"]) for r in read_results(second_out)] == [
        (r["label"], r["label_reason"]) for r in first
    ]
    with closing(sqlite3.connect(cache_path)) as db, db:
        db.execute("UPDATE labels SET label = 'closing', reason = 'planted'")
    run(pytester, url, "--utg-max-probes", "3", "--utg-cache-mode", "replay", "--utg-results", str(second_out))
    assert {(r["label"], r["label_reason"]) for r in read_results(second_out)} == {("closing", "planted")}


def test_a_label_is_kept_under_its_labeller_its_context_and_its_prediction() -> None:
    from utg_pytest.scoring.labels import cache_key, identity

    base = cache_key(identity(), PROBE.context, "the basic one")
    assert (
        len(
            {
                base,
                cache_key(identity() + "|other embedding model", PROBE.context, "the basic one"),
                cache_key(identity(), PROBE.context[:1], "the basic one"),
                cache_key(identity(), (Message("user", "hi"), Message("system", "which plan?")), "the basic one"),
                cache_key(identity(), PROBE.context, "the basic one!"),
            }
        )
        == 5
    )
    assert cache_key(identity(), PROBE.context, "the basic one") == base


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


def test_a_sound_cache_passes_the_integrity_check(tmp_path: Path) -> None:
    cache = GenerationCache(tmp_path)
    cache.put(key(), "clean", Generation("raw", 10, 3, "length"))
    cache.put(key(sample=1), "clean", Generation("raw"))
    cache.close()
    found = check(tmp_path)
    assert found.ok, found.problems
    assert (found.path, found.generations, found.embeddings) == (tmp_path / "generations.sqlite3", 2, 0)
    assert set(GENERATION_TYPES) == {f.name for f in fields(Generation)}


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        (("not-a-key", "p", '{"text": "t"}', 0.0), "key is not a SHA-256 hex digest"),
        ((KEY, b"p", '{"text": "t"}', 0.0), "prediction is not text"),
        ((KEY, "p", '{"text": "t"', 0.0), "generation is not a JSON object of Generation's fields"),
        ((KEY, "p", '{"txt": "t"}', 0.0), "generation is not a JSON object of Generation's fields"),
        ((KEY, "p", '{"text": "t", "prompt_tokens": "10"}', 0.0), "wrong type: prompt_tokens"),
        ((KEY, "p", '{"text": "t"}', "yesterday"), "created is not a time"),
    ],
)
def test_a_row_a_run_could_not_read_back_is_a_problem(tmp_path: Path, row: tuple[object, ...], problem: str) -> None:
    GenerationCache(tmp_path).close()
    with sqlite3.connect(tmp_path / "generations.sqlite3") as db:
        db.execute("INSERT INTO generations VALUES (?, ?, ?, ?)", row)
        db.execute("INSERT INTO embeddings VALUES (?, ?)", ("e", b"\0\0\0"))
        db.execute("INSERT INTO labels VALUES (?, ?, ?)", ("l", "closing", ""))
        db.execute("INSERT INTO labels VALUES (?, ?, ?)", (KEY, "", ""))
        db.execute("INSERT INTO clean VALUES (?)", ("c",))
        db.execute("INSERT INTO clean VALUES (?)", (KEY,))
    found = check(tmp_path)
    assert len(found.problems) == 5
    assert problem in found.problems[0]
    assert found.problems[1] == "embedding 'e': vector is not float32 bytes"
    assert list(found.problems[2:]) == [
        "label 'l': key is not a SHA-256 hex digest",
        f"label {KEY!r}: not a label and a reason",
        "clean conversation 'c': key is not a SHA-256 hex digest",
    ]
    assert found.clean == 2


def test_a_damaged_file_fails_the_check_and_the_cli_says_so(tmp_path: Path) -> None:
    cache = GenerationCache(tmp_path)
    for sample in range(200):
        cache.put(key(sample=sample), "clean text " * 20, Generation("raw text " * 20))
    cache.close()
    path = tmp_path / "generations.sqlite3"
    data = bytearray(path.read_bytes())
    data[len(data) // 2 : len(data) // 2 + 4096] = b"\xff" * 4096
    path.write_bytes(bytes(data))
    assert not check(tmp_path).ok

    cli = [sys.executable, "-m", "utg_pytest.cli", "cache", "check"]
    damaged = subprocess.run([*cli, str(tmp_path)], capture_output=True, text=True, check=False)
    assert damaged.returncode == 1
    assert damaged.stdout.splitlines()[-1].startswith(f"{path}: ")
    assert "problem(s)" in damaged.stdout.splitlines()[-1]
    GenerationCache(tmp_path / "fresh").close()
    sound = subprocess.run([*cli, str(tmp_path / "fresh")], capture_output=True, text=True, check=False)
    rows = "0 generation(s), 0 embedding(s), 0 label(s), 0 clean conversation(s), 0 file digest(s)"
    assert (sound.returncode, sound.stdout) == (0, f"{tmp_path / 'fresh' / 'generations.sqlite3'}: sound; {rows}\n")
    missing = subprocess.run([*cli, str(tmp_path / "none")], capture_output=True, text=True, check=False)
    assert missing.returncode == 2
    assert "no cache file" in missing.stderr
    not_sqlite = tmp_path / "notes.txt"
    not_sqlite.write_text("not a database " * 100)
    assert check(not_sqlite).problems[0].startswith("not a readable SQLite cache")


def cached_tags(directory: Path) -> set[str]:
    """The request tags in a cache's predictions (TaggedSlowModel answers `ok <tag>`)."""
    with closing(sqlite3.connect(directory / "generations.sqlite3")) as db:
        return {prediction.split()[1] for (prediction,) in db.execute("SELECT prediction FROM generations")}


@pytest.mark.slow
def test_a_run_killed_halfway_leaves_a_sound_cache_and_the_rerun_asks_only_for_the_rest(
    pytester: pytest.Pytester, logs: Path
) -> None:
    args = ("--utg-logs", "logs", "--utg-model", "scripted", "--utg-prompt", "roleswap", "--utg-concurrency", "4")
    total = len(log_probe_ids(logs))
    with serve(TaggedSlowModel) as url:
        process = pytester.popen(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--utg-base-url", url, *args],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + 120
            while len(TaggedSlowModel.answered) < total // 2 and process.poll() is None:
                assert time.monotonic() < deadline, "the run never got halfway"
                time.sleep(0.05)
            assert process.poll() is None, "the run ended before it was killed"
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()
        first = set(TaggedSlowModel.received)
        found = check(pytester.path / ".utg_cache")
        assert found.ok, found.problems
        cached = cached_tags(pytester.path / ".utg_cache")
        assert found.generations == len(cached)
        # Answers written but not yet committed when the kill came are lost, and asked for again.
        assert 0 < len(cached) < total
        assert cached <= {tag(body) for body in TaggedSlowModel.answered}

        TaggedSlowModel.reset()
        rerun = pytester.runpytest("--utg-base-url", url, *args, *LOW_GATES)
    rerun.assert_outcomes(passed=total + GATES)
    rerun.stdout.fnmatch_lines([f"predictions: {total} scored ({len(cached)} from the cache)*"])
    again = {tag(body) for body in TaggedSlowModel.received}
    assert len(TaggedSlowModel.received) == len(again) == total - len(cached)
    assert not again & cached
    assert again | cached == {tag(body) for body in first | set(TaggedSlowModel.received)}
    found = check(pytester.path / ".utg_cache")
    assert found.ok, found.problems
    assert found.generations == total
