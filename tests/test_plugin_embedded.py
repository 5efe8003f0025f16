"""End to end through pytest with the embedded llama.cpp model and the real embedding model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import GATES, LOW_GATES, read_header, read_results

SMALL_IDS = [
    "logs.jsonl::support-001::turn2",
    "logs.jsonl::support-001::turn3",
    "logs.jsonl::support-001::turn4",
    "logs.jsonl::shopping-002::turn2",
    "logs.jsonl::shopping-002::turn3",
]


def test_small_log_passes_and_writes_valid_results(pytester: pytest.Pytester, small_log: Path) -> None:
    out = pytester.path / "results.jsonl"
    result = pytester.runpytest("--utg-logs", str(small_log), "--utg-results", str(out), "-v", *LOW_GATES)
    result.assert_outcomes(passed=len(SMALL_IDS) + GATES)
    result.stdout.fnmatch_lines(
        [f"{node_id} PASSED*" for node_id in SMALL_IDS]
        + [
            f"utg::gate::{gate} PASSED*"
            for gate in ("semantic_similarity", "lexical_similarity", "skill", "echo_rate", "followup_rate")
        ]
    )
    result.stdout.fnmatch_lines(
        [
            "*utg summary*",
            "5 probes from 1 log file(s), 5 selected; 0 invalid log line(s)",
            "model: gguf:SmolLM2-135M-Instruct.Q4_1.gguf | prompt template*",
            "predictions: 5 scored (0 from the cache), 0 without a prediction*",
            "  semantic  mean * p10 * p50 * p90 *",
            "  lexical   mean *",
            "PASS semantic_similarity: mean semantic similarity * over 5 probes",
        ]
    )
    records = read_results(out)
    assert [r["probe_id"] for r in records] == SMALL_IDS
    assert all(isinstance(r["prediction"], str) and r["error"] is None for r in records)
    assert read_header(out)["served_by"] == "gguf:SmolLM2-135M-Instruct.Q4_1.gguf"
    assert all(0.0 <= r["scores"]["lexical"] <= 1.0 and -1.0 <= r["scores"]["semantic"] <= 1.0 for r in records)


def test_unreachable_gate_fails_the_run_and_names_the_gate(pytester: pytest.Pytester, small_log: Path) -> None:
    result = pytester.runpytest(
        "--utg-logs", str(small_log), *LOW_GATES, "--utg-min-similarity", "0.99", "-k", "support and turn2 or gate"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=GATES, failed=1, deselected=4)
    result.stdout.fnmatch_lines(
        [
            "*gate semantic_similarity failed: FAIL semantic_similarity: mean semantic * not >= 0.990 over 1 probes",
            "*(threshold set by --utg-min-similarity)",
            "FAILED utg::gate::semantic_similarity*",
        ]
    )
    result.stdout.no_fnmatch_line("*Traceback*")


def test_per_probe_threshold_shows_context_real_and_predicted_turns(pytester: pytest.Pytester, small_log: Path) -> None:
    result = pytester.runpytest(
        "--utg-logs",
        str(small_log),
        "--utg-min-probe-similarity",
        "0.99",
        *LOW_GATES,
        "--deselect",
        "logs.jsonl::support-001",
        "--deselect",
        "logs.jsonl::shopping-002::turn3",
    )
    result.assert_outcomes(failed=1, passed=GATES, deselected=4)
    result.stdout.fnmatch_lines(
        [
            "*logs.jsonl::shopping-002::turn2 (logs.jsonl:2): semantic similarity * < 0.990",
            "[[]user[]]:",
            "[[]assistant[]]:",
            "real user turn:",
            "predicted turn:",
            "scores: semantic *, lexical * | thresholds: semantic >= 0.990",
            "  echo   would score semantic *, lexical * (the assistant's last message)",
            "  repeat would score semantic *, lexical * (the user's previous message)",
            "  floor  would score semantic *, lexical * (another conversation's user turn)",
        ]
    )


def test_conversation_metadata_overrides_probe_threshold(pytester: pytest.Pytester, small_log: Path) -> None:
    lines = small_log.read_text(encoding="utf-8").splitlines()
    conversation = json.loads(lines[1])
    conversation["metadata"]["utg"] = {"thresholds": {"min_probe_similarity": -1.0}}
    small_log.write_text(lines[0] + "\n" + json.dumps(conversation) + "\n", encoding="utf-8")
    result = pytester.runpytest(
        "--utg-logs", str(small_log), "--utg-min-probe-similarity", "0.99", "-k", "shopping or gate", *LOW_GATES
    )
    result.assert_outcomes(passed=2 + GATES, deselected=3)


@pytest.fixture
def bad_log(pytester: pytest.Pytester, fixtures_dir: Path) -> Path:
    path = pytester.path / "mixed.jsonl"
    path.write_bytes((fixtures_dir / "bad" / "mixed.jsonl").read_bytes())
    return path


def test_malformed_lines_are_reported_and_the_rest_is_tested(pytester: pytest.Pytester, bad_log: Path) -> None:
    bad = bad_log.name
    result = pytester.runpytest("--utg-logs", bad, "--utg-max-probes", "2", "-W", "default", *LOW_GATES)
    result.assert_outcomes(passed=2 + GATES, warnings=6)
    for line, pointer in [
        (3, "(root)"),
        (4, "(root)"),
        (6, "/messages/2/role"),
        (7, "/messages/1/content"),
        (9, "/messages"),
        (10, "(root)"),
    ]:
        result.stdout.fnmatch_lines([f"*invalid log line: {bad}:{line}: {pointer}: *"])
    result.stdout.fnmatch_lines(["2 probes from 1 log file(s)*6 invalid log line(s)*"])
    assert result.ret == pytest.ExitCode.OK


def test_strict_makes_each_invalid_line_a_failing_item(pytester: pytest.Pytester, bad_log: Path) -> None:
    bad = bad_log.name
    result = pytester.runpytest("--utg-logs", bad, "--utg-strict", "--utg-max-probes", "1", "-rf", *LOW_GATES)
    result.assert_outcomes(passed=1 + GATES, failed=6)
    result.stdout.fnmatch_lines(
        [f"invalid log line: {bad}:6: /messages/2/role: 'moderator' is not one of *", f"FAILED {bad}::line6 - *"]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_ini_options_drive_the_run(pytester: pytest.Pytester, small_log: Path) -> None:
    pytester.makeini(
        """
        [pytest]
        utg_logs = logs.jsonl
        utg_max_probes = 2
        utg_min_similarity = -1
        utg_min_lexical = 0.99
        utg_min_skill = -100
        utg_max_echo_rate = 1
        utg_prompt = roleswap
        """
    )
    result = pytester.runpytest("-v")
    result.assert_outcomes(passed=2 + GATES - 1, failed=1)
    result.stdout.fnmatch_lines(["*prompt roleswap*", "FAIL lexical_similarity*over 2 probes"])


def test_gzipped_logs_and_directories(pytester: pytest.Pytester, small_log: Path) -> None:
    import gzip

    folder = pytester.mkdir("logdir")
    (folder / "a.jsonl.gz").write_bytes(gzip.compress(small_log.read_bytes()))
    result = pytester.runpytest("--utg-logs", "logdir", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["logdir/a.jsonl.gz::support-001::turn2", "utg::gate::lexical_similarity"])
    assert result.ret == pytest.ExitCode.OK


def test_last_failed_reruns_only_the_failed_probes(pytester: pytest.Pytester, small_log: Path) -> None:
    lines = small_log.read_text(encoding="utf-8").splitlines()
    conversation = json.loads(lines[1])
    conversation["metadata"]["utg"] = {"thresholds": {"min_probe_similarity": -1.0}}
    small_log.write_text(lines[0] + "\n" + json.dumps(conversation) + "\n", encoding="utf-8")
    args = ("--utg-logs", str(small_log), "--utg-min-probe-similarity", "0.99", *LOW_GATES, "-p", "cacheprovider")
    first = pytester.runpytest(*args)
    first.assert_outcomes(failed=3, passed=2 + GATES)
    out = pytester.path / "rerun.jsonl"
    again = pytester.runpytest(*args, "--lf", "--utg-results", str(out), "-v")
    again.assert_outcomes(failed=3, deselected=2 + GATES)
    again.stdout.fnmatch_lines(["logs.jsonl::support-001::turn2 FAILED*"])
    assert len(read_results(out)) == 3
