"""The pytest_utg_* hooks, through the examples users paste: docs/plugins.md and every hookspec docstring run here
against a scripted endpoint, so an example that stops working fails the suite."""

from __future__ import annotations

import inspect
import json
import textwrap
from pathlib import Path

import pytest
from conftest import LOW_GATES, ROOT, read_header, read_results
from servers import RecordingModel, VariedModel, scripted, serve

from utg_pytest import hookspecs


def docstring_example(hook: object) -> str:
    doc = inspect.getdoc(hook) or ""
    return textwrap.dedent(doc.split("Example, in conftest.py::", 1)[1]).strip() + "\n"


def docs_example() -> str:
    text = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    return text.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_worked_example_scores_gates_and_reports_a_custom_metric(
    pytester: pytest.Pytester, small_log: Path
) -> None:
    pytester.makeconftest(docs_example())
    with serve(VariedModel) as url:
        strict = pytester.runpytest(*scripted(url), *LOW_GATES, "--utg-gate", "asks_back>=0.99", "--utg-results",
                                    "r.jsonl", "-rf")  # fmt: skip
        lenient = pytester.runpytest(*scripted(url), *LOW_GATES, "--utg-gate", "asks_back>=0")
    strict.stdout.fnmatch_lines(["gate asks_back failed: FAIL asks_back: mean asks_back * not >= 0.990 over 5 probes",
                                 "  asks_back mean *", "asks_back: prediction and real turn agree on asking in * of 5 "
                                 "probes", "*FAILED utg::gate::asks_back*"])  # fmt: skip
    assert strict.ret == pytest.ExitCode.TESTS_FAILED
    assert lenient.ret == pytest.ExitCode.OK
    rows = read_results(pytester.path / "r.jsonl")
    assert all(row["scores"]["asks_back"] in (0.0, 1.0) for row in rows)
    assert read_header(pytester.path / "r.jsonl")["scorers"] == {"semantic": "cosine-1", "lexical": "token-sort-1",
                                                                "asks_back": "1"}  # fmt: skip


def test_a_gate_or_margin_on_an_unregistered_metric_is_a_usage_error(
    pytester: pytest.Pytester, small_log: Path
) -> None:
    gated = pytester.runpytest("--utg-logs", "logs.jsonl", "--utg-gate", "asks_back>=0.5")
    assert gated.ret == pytest.ExitCode.USAGE_ERROR
    gated.stderr.fnmatch_lines(["*--utg-gate asks_back: no scorer of that name; registered: semantic, lexical*"])
    malformed = pytester.runpytest("--utg-logs", "logs.jsonl", "--utg-gate", "asks_back=>0.5")
    malformed.stderr.fnmatch_lines(["*expected METRIC>=X or METRIC<=X*"])
    margin = pytester.runpytest("--utg-logs", "logs.jsonl", "--utg-max-drop", "semantik=0.1")
    margin.stderr.fnmatch_lines(["*--utg-max-drop: unknown metric(s) semantik; known: semantic, lexical*"])


def test_the_scorer_docstring_example(pytester: pytest.Pytester, small_log: Path) -> None:
    pytester.makeconftest(docstring_example(hookspecs.pytest_utg_register_scorers))
    with serve(VariedModel) as url:
        result = pytester.runpytest(
            *scripted(url), *LOW_GATES, "--utg-gate", "politeness<=1", "--utg-results", "r.jsonl"
        )
    assert result.ret == pytest.ExitCode.OK
    assert {"politeness"} <= set(read_results(pytester.path / "r.jsonl")[0]["scores"])


def test_the_log_format_docstring_example(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(docstring_example(hookspecs.pytest_utg_log_formats))
    turns = [{"who": "user", "said": "my router blinks red"}, {"who": "assistant", "said": "Unplug it for a minute."},
             {"who": "user", "said": "done, still red"}]  # fmt: skip
    (pytester.path / "tickets.jsonl").write_text(json.dumps({"id": 41, "ticket": {"turns": turns}}) + "\n")
    result = pytester.runpytest("--utg-logs", "tickets.jsonl", "--collect-only", "-q")
    result.stdout.fnmatch_lines(["tickets.jsonl::41::turn2"])
    named = pytester.runpytest("--utg-logs", "tickets.jsonl", "--utg-format", "tickets", "--collect-only", "-q")
    named.stdout.fnmatch_lines(["tickets.jsonl::41::turn2"])
    unknown = pytester.runpytest("--utg-logs", "tickets.jsonl", "--utg-format", "tikets", "--collect-only")
    unknown.stderr.fnmatch_lines(["*--utg-format tikets: no such format; known: auto, tickets, otlp, * table"])


def test_the_prepare_probe_docstring_example_changes_what_is_sent(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(docstring_example(hookspecs.pytest_utg_prepare_probe))
    messages = [{"role": "user", "content": "<context>Plan A costs 10 EUR.</context> How much is plan A?"},
                {"role": "assistant", "content": "Plan A costs 10 EUR a month."},
                {"role": "user", "content": "and plan B?"}]  # fmt: skip
    (pytester.path / "logs.jsonl").write_text(json.dumps({"id": "c1", "messages": messages}) + "\n")
    with serve(RecordingModel) as url:
        result = pytester.runpytest(*scripted(url), *LOW_GATES, "--utg-results", "r.jsonl")
    assert result.ret == pytest.ExitCode.OK
    sent = RecordingModel.bodies
    assert sent
    assert all("Plan A costs 10 EUR." not in body.split("How much")[0] for body in sent)
    assert any("How much is plan A?" in body for body in sent)
    assert read_results(pytester.path / "r.jsonl")[0]["target"] == "and plan B?"


def test_the_backend_docstring_example_describes_the_run(pytester: pytest.Pytester, small_log: Path) -> None:
    pytester.makeconftest(docstring_example(hookspecs.pytest_utg_make_backend))
    with serve(VariedModel) as url:
        args = ("--utg-logs", "logs.jsonl", "--utg-base-url", url.replace("/v1", "/gateway/v1"), "--utg-model",
                "scripted", "--utg-prompt", "roleswap", *LOW_GATES, "--utg-results", "r.jsonl")  # fmt: skip
        result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.OK
    assert read_header(pytester.path / "r.jsonl")["backend"] == "gateway scripted"


def test_the_summary_lines_docstring_example(pytester: pytest.Pytester, small_log: Path) -> None:
    pytester.makeconftest(docstring_example(hookspecs.pytest_utg_summary_lines))
    with serve(VariedModel) as url:
        result = pytester.runpytest(*scripted(url), *LOW_GATES)
    result.stdout.fnmatch_lines(["slowest probe: logs.jsonl::*::turn* (* s)"])
