from __future__ import annotations

import pytest

from utg_pytest import gates
from utg_pytest.figures import compute
from utg_pytest.model import GateVerdict, Probe, ProbeResult
from utg_pytest.settings import GateSettings


def scored(
    pid: str, semantic: float, lexical: float = 0.5, echo: float = 0.1, references: dict[str, float] | None = None
) -> ProbeResult:
    refs = {name: {"semantic": value, "lexical": 0.3} for name, value in (references or {}).items()}
    return ProbeResult(
        pid, "p", "p", {"semantic": semantic, "lexical": lexical}, references=refs, echo_score=echo, echo=echo >= 0.8
    )


def failed(pid: str) -> ProbeResult:
    return ProbeResult(pid, None, None, {}, error="APIConnectionError: refused (after 3 attempt(s))", attempts=3)


def evaluate(gate: gates.Gate, results: list[ProbeResult], gate_on: str = "point") -> GateVerdict:
    return gates.evaluate(gate, compute(results, ("semantic", "lexical"), 0.0), gate_on)


def gate(name: str, settings: GateSettings | None = None) -> gates.Gate:
    return next(g for g in gates.run_gates(settings or GateSettings()) if g.name == name)


def test_similarity_gate_uses_the_mean_of_scored_probes_and_counts_errors_apart() -> None:
    verdict = evaluate(
        gate("semantic_similarity", GateSettings(min_similarity=0.3)), [scored("a", 0.2), scored("b", 0.6), failed("c")]
    )
    assert verdict.value == pytest.approx(0.4)
    assert verdict.passed
    assert verdict.n == 2
    assert verdict.label == "mean semantic similarity"
    assert "1 probe(s) without a prediction excluded" in verdict.detail
    assert verdict.ci_low is not None
    assert verdict.ci_high is not None
    assert verdict.ci_low <= 0.4 <= verdict.ci_high


def test_gates_fail_below_threshold_and_when_nothing_was_scored() -> None:
    assert not evaluate(gate("semantic_similarity", GateSettings(min_similarity=0.3)), [scored("a", 0.1)]).passed
    for name in ("semantic_similarity", "lexical_similarity", "skill", "echo_rate"):
        empty = evaluate(gate(name), [failed("a")])
        assert not empty.passed
        assert empty.value is None
        assert empty.detail == "no probe produced a prediction"


def test_skill_gate_needs_the_model_to_beat_the_best_reference() -> None:
    refs = {"echo": 0.5, "repeat": 0.2, "floor": 0.0}
    parrot = [scored(str(i), 0.5, references=refs) for i in range(10)]
    verdict = evaluate(gate("skill"), parrot)
    assert verdict.value == pytest.approx(0.0)
    assert not verdict.passed
    assert "best reference (echo 0.500)" in verdict.label
    better = [scored(str(i), 0.75, references=refs) for i in range(10)]
    verdict = evaluate(gate("skill"), better)
    assert verdict.value == pytest.approx(0.5)
    assert verdict.passed


def test_echo_rate_gate() -> None:
    results = [scored("a", 0.3, echo=0.95), scored("b", 0.3, echo=0.2), scored("c", 0.3, echo=0.1), failed("d")]
    verdict = evaluate(gate("echo_rate", GateSettings(max_echo_rate=0.25)), results)
    assert verdict.value == pytest.approx(1 / 3)
    assert not verdict.passed
    assert verdict.detail.startswith("1 prediction(s) near-copy")
    assert evaluate(gate("echo_rate", GateSettings(max_echo_rate=0.5)), results).passed


def test_probe_thresholds_are_opt_in_and_metadata_overrides_them() -> None:
    probe = Probe("f::c::turn2", "f", 1, "c", 2, (), "t")
    assert gates.probe_thresholds(probe, GateSettings()) == {}
    settings = GateSettings(min_probe_similarity=0.5, min_probe_lexical=0.2)
    assert gates.probe_thresholds(probe, settings) == {"semantic": 0.5, "lexical": 0.2}
    override = Probe("f::c::turn2", "f", 1, "c", 2, (), "t", {"min_probe_similarity": 0.1})
    assert gates.probe_thresholds(override, settings) == {"semantic": 0.1, "lexical": 0.2}


def test_shortfalls_name_each_metric_below_its_minimum() -> None:
    result = scored("a", 0.25, 0.1)
    assert gates.probe_shortfalls(result, {"semantic": 0.2, "lexical": 0.3}) == ["lexical similarity 0.100 < 0.300"]
    assert gates.probe_shortfalls(result, {}) == []


def labelled(pid: str, label: str) -> ProbeResult:
    return ProbeResult(pid, "p", "p", {"semantic": 0.3, "lexical": 0.3}, label=label)


def test_followup_rate_counts_genuine_labels_with_a_wilson_interval() -> None:
    results = [labelled(str(i), "genuine_followup") for i in range(6)]
    results += [labelled(f"r{i}", "restatement") for i in range(4)] + [failed("x")]
    verdict = evaluate(gate("followup_rate", GateSettings(min_followup_rate=0.5)), results)
    assert verdict.value == pytest.approx(0.6)
    assert verdict.n == 10
    assert verdict.passed
    assert verdict.ci_low == pytest.approx(0.3127, abs=1e-3)
    assert "6 genuine follow-up(s)" in verdict.detail
    assert "1 probe(s) without a prediction excluded" in verdict.detail


def test_gating_on_the_lower_bound_is_stricter_than_on_the_point() -> None:
    results = [labelled(str(i), "genuine_followup") for i in range(6)]
    results += [labelled(f"r{i}", "irrelevant") for i in range(4)]
    strict = evaluate(gate("followup_rate", GateSettings(min_followup_rate=0.5)), results, "lower")
    assert not strict.passed
    assert strict.basis == "lower bound"
    assert strict.compared == strict.ci_low
    echoes = [scored(str(i), 0.3, echo=0.9 if i < 2 else 0.1) for i in range(20)]
    point = evaluate(gate("echo_rate", GateSettings(max_echo_rate=0.15)), echoes)
    upper = evaluate(gate("echo_rate", GateSettings(max_echo_rate=0.15)), echoes, "lower")
    assert point.passed
    assert not upper.passed
    assert upper.basis == "upper bound"
    assert upper.ci_high is not None
    assert upper.ci_high > 0.15
