"""Slices: the figures per metadata value or probe property, the gates per slice with Holm across slices, and the
probes the model gets most wrong; unit tests on planted records, and pytest runs against a scripted endpoint."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import LOW_GATES, read_results
from servers import ContentModel, SupportBreaksModel, serve
from test_drift import header

from utg_pytest import cli, slicing
from utg_pytest.model import Message, Probe, ProbeResult
from utg_pytest.record import ProbeRecord, RunRecord
from utg_pytest.settings import GateSettings, Settings, SliceSettings


def probe_of(metadata: dict[str, object], context: int = 1, target: str = "ok") -> Probe:
    messages = tuple(Message("user" if i % 2 else "assistant", "x") for i in range(context))
    return Probe("l.jsonl::c::turn2", "l.jsonl", 1, "c", 2, messages, target, metadata=metadata)


def test_a_slice_is_a_metadata_path_or_a_property_of_the_probe() -> None:
    nested = probe_of(
        {"domain": "billing", "customer": {"tier": "gold", "id": 7}, "vip": True}, 5, "one two three four"
    )
    assert slicing.value_of(nested, "domain") == "billing"
    assert slicing.value_of(nested, "customer.tier") == "gold"
    assert slicing.value_of(nested, "customer.id") == "7"
    assert slicing.value_of(nested, "vip") == "true"
    assert slicing.value_of(nested, "customer.tier.name") == slicing.NONE
    assert slicing.value_of(nested, "channel") == slicing.NONE
    assert slicing.value_of(probe_of({"domain": ""}), "domain") == slicing.NONE
    assert slicing.value_of(nested, "log") == "l.jsonl"
    assert slicing.value_of(nested, "context_turns") == "4-7"
    assert slicing.value_of(probe_of({}, 1), "context_turns") == "1"
    assert slicing.value_of(nested, "turn_words") == "4-10"
    assert slicing.value_of(probe_of({}, 40, "w " * 30), "turn_words") == "26+"


def test_personal_data_in_a_slice_value_is_redacted_when_guarded() -> None:
    found = probe_of({"owner": "jane.doe@example.com"})
    assert slicing.values_of(found, ["owner"], guarded=False) == {"owner": "jane.doe@example.com"}
    assert "example.com" not in slicing.values_of(found, ["owner"], guarded=True)["owner"]


def record(rows: list[tuple[str, str, float]], gates: bool = True, minimum: float = 0.5) -> RunRecord:
    """(slice value, conversation, semantic similarity) per probe; references score 0.2 everywhere."""
    settings = replace(Settings(), slices=SliceSettings(("domain",), gates), gates=GateSettings(min_similarity=minimum))
    probes = []
    for i, (value, conversation, semantic) in enumerate(rows):
        references = {"echo": {"semantic": 0.2, "lexical": 0.1}, "floor": {"semantic": 0.05, "lexical": 0.0}}
        result = ProbeResult(f"l::{conversation}::turn{i}", f"prediction {i}", "raw", {"semantic": semantic,
                             "lexical": 0.3}, references=references, label="genuine_followup")  # fmt: skip
        probes.append(ProbeRecord(result.probe_id, "l", 1, conversation, i, 1, (Message("assistant", "hi"),),
                                  f"real {i}", f"{i:064x}", {}, result, True, slices={"domain": value}))  # fmt: skip
    return RunRecord(header(settings=settings), tuple(probes))


def planted(seed: int = 0) -> list[tuple[str, str, float]]:
    rng = random.Random(seed)
    rows = []
    for domain, centre, conversations in (("support", 0.6, 12), ("billing", 0.2, 12), ("travel", 0.47, 3)):
        for c in range(conversations):
            rows += [(domain, f"{domain}-{c}", centre + rng.uniform(-0.05, 0.05)) for _ in range(2)]
    return [*rows, (slicing.NONE, "orphan", 0.4)]


def test_each_slice_has_its_figures_and_small_ones_are_marked() -> None:
    found = slicing.slices(record(planted()), "domain")
    assert [s.value for s in found] == ["billing", "support", "travel", slicing.NONE]
    by_value = {s.value: s for s in found}
    assert (by_value["billing"].probes, by_value["billing"].conversations) == (24, 12)
    assert by_value["billing"].figures.similarity["semantic"].mean == pytest.approx(0.2, abs=0.02)
    assert not by_value["support"].small
    assert by_value["travel"].small
    assert by_value[slicing.NONE].small


def test_only_the_slice_that_falls_short_significantly_fails() -> None:
    verdicts = slicing.judge(record(planted()), GateSettings(min_similarity=0.5))
    semantic = {v.value: v for v in verdicts if v.gate == "semantic_similarity"}
    assert semantic["billing"].outcome == "fail"
    assert semantic["billing"].p_adjusted is not None
    assert semantic["billing"].p_adjusted < 0.05
    assert semantic["support"].outcome == "pass"
    assert semantic["travel"].outcome == "inconclusive"
    assert semantic[slicing.NONE].outcome == "inconclusive"
    assert semantic["billing"].family == 4
    assert semantic["billing"].name == "semantic_similarity[domain=billing]"
    assert record(planted(), minimum=0.4).passed
    assert not slicing.passed(record(planted(), minimum=0.4))
    assert slicing.passed(record(planted(), gates=False, minimum=0.4))


def test_holm_across_slices_turns_a_lone_significant_shortfall_into_an_inconclusive_one() -> None:
    rng = random.Random(4)
    rows = [(f"d{k}", f"d{k}-{c}", 0.6 + rng.uniform(-0.02, 0.02)) for k in range(6) for c in range(6)]
    rows += [("weak", f"weak-{c}", 0.5 - 0.05 + rng.gauss(0, 0.04)) for c in range(6)]
    lone = slicing.judge(record([r for r in rows if r[0] in ("weak", "d0")]), GateSettings(min_similarity=0.5))
    many = slicing.judge(record(rows), GateSettings(min_similarity=0.5))
    alone = next(v for v in lone if v.name == "semantic_similarity[domain=weak]")
    among = next(v for v in many if v.name == "semantic_similarity[domain=weak]")
    assert alone.p == among.p
    assert alone.p is not None
    assert alone.p_adjusted is not None
    assert among.p_adjusted is not None
    assert alone.p_adjusted < 0.05 <= among.p_adjusted
    assert (alone.outcome, among.outcome) == ("fail", "inconclusive")


def test_the_probes_it_gets_most_wrong_are_ranked_by_their_shortfall_against_the_best_reference() -> None:
    found = slicing.worst(record([("a", "c1", 0.5), ("a", "c2", 0.05), ("a", "c3", 0.15), ("a", "c4", 0.19)]))
    assert [round(m.gap, 2) for m in found] == [-0.15, -0.05, -0.01]
    assert {m.reference for m in found} == {"echo"}
    assert len(slicing.worst(record([("a", "c", 0.05)] * 5), top=2)) == 2


def conversation(i: int, domain: str | None, tier: str | None, replies: tuple[str, str]) -> str:
    metadata: dict[str, object] = {}
    if domain is not None:
        metadata["domain"] = domain
    if tier is not None:
        metadata["customer"] = {"tier": tier}
    messages = [
        {"role": "user", "content": f"hello, {domain or 'general'} question number {i}"},
        {"role": "assistant", "content": "Sure. I changed the setting for you; please try again."},
        {"role": "user", "content": replies[0]},
        {"role": "assistant", "content": "Good. Anything else I can do?"},
        {"role": "user", "content": replies[1]},
    ]
    return json.dumps({"id": f"c{i}", "messages": messages, "metadata": metadata})


@pytest.fixture
def sliced_log(pytester: pytest.Pytester) -> Path:
    pleased = ("thanks, that fixed it!", "great, it is fixed now, thanks")
    unrelated = ("why was my card charged twice in march", "I want the refund sent to my other bank account")
    lines = []
    for i in range(24):
        domain = ("support", "billing", "travel", None)[i % 4]
        tier = ("gold", "silver", None)[i // 4 % 3]
        lines.append(conversation(i, domain, tier, unrelated if domain == "billing" else pleased))
    path = pytester.path / "logs.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("workers", [None, "2"])
def test_slice_gates_fail_only_the_weak_slice_and_the_record_keeps_the_slices(
    pytester: pytest.Pytester, sliced_log: Path, capsys: pytest.CaptureFixture[str], workers: str | None
) -> None:
    parallel = ("-n", workers) if workers else ()
    with serve(ContentModel) as url:
        result = pytester.runpytest(
            "--utg-logs", "logs.jsonl", "--utg-base-url", url, "--utg-model", "scripted", "--utg-prompt", "roleswap",
            *LOW_GATES, "--utg-min-similarity", "0.3", "--utg-slice", "domain", "--utg-slice", "customer.tier",
            "--utg-slice-gates", "--utg-results", "out.jsonl", "-rf", *parallel,
        )  # fmt: skip
    failed = [line for line in result.outlines if line.startswith("FAILED ")]
    assert failed == [line for line in failed if "semantic_similarity[domain=billing]" in line]
    assert len(failed) == 1
    result.stdout.fnmatch_lines(["FAIL semantic_similarity?domain=billing?: mean semantic similarity * not >= 0.300 "
                                 "over 12 probes; shortfall p *, Holm * across the 4 domain slices"])  # fmt: skip
    outcomes = result.parseoutcomes()
    assert outcomes["failed"] == 1
    # 48 probes, 5 run gates, 5 slice gates on 4 domains and on 3 tiers
    assert outcomes["passed"] == 48 + 5 + 5 * (4 + 3) - 1
    result.stdout.fnmatch_lines(["by domain (4 slices*", "  slice *probes*convs*semantic*", "  billing *12*6*",
                                 "by customer.tier (3 slices*", "probes it gets most wrong*"])  # fmt: skip
    rows = read_results(pytester.path / "out.jsonl")
    assert {row["slices"]["domain"] for row in rows} == {"support", "billing", "travel", slicing.NONE}
    assert {row["slices"]["customer.tier"] for row in rows} == {"gold", "silver", slicing.NONE}
    capsys.readouterr()
    assert cli.main(["report", str(pytester.path / "out.jsonl")]) == 1
    shown = capsys.readouterr().out
    assert "by domain (4 slices" in shown
    assert "FAIL semantic_similarity[domain=billing]" in shown
    assert cli.main(["report", str(pytester.path / "out.jsonl"), "--format", "json"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert [s["value"] for s in document["slices"]["domain"]] == ["billing", "support", "travel", slicing.NONE]
    failing = [v["name"] for v in document["slice_verdicts"] if v["outcome"] == "fail"]
    assert failing == ["semantic_similarity[domain=billing]"]
    assert document["passed"] is False


def test_drift_per_slice_finds_the_one_slice_that_got_worse_with_holm_across_metrics_and_slices() -> None:
    from utg_pytest import baseline
    from utg_pytest.settings import DriftSettings

    rng = random.Random(2)
    rows = [(d, f"{d}-{c}", 0.5 + rng.uniform(-0.05, 0.05)) for d in ("billing", "support") for c in range(40)]
    worse = [(d, c, s - 0.2 if d == "billing" else s) for d, c, s in rows]
    comparison = baseline.compare(record(rows), record(worse))
    found = {d.name: d for d in slicing.drift_by_slice(comparison, ["domain"], DriftSettings())}
    assert found["drift::semantic[domain=billing]"].drift.verdict == "fail"
    assert found["drift::semantic[domain=support]"].drift.verdict == "pass"
    assert found["drift::semantic[domain=billing]"].family == 2 * len(baseline.DRIFT_METRICS)
    assert found["drift::semantic[domain=billing]"].drift.p_adjusted == pytest.approx(
        min(1.0, found["drift::semantic[domain=billing]"].drift.p * 10), rel=0.5
    )


def test_a_candidate_worse_on_one_slice_fails_that_slice_drift_gate_only(
    pytester: pytest.Pytester, sliced_log: Path
) -> None:
    with serve(ContentModel) as production, serve(SupportBreaksModel) as candidate:
        result = pytester.runpytest(
            "--utg-logs", "logs.jsonl", "--utg-base-url", candidate, "--utg-model", "scripted", "--utg-prompt",
            "roleswap", *LOW_GATES, "--utg-compare-base-url", production, "--utg-slice", "domain",
            "--utg-slice-gates", "--utg-max-drop", "semantic=0.05,lexical=0.05", "-rf",
        )  # fmt: skip
    failed = [line for line in result.outlines if line.startswith("FAILED ")]
    assert any("utg::gate::drift::semantic[domain=support]" in line for line in failed)
    assert not [line for line in failed if "billing" in line or "travel" in line]
    result.stdout.fnmatch_lines(["FAIL drift::semantic?domain=support?: mean semantic similarity * (Holm across the "
                                 "20 metric and domain slice tests)"])  # fmt: skip
