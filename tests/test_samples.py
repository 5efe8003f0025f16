"""Several predictions per probe: combination into one result, per-probe pass rate, and the follow-up rate."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import GATES, LOW_GATES, read_results

from utg_pytest import gates
from utg_pytest.figures import compute
from utg_pytest.model import ProbeResult
from utg_pytest.scoring.outcomes import combine_samples
from utg_pytest.settings import GateSettings


def sample(semantic: float, label: str = "genuine_followup", error: str | None = None) -> ProbeResult:
    if error:
        return ProbeResult("p", None, None, {}, error=error, attempts=3)
    return ProbeResult("p", f"text {semantic}", "raw", {"semantic": semantic, "lexical": 0.5}, label=label)


def test_samples_combine_into_means_and_the_most_frequent_label() -> None:
    combined = combine_samples(
        [sample(0.2, "restatement"), sample(0.4), sample(0.6), sample(0.0, error="timeout after 3 attempt(s)")]
    )
    assert combined.ok
    assert combined.scores["semantic"] == pytest.approx(0.4)
    assert combined.label == "genuine_followup"
    assert combined.label_reason == "most frequent label: 2 of 3 samples"
    assert combined.prediction == "text 0.2"
    assert len(combined.samples) == 4
    assert combined.attempts == 3 + 3
    assert combine_samples([sample(0.3)]).samples == ()
    failed = combine_samples([sample(0.0, error="a"), sample(0.0, error="b")])
    assert not failed.ok
    assert failed.error == "a"


def test_a_probe_passes_when_enough_of_its_samples_meet_the_thresholds() -> None:
    combined = combine_samples([sample(0.1), sample(0.5), sample(0.6), sample(0.7)])
    thresholds = {"semantic": 0.4}
    assert gates.probe_shortfalls(combined, thresholds, 0.75) == []
    assert gates.probe_shortfalls(combined, thresholds, 0.8) == [
        "3/4 samples met the per-probe thresholds; at least 80% must"
    ]
    assert gates.probe_shortfalls(combined, {}, 1.0) == []


def test_followup_rate_with_samples_averages_per_probe_shares() -> None:
    probes = [
        combine_samples([sample(0.5), sample(0.5, "closing")]),
        combine_samples([sample(0.5), sample(0.5)]),
        combine_samples([sample(0.5, "irrelevant"), sample(0.5, "irrelevant")]),
    ]
    gate = next(g for g in gates.run_gates(GateSettings()) if g.name == "followup_rate")
    verdict = gates.evaluate(gate, compute(probes, ("semantic", "lexical"), 0.0))
    assert verdict.value == pytest.approx(0.5)
    assert verdict.n == 3
    assert "mean over probes of the genuine share of their samples" in verdict.detail


@pytest.mark.slow
def test_samples_are_generated_cached_and_reported_per_probe(pytester: pytest.Pytester, small_log: Path) -> None:
    out = pytester.path / "results.jsonl"
    args = ("--utg-logs", str(small_log), "--utg-max-probes", "2", "--utg-samples", "3", "--utg-temperature", "1.0")
    result = pytester.runpytest(*args, "--utg-results", str(out), *LOW_GATES)
    result.assert_outcomes(passed=2 + GATES)
    result.stdout.fnmatch_lines(["utg: 6/6 predictions |*"])
    records = read_results(out)
    assert all(len(r["samples"]) == 3 for r in records)
    assert any(len({s["prediction"] for s in r["samples"]}) > 1 for r in records), "samples should differ by seed"
    again = pytester.runpytest(
        *args, "--utg-min-probe-similarity", "0.99", "--utg-min-probe-pass-rate", "0.3", *LOW_GATES
    )
    again.assert_outcomes(passed=GATES, failed=2)
    again.stdout.fnmatch_lines(["utg: 6/6 predictions |*| 6 cached"])
    again.stdout.fnmatch_lines(["*: 0/3 samples met the per-probe thresholds; at least 30% must"])
