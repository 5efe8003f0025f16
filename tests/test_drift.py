"""Drift between two arms: the paired statistics, alignment, verdicts, and the plugin and `utg compare` around them."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import LOW_GATES, validate_baseline
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import binomtest, wilcoxon
from servers import ParrotModel, VariedModel, serve

from utg_pytest import baseline, cli, stats
from utg_pytest.model import LogFile, ProbeResult
from utg_pytest.record import ProbeRecord, RunHeader, RunRecord
from utg_pytest.settings import Settings


def test_holm_adjusts_like_the_textbook() -> None:
    assert stats.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert stats.holm([0.5]) == [0.5]
    assert stats.holm([0.9, 0.8]) == [1.0, 1.0]


@given(st.integers(min_value=0, max_value=40), st.integers(min_value=0, max_value=40))
def test_exact_mcnemar_is_the_binomial_test_on_the_flips(worse: int, better: int) -> None:
    expected = 1.0 if worse + better == 0 else binomtest(worse, worse + better, 0.5).pvalue
    assert stats.mcnemar_p(worse, better) == pytest.approx(expected)


def test_wilcoxon_ignores_ties_at_zero() -> None:
    differences = [0.1, -0.05, 0.2, 0.0, 0.15, 0.3, -0.02, 0.0]
    expected = wilcoxon([d for d in differences if d], zero_method="wilcox").pvalue
    assert stats.wilcoxon_p(differences) == pytest.approx(expected)
    assert stats.wilcoxon_p([0.0, 0.0]) == 1.0


def test_the_clustered_standard_error_grows_when_probes_of_a_conversation_move_together() -> None:
    rng = random.Random(1)
    shifts = {f"c{g}": rng.gauss(0, 0.3) for g in range(30)}
    values = [shifts[f"c{g}"] + rng.gauss(0, 0.05) for g in range(30) for _ in range(5)]
    clusters = [f"c{g}" for g in range(30) for _ in range(5)]
    naive = stats.clustered_standard_error(values, [str(i) for i in range(len(values))])
    clustered = stats.clustered_standard_error(values, clusters)
    assert clustered > 1.8 * naive
    low, high = stats.clustered_bootstrap_mean_ci(values, clusters)
    wide_low, wide_high = stats.bootstrap_mean_ci(values)
    assert high - low > 1.5 * (wide_high - wide_low)


def test_the_minimum_detectable_effect_and_the_probes_that_would_detect_a_margin() -> None:
    # SD of differences 0.22 at n=150 (measured on real logs): MDE about 2.8 * 0.22 / sqrt(150) = 0.050.
    error = 0.22 / math.sqrt(150)
    assert stats.minimum_detectable_effect(error) == pytest.approx(0.0503, abs=5e-4)
    assert stats.probes_needed(error, 150, 0.03) == pytest.approx(422, abs=2)
    assert stats.probes_needed(math.inf, 1, 0.03) is None


def header(**changes: object) -> RunHeader:
    found = RunHeader(
        utg_version="0.1.0",
        created="2026-12-01T00:00:00+00:00",
        settings=Settings(),
        backend="b",
        backend_key="b",
        served_by=None,
        embedding_model="e",
        prompt_fingerprint="p",
        labeller="heuristic-2",
        scorers={"semantic": "cosine-1", "lexical": "token-sort-1"},
        logs=(LogFile("logs.jsonl", "0" * 64, 1),),
        log_errors=(),
        probes_in_logs=0,
        probes_in_shard=0,
    )
    return replace(found, **changes)  # type: ignore[arg-type]


def probe(i: int, semantic: float, label: str = "genuine_followup", conversation: int | None = None) -> ProbeRecord:
    result = ProbeResult(
        f"logs.jsonl::c{i}::turn2", f"prediction {i}", "raw", {"semantic": semantic, "lexical": 0.3}, label=label
    )
    c = i if conversation is None else conversation
    return ProbeRecord(
        f"logs.jsonl::c{i}::turn2", "logs.jsonl", c + 1, f"c{c}", 2, 1, (), f"real {i}", f"{i:064x}", {}, result, True
    )


def arm(scores: list[float], labels: list[str] | None = None, **changes: object) -> RunRecord:
    found = tuple(probe(i, s, (labels or ["genuine_followup"] * len(scores))[i]) for i, s in enumerate(scores))
    return RunRecord(header(**changes), found)


def test_the_same_arm_passes_every_drift_gate_or_is_inconclusive_but_never_fails() -> None:
    rng = random.Random(3)
    scores = [rng.uniform(0, 0.6) for _ in range(300)]
    comparison = baseline.compare(arm(scores), arm(scores))
    assert not comparison.failed
    assert {d.verdict for d in comparison.drifts} <= {"pass", "inconclusive"}
    assert comparison.drift("semantic").difference == 0.0


def test_a_clear_drop_fails_with_its_effect_interval_p_value_and_mde() -> None:
    rng = random.Random(4)
    base = [rng.uniform(0.1, 0.7) for _ in range(300)]
    worse = [max(0.0, s - 0.12 + rng.gauss(0, 0.05)) for s in base]
    comparison = baseline.compare(arm(base), arm(worse))
    drift = comparison.drift("semantic")
    assert drift.verdict == "fail"
    assert drift.difference is not None
    assert drift.difference < -0.1
    assert drift.ci_high is not None
    assert drift.ci_high < 0
    assert drift.p_adjusted is not None
    assert drift.p_adjusted < 0.001
    assert drift.mde is not None
    assert drift.mde < 0.03
    assert comparison.regressions[0].change < 0


def test_a_drop_too_small_for_the_probes_to_see_is_inconclusive_and_says_how_many_would() -> None:
    rng = random.Random(5)
    base = [rng.uniform(0.0, 0.6) for _ in range(40)]
    new = [min(1.0, max(0.0, s + rng.gauss(-0.05, 0.25))) for s in base]
    drift = baseline.compare(arm(base), arm(new)).drift("semantic")
    assert drift.verdict == "inconclusive"
    assert drift.needed is not None
    assert drift.needed > 40
    assert f"about {drift.needed} probes would detect 0.03" in drift.detail


def test_a_rising_degenerate_rate_is_a_worsening() -> None:
    scores = [0.3] * 200
    labels = ["genuine_followup"] * 200
    new_labels = ["degenerate"] * 60 + ["genuine_followup"] * 140
    comparison = baseline.compare(arm(scores, labels), arm(scores, new_labels))
    assert comparison.drift("degenerate_rate").verdict == "fail"
    assert comparison.drift("followup_rate").verdict == "fail"
    assert comparison.transitions["genuine_followup"]["degenerate"] == 60


def test_probes_pair_by_content_when_the_log_was_renamed() -> None:
    base = arm([0.2, 0.4, 0.6])
    moved = RunRecord(
        base.header,
        tuple(replace(p, probe_id=p.probe_id.replace("logs.jsonl", "renamed.jsonl")) for p in base.probes[:2]),
    )
    alignment = baseline.align(base, moved)
    assert (len(alignment.pairs), alignment.by_fingerprint, alignment.only_base, alignment.only_new) == (2, 2, 1, 0)


def test_runs_scored_differently_are_refused_naming_the_difference() -> None:
    with pytest.raises(baseline.IncomparableError, match="embedding model: baseline 'e', candidate 'other'"):
        baseline.compare(arm([0.1]), arm([0.1], embedding_model="other"))


@pytest.mark.slow
def test_update_then_compare_passes_the_same_model_and_fails_a_parrot(
    pytester: pytest.Pytester, logs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ("--utg-logs", "logs", "--utg-prompt", "roleswap", "--utg-model", "scripted", *LOW_GATES)
    drift = ("--utg-max-drop", "semantic=0.05,lexical=0.05", "--utg-inconclusive", "warn")
    with serve(VariedModel) as url:
        saved = pytester.runpytest(*common, "--utg-base-url", url, "--utg-update-baseline", "base.jsonl")
        probes = saved.parseoutcomes()["passed"] - 5
        assert probes > 50
        assert validate_baseline(pytester.path / "base.jsonl") == probes
        again = pytester.runpytest(*common, "--utg-base-url", url, "--utg-baseline", "base.jsonl", *drift,
                                   "--utg-results", "same.jsonl")  # fmt: skip
    again.assert_outcomes(passed=probes + 5 + 5, warnings=again.parseoutcomes().get("warnings", 0))
    again.stdout.fnmatch_lines([f"drift against the baseline *: {probes} probes paired, 0 only in the baseline, 0 *",
                                "* drift::semantic: mean semantic similarity * change +0.000 *"])  # fmt: skip
    with serve(ParrotModel) as url:
        parrot = pytester.runpytest(*common, "--utg-base-url", url, "--utg-baseline", "base.jsonl",
                                    "--utg-results", "parrot.jsonl", "-rf")  # fmt: skip
    parrot.stdout.fnmatch_lines(["*FAILED utg::gate::drift::echo_rate*"])
    assert parrot.ret == pytest.ExitCode.TESTS_FAILED
    capsys.readouterr()
    root = pytester.path
    assert cli.main(["compare", str(root / "base.jsonl"), str(root / "same.jsonl")]) == 0
    assert cli.main(["compare", str(root / "base.jsonl"), str(root / "parrot.jsonl")]) == 1
    assert "FAIL drift::echo_rate" in capsys.readouterr().out


def test_a_missing_baseline_is_reported_and_fails_only_when_required(
    pytester: pytest.Pytester, small_log: Path
) -> None:
    with serve(VariedModel) as url:
        args = ("--utg-logs", "logs.jsonl", "--utg-base-url", url, "--utg-model", "m", "--utg-prompt", "roleswap",
                "--utg-max-probes", "1", *LOW_GATES, "--utg-baseline", "nowhere.jsonl")  # fmt: skip
        lenient = pytester.runpytest(*args)
        lenient.assert_outcomes(passed=1 + 5)
        lenient.stdout.fnmatch_lines(["no baseline at *nowhere.jsonl: drift is not gated*"])
        strict = pytester.runpytest(*args, "--utg-require-baseline")
    strict.assert_outcomes(passed=1 + 5, failed=1)
    strict.stdout.fnmatch_lines(["*FAILED utg::gate::drift::baseline*"])


def test_an_unknown_drift_metric_is_a_usage_error(pytester: pytest.Pytester, small_log: Path) -> None:
    result = pytester.runpytest("--utg-logs", "logs.jsonl", "--utg-max-drop", "semantik=0.1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--utg-max-drop: unknown metric(s) semantik; known: semantic, lexical*"])


def test_a_part_that_failed_before_knowing_its_model_still_merges() -> None:
    from utg_pytest import record as record_module

    ok = RunRecord(header(), (probe(0, 0.3),))
    unanswered = replace(probe(1, 0.3), result=ProbeResult("x", None, None, {}, error="cache unusable"))
    failed = RunRecord(header(backend_key=""), (unanswered,), "cache unusable")
    merged = record_module.merge([failed, ok], complete=False)
    assert merged.header.backend_key == "b"
    assert merged.failure == "cache unusable"
    assert len(merged.probes) == 2


@pytest.mark.slow
@pytest.mark.parametrize("workers", [None, "2"])
def test_a_live_baseline_arm_is_judged_as_a_recorded_one_would_be(
    pytester: pytest.Pytester, logs: Path, capsys: pytest.CaptureFixture[str], workers: str | None
) -> None:
    common = ("--utg-logs", "logs", "--utg-prompt", "roleswap", "--utg-model", "scripted", *LOW_GATES)
    parallel = ("-n", workers) if workers else ()
    with serve(VariedModel) as production, serve(ParrotModel) as parrot:
        same = pytester.runpytest(*common, *parallel, "--utg-base-url", production, "--utg-compare-base-url",
                                  production, "--utg-max-drop", "semantic=0.05,lexical=0.05")  # fmt: skip
        worse = pytester.runpytest(*common, *parallel, "--utg-base-url", parrot, "--utg-compare-base-url", production,
                                   "--utg-results", "candidate.jsonl", "--utg-compare-results", "production.jsonl",
                                   "-rf")  # fmt: skip
    same.stdout.fnmatch_lines(["drift against the baseline *generated in this run*: * probes paired, 0 only in *",
                               "* drift::semantic: mean semantic similarity * change +0.000 *"])  # fmt: skip
    assert same.ret == pytest.ExitCode.OK
    worse.stdout.fnmatch_lines(["*FAILED utg::gate::drift::echo_rate*"])
    assert worse.ret == pytest.ExitCode.TESTS_FAILED
    capsys.readouterr()
    root = pytester.path
    validate_baseline(root / "production.jsonl")
    assert cli.main(["compare", str(root / "production.jsonl"), str(root / "candidate.jsonl")]) == 1
    assert "FAIL drift::echo_rate" in capsys.readouterr().out


def test_a_live_arm_takes_the_runs_settings_but_for_what_the_compare_options_name() -> None:
    from utg_pytest.settings import SettingsError, build

    settings = build({"logs": ["l.jsonl"], "base_url": "http://new/v1", "model": "v8", "temperatures": (0.0, 0.7),
                      "control": "shuffle", "compare_model": "v7", "compare_temperature": 0.7})  # fmt: skip
    live = settings.baseline_arm()
    assert live is not None
    assert (live.model.base_url, live.model.model, live.generation.temperature) == ("http://new/v1", "v7", 0.7)
    assert (live.controls.temperatures, live.controls.control) == ((), "none")
    local = build({"logs": ["l.jsonl"], "base_url": "http://new/v1", "compare_gguf": "/m/old.gguf"}).baseline_arm()
    assert local is not None
    assert (local.model.base_url, local.model.gguf) == (None, "/m/old.gguf")
    assert build({"logs": ["l.jsonl"]}).baseline_arm() is None
    with pytest.raises(SettingsError, match="either --utg-baseline"):
        build({"logs": ["l.jsonl"], "baseline": "b.jsonl", "compare_model": "v7"})


def test_skill_is_reported_against_the_best_reference_and_moves_with_semantic_similarity() -> None:
    def with_references(record: RunRecord, echo: float) -> RunRecord:
        refs = {"echo": {"semantic": echo, "lexical": 0.1}, "floor": {"semantic": 0.05, "lexical": 0.0}}
        return replace(record, probes=tuple(
            replace(p, result=replace(p.result, references=refs)) for p in record.probes))  # fmt: skip

    base = with_references(arm([0.40] * 60), echo=0.25)
    new = with_references(arm([0.30] * 60), echo=0.25)
    comparison = baseline.compare(base, new)
    skill = comparison.skill
    assert skill is not None
    assert skill.label == "semantic skill over the echo reference"
    assert (skill.base, skill.new, skill.verdict) == (pytest.approx(0.15), pytest.approx(0.05), "reported")
    assert skill.difference == pytest.approx(comparison.drift("semantic").difference)
    assert "skill" not in {d.metric for d in comparison.drifts}
    assert baseline.compare(arm([0.4] * 5), arm([0.4] * 5)).skill is None


def test_the_baseline_schema_refuses_a_record_that_cannot_be_compared(tmp_path: Path) -> None:
    from jsonschema import ValidationError

    from utg_pytest import record as record_module

    good = tmp_path / "good.jsonl"
    record_module.write(good, arm([0.3, 0.4]))
    assert validate_baseline(good) == 2
    bad = tmp_path / "bad.jsonl"
    record_module.write(bad, arm([0.3], embedding_model=""))
    with pytest.raises(ValidationError):
        validate_baseline(bad)


@pytest.mark.slow
def test_the_embedded_model_against_itself_served_by_llama_cpp_server_shows_no_drift(
    pytester: pytest.Pytester, logs: Path, llama_server: str, capsys: pytest.CaptureFixture[str]
) -> None:
    result = pytester.runpytest("--utg-logs", "logs", "--utg-max-probes", "16", *LOW_GATES,
                                "--utg-compare-base-url", llama_server, "--utg-compare-model", "smollm2",
                                "--utg-results", "embedded.jsonl", "--utg-compare-results", "served.jsonl")  # fmt: skip
    result.stdout.fnmatch_lines(
        ["drift against the baseline *#smollm2, generated in this run (prompt template, temperature 0): 16 probes*"]
    )
    gate_lines = [line for line in result.outlines if line.split(" drift::")[0] in ("PASS", "INCONCLUSIVE", "FAIL")]
    assert len(gate_lines) == 5
    assert not [line for line in gate_lines if line.startswith("FAIL")]
    assert result.ret == pytest.ExitCode.OK
    capsys.readouterr()
    root = pytester.path
    assert cli.main(["compare", str(root / "served.jsonl"), str(root / "embedded.jsonl"), "-q"]) == 0
    assert capsys.readouterr().out.splitlines() == gate_lines


def test_a_registered_scorer_drifts_like_a_built_in_metric() -> None:
    scorers = {"semantic": "cosine-1", "lexical": "token-sort-1", "politeness": "1"}

    def polite(record: RunRecord, value: float) -> RunRecord:
        return replace(record, probes=tuple(
            replace(p, result=replace(p.result, scores={**p.result.scores, "politeness": value}))
            for p in record.probes))  # fmt: skip

    base = polite(arm([0.4] * 200, scorers=scorers), 0.9)
    new = polite(arm([0.4] * 200, scorers=scorers), 0.5)
    found = baseline.compare(base, new)
    assert found.drift("politeness").verdict == "fail"
    assert found.drift("politeness").label == "mean politeness"
    assert baseline.margin_problem(["politeness"], scorers) is None
    assert baseline.margin_problem(["politeness"]) is not None
