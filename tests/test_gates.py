from __future__ import annotations

import pytest

from utg_pytest import gates
from utg_pytest.model import Probe, ProbeResult
from utg_pytest.settings import Settings


def scored(pid: str, semantic: float, lexical: float = 0.5) -> ProbeResult:
    return ProbeResult(pid, "p", "p", {"semantic": semantic, "lexical": lexical})


def failed(pid: str) -> ProbeResult:
    return ProbeResult(pid, None, None, {}, error="APIConnectionError: refused (after 3 attempt(s))", attempts=3)


SEMANTIC = gates.Gate("semantic_similarity", "semantic", 0.3, "--utg-min-similarity")


def test_gate_uses_the_mean_of_scored_probes_and_counts_errors_apart() -> None:
    verdict = gates.evaluate(SEMANTIC, [scored("a", 0.2), scored("b", 0.6), failed("c")])
    assert verdict.value == pytest.approx(0.4)
    assert verdict.passed
    assert verdict.n == 2
    assert "1 probe(s) without a prediction excluded" in verdict.detail
    assert verdict.ci_low is not None
    assert verdict.ci_high is not None
    assert verdict.ci_low <= 0.4 <= verdict.ci_high


def test_gate_fails_below_threshold_and_when_nothing_was_scored() -> None:
    assert not gates.evaluate(SEMANTIC, [scored("a", 0.1)]).passed
    empty = gates.evaluate(SEMANTIC, [failed("a")])
    assert not empty.passed
    assert empty.value is None
    assert empty.detail == "no probe produced a prediction"


def test_probe_thresholds_are_opt_in_and_metadata_overrides_them() -> None:
    probe = Probe("f::c::turn2", "f", 1, "c", 2, (), "t")
    assert gates.probe_thresholds(probe, Settings()) == {}
    settings = Settings(min_probe_similarity=0.5, min_probe_lexical=0.2)
    assert gates.probe_thresholds(probe, settings) == {"semantic": 0.5, "lexical": 0.2}
    override = Probe("f::c::turn2", "f", 1, "c", 2, (), "t", {"min_probe_similarity": 0.1})
    assert gates.probe_thresholds(override, settings) == {"semantic": 0.1, "lexical": 0.2}


def test_shortfalls_name_each_metric_below_its_minimum() -> None:
    result = scored("a", 0.25, 0.1)
    assert gates.probe_shortfalls(result, {"semantic": 0.2, "lexical": 0.3}) == ["lexical similarity 0.100 < 0.300"]
    assert gates.probe_shortfalls(result, {}) == []
