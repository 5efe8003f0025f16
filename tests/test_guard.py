"""The PII guard on what leaves the machine: by default no planted value reaches an endpoint; redaction sends a
coherent conversation with placeholders; the values never appear in the output or the results."""

from __future__ import annotations

import ast
import json
import sqlite3
from collections.abc import Collection, Sequence
from contextlib import closing

import pytest
from conftest import LOW_GATES, ROOT, read_results
from servers import RecordingModel, serve

from utg_pytest import guard as guard_module
from utg_pytest.guard import guard, scan_key
from utg_pytest.model import Message, Probe

PLANTED = ROOT / "benchmarks" / "data" / "pii"


def planted_values() -> list[str]:
    values = []
    for line in (PLANTED / "planted_truth.jsonl").read_text(encoding="utf-8").splitlines():
        truth = json.loads(line)
        if truth["start"] is not None and len(truth["value"]) >= 8:
            values.append(truth["value"])
    return values


def probe(*texts: str) -> Probe:
    context = tuple(Message("user" if i % 2 == 0 else "assistant", t) for i, t in enumerate(texts))
    return Probe("logs.jsonl::c::turn2", "logs.jsonl", 3, "c", 2, context, "thanks")


class Memory:
    """What the cache keeps of clean sequences, in memory."""

    def __init__(self) -> None:
        self.keys: set[str] = set()

    def clean(self, keys: Sequence[str]) -> Collection[str]:
        return self.keys & set(keys)

    def put_clean(self, keys: Sequence[str]) -> None:
        self.keys |= set(keys)


def counting_scans(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Message, ...]]:
    from utg_pytest import pii

    scanned: list[tuple[Message, ...]] = []
    real = pii.scan

    def scan(messages: Sequence[Message]) -> list[pii.Finding]:
        scanned.append(tuple(messages))
        return real(messages)

    monkeypatch.setattr(pii, "scan", scan)
    return scanned


def test_block_keeps_clean_probes_and_names_kind_and_message_but_not_the_value() -> None:
    clean = probe("where is my parcel", "It left the depot today.")
    dirty = Probe("logs.jsonl::d::turn2", "logs.jsonl", 4, "d", 2, (Message("user", "mail me at jo.bloggs@example.org"),
                  Message("assistant", "Will do.")), "ok")  # fmt: skip
    found = guard([clean, dirty], "block")
    assert found.probes == (clean,)
    assert "email in message 0" in found.blocked[dirty.id]
    assert "jo.bloggs" not in found.blocked[dirty.id]
    assert found.counts == {"email": 1}
    assert found.conversations == 1


def test_redact_replaces_each_value_with_the_same_placeholder_in_the_conversation() -> None:
    found = guard([probe("I'm jo@example.org", "Thanks, jo@example.org is noted.")], "redact")
    texts = [m.text for m in found.probes[0].context]
    assert texts == ["I'm <EMAIL_1>", "Thanks, <EMAIL_1> is noted."]


def test_the_guard_fails_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    from utg_pytest import pii

    def broken(messages: object) -> list[object]:
        raise RuntimeError("jo@example.org")

    monkeypatch.setattr(pii, "scan", broken)
    found = guard([probe("hello", "hi")], "block")
    assert found.probes == ()
    assert found.blocked["logs.jsonl::c::turn2"] == "PII guard failed (RuntimeError), so nothing was sent"


@pytest.mark.parametrize("mode", ["block", "redact"])
def test_no_planted_value_reaches_the_endpoint(pytester: pytest.Pytester, mode: str) -> None:
    (pytester.path / "planted.jsonl").write_text((PLANTED / "planted.jsonl").read_text(encoding="utf-8"))
    with serve(RecordingModel) as url:
        result = pytester.runpytest(
            "--utg-logs", "planted.jsonl", "--utg-base-url", url, "--utg-model", "m", "--utg-prompt", "roleswap",
            "--utg-pii", mode, "--utg-results", "out.jsonl", *LOW_GATES,
        )  # fmt: skip
        sent = "\n".join(RecordingModel.bodies)
    values = planted_values()
    assert len(values) > 250
    leaked = [v for v in values if v in sent]
    assert leaked == []
    out = (pytester.path / "out.jsonl").read_text(encoding="utf-8")
    assert [v for v in values if v in result.stdout.str()] == []
    assert [v for v in values if v in out] == [], "the results keep redacted texts only"
    result.stdout.fnmatch_lines([f"pii guard ({mode}): * value(s) of personal data in * conversation(s) (*"])
    records = read_results(pytester.path / "out.jsonl")
    if mode == "block":
        assert any("not sent: personal data in its context" in (r["error"] or "") for r in records)
    else:
        assert len(RecordingModel.bodies) == len(records)
        assert "<EMAIL_1>" in sent


