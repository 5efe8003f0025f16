"""Controls: the shuffled-assistant-turn perturbation, the grounding gap, and the temperature sweep."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import GATES, LOW_GATES, read_results
from hypothesis import given
from hypothesis import strategies as st

from utg_pytest.controls import SHUFFLED_SUFFIX, grounding_gaps, shuffle_probes, sweep_row
from utg_pytest.model import Message, Probe, ProbeResult


def probe(conversation: str, turn: int = 2) -> Probe:
    context = (
        Message("system", "be brief"),
        Message("user", f"question {conversation}"),
        Message("assistant", f"answer for {conversation}"),
    )
    return Probe(f"f::{conversation}::turn{turn}", "f", 1, conversation, turn, context, f"follow-up {conversation}")


@given(st.integers(min_value=2, max_value=40), st.integers(min_value=1, max_value=50), st.integers(0, 5))
def test_shuffle_swaps_only_the_last_assistant_turn_for_another_conversations(
    conversations: int, limit: int, seed: int
) -> None:
    probes = [probe(f"c{i}") for i in range(conversations)]
    shuffled = shuffle_probes(probes, probes, seed, limit)
    assert len(shuffled) == min(limit, conversations)
    originals = {p.id: p for p in probes}
    for perturbed in shuffled:
        original = originals[perturbed.id.removesuffix(SHUFFLED_SUFFIX)]
        assert perturbed.context[:2] == original.context[:2]
        assert perturbed.context[2].role == "assistant"
        assert perturbed.context[2].text != original.context[2].text
        assert perturbed.target == original.target
        assert perturbed.label_context == original.context
    assert shuffle_probes(probes, probes, seed, limit) == shuffled


def test_a_single_conversation_has_nothing_to_shuffle_with() -> None:
    probes = [probe("only", 2), probe("only", 3)]
    assert shuffle_probes(probes, probes, 0, 10) == []


def result(probe_id: str, semantic: float, label: str | None = "genuine_followup") -> ProbeResult:
    return ProbeResult(probe_id, "p", "p", {"semantic": semantic, "lexical": 0.5}, label=label)


def test_grounding_gap_is_paired_by_probe() -> None:
    real = [result(f"p{i}", 0.6) for i in range(20)]
    perturbed = [result(f"p{i}{SHUFFLED_SUFFIX}", 0.3, "irrelevant") for i in range(20)]
    gaps = {g.metric: g for g in grounding_gaps(real, perturbed)}
    assert gaps["semantic"].gap == pytest.approx(0.3)
    assert gaps["semantic"].significant
    assert gaps["followup"].gap == pytest.approx(1.0)
    assert gaps["lexical"].gap == pytest.approx(0.0)
    assert not gaps["lexical"].significant
    assert gaps["semantic"].n == 20


def test_sweep_row_reports_rate_interval_and_labels() -> None:
    results = [result("a", 0.2), result("b", 0.4, "closing"), ProbeResult("c", None, None, {}, error="boom")]
    row = sweep_row(0.7, results)
    assert (row.n, row.errors, row.followup) == (2, 1, 0.5)
    assert row.labels == {"genuine_followup": 1, "closing": 1}
    assert row.ci_low is not None
    assert row.ci_high is not None
    assert row.ci_low < 0.5 < row.ci_high


@pytest.mark.slow
def test_summary_shows_the_sweep_and_the_grounding_gap(pytester: pytest.Pytester, small_log: Path) -> None:
    out = pytester.path / "results.jsonl"
    result = pytester.runpytest(
        "--utg-logs",
        str(small_log),
        "--utg-temperatures",
        "0,1.0",
        "--utg-control",
        "shuffle",
        "--utg-min-grounding-gap",
        "-1",
        "--utg-results",
        str(out),
        *LOW_GATES,
    )
    result.assert_outcomes(passed=5 + GATES + 1)
    result.stdout.fnmatch_lines(
        [
            "utg: 5/5 predictions at temperature 1 |*",
            "utg: 5/5 shuffle-control predictions |*",
            "temperature sweep (genuine follow-up rate with Wilson 95% interval):",
            "  | temperature | follow-up rate [95% CI] | semantic | lexical | n | labels |",
            "  | 0 | * | 5 | *",
            "  | 1 | * | 5 | *",
            "grounding gap (shuffle control on 5 probes: real minus shuffled assistant turn, 95% CI):",
            "  semantic similarity  real * shuffled * gap *",
            "  follow-up rate * gap *",
            "PASS grounding_gap: semantic grounding gap *",
        ]
    )
    records = read_results(out)
    assert len(records) == 5
    assert {r["sweep"]["1"]["label"] for r in records} <= {
        "genuine_followup",
        "restatement",
        "identity_drift",
        "irrelevant",
        "closing",
        "degenerate",
    }
    assert all(r["shuffled"] is not None and r["shuffled"]["prediction"] is not None for r in records)
