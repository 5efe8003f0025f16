"""The PII guard on what leaves the machine: by default no planted value reaches an endpoint; redaction sends a
coherent conversation with placeholders; the values never appear in the output or the results."""

from __future__ import annotations

import json

import pytest
from conftest import LOW_GATES, ROOT, read_results
from servers import RecordingModel, serve

from utg_pytest.guard import guard
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