def test_a_context_found_clean_is_remembered_and_not_scanned_again(monkeypatch: pytest.MonkeyPatch) -> None:
    clean = probe("where is my parcel", "It left the depot today.")
    dirty = probe("mail me at jo.bloggs@example.org", "Will do.")
    dirty = Probe("logs.jsonl::d::turn2", "logs.jsonl", 4, "d", 2, dirty.context, "ok")
    memory = Memory()
    first = guard([clean, dirty], "block", memory)
    assert memory.keys == {scan_key(clean.context)}, "only the clean context is remembered"
    scanned = counting_scans(monkeypatch)
    again = guard([clean, dirty], "block", memory)
    assert scanned == [dirty.context]
    assert again == first
    assert again.probes == (clean,)
    assert dirty.id in again.blocked


def test_a_remembered_key_names_every_role_and_text_and_the_scanner(monkeypatch: pytest.MonkeyPatch) -> None:
    one = (Message("user", "ab"), Message("assistant", "c"))
    keys = {
        scan_key(one),
        scan_key((Message("user", "a"), Message("assistant", "bc"))),
        scan_key((Message("assistant", "ab"), Message("user", "c"))),
        scan_key(one[:1]),
        scan_key((*one, Message("user", "\ud800 a lone surrogate"))),
    }
    assert len(keys) == 5
    assert scan_key(one) == scan_key(tuple(one))
    monkeypatch.setattr(guard_module, "scanner_identity", lambda: "another scanner")
    assert scan_key(one) not in keys, "a changed scanner scans everything again"


def test_the_scanner_identity_covers_the_python_and_every_module_the_scanner_imports(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    identity = guard_module.scanner_identity.__wrapped__
    base = identity()
    monkeypatch.setattr(guard_module.sys, "version", "3.99.0 (another build)")
    assert identity() != base
    imported = set()
    for source in (ROOT / "utg_pytest" / "pii").glob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("utg_pytest"):
                imported.add(node.module)
    outside = {name for name in imported if not name.startswith("utg_pytest.pii")}
    assert outside == {"utg_pytest.model"}, "a scanner module outside utg_pytest/pii is not in its identity"


def test_a_failing_memory_costs_a_scan_and_never_lets_a_value_through(monkeypatch: pytest.MonkeyPatch) -> None:
    class Broken(Memory):
        def clean(self, keys: Sequence[str]) -> Collection[str]:
            raise sqlite3.OperationalError("database is locked")

        def put_clean(self, keys: Sequence[str]) -> None:
            raise sqlite3.OperationalError("disk full")

    clean = probe("where is my parcel", "It left the depot today.")
    dirty = Probe("logs.jsonl::d::turn2", "logs.jsonl", 4, "d", 2, (Message("user", "mail me at jo@example.org"),
                  Message("assistant", "Will do.")), "ok")  # fmt: skip
    scanned = counting_scans(monkeypatch)
    found = guard([clean, dirty], "block", Broken())
    assert scanned == [clean.context, dirty.context]
    assert found.probes == (clean,)
    assert "email in message 0" in found.blocked[dirty.id]


def test_a_replay_scans_only_what_it_has_not_seen_clean_and_keeps_the_same_texts(pytester: pytest.Pytester) -> None:
    (pytester.path / "planted.jsonl").write_text((PLANTED / "planted.jsonl").read_text(encoding="utf-8"))
    args = ("--utg-logs", "planted.jsonl", "--utg-model", "m", "--utg-prompt", "roleswap", *LOW_GATES)
    with serve(RecordingModel) as url:
        pytester.runpytest(*args, "--utg-base-url", url, "--utg-results", "first.jsonl")
        replayed = pytester.runpytest(
            *args, "--utg-base-url", url, "--utg-results", "second.jsonl", "--utg-cache-mode", "replay"
        )
    replayed.stdout.fnmatch_lines(["pii guard (block): * value(s) of personal data in * conversation(s) (*"])
    cache = pytester.path / ".utg_cache" / "generations.sqlite3"
    with closing(sqlite3.connect(cache)) as db:
        remembered = db.execute("SELECT count(*) FROM clean").fetchone()[0]
    first, second = read_results(pytester.path / "first.jsonl"), read_results(pytester.path / "second.jsonl")
    assert remembered > 0
    assert [(r["probe_id"], r["context_tail"], r["target"], r["error"]) for r in second] == [
        (r["probe_id"], r["context_tail"], r["target"], r["error"]) for r in first
    ]
    stored = b"".join(path.read_bytes() for path in cache.parent.iterdir())
    assert [v for v in planted_values() if v.encode() in stored] == []


def test_an_unusable_cache_still_keeps_redacted_texts_only(pytester: pytest.Pytester) -> None:
    (pytester.path / "planted.jsonl").write_text((PLANTED / "planted.jsonl").read_text(encoding="utf-8"))
    (pytester.path / "not-a-directory").write_text("")
    result = pytester.runpytest(
        "--utg-logs", "planted.jsonl", "--utg-base-url", "http://127.0.0.1:9/v1", "--utg-model", "m",
        "--utg-cache", "not-a-directory", "--utg-results", "out.jsonl",
    )  # fmt: skip
    result.stdout.fnmatch_lines(["*no prediction: cache *not-a-directory unusable: *"])
    out = (pytester.path / "out.jsonl").read_text(encoding="utf-8")
    assert "<EMAIL_1>" in out
    assert [v for v in planted_values() if v in out] == []
