"""The Markdown report: verdicts and numbers as the comparison computed them, log text that cannot break the comment,
and every shape of run (empty, incomparable, with history) rendered."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, replace

import pytest

from utg_pytest import baseline
from utg_pytest.baseline import Comparison
from utg_pytest.model import LogFile, Message, ProbeResult
from utg_pytest.record import ProbeRecord, RunHeader, RunRecord, dumps, loads
from utg_pytest.report import markdown
from utg_pytest.settings import ControlSettings, DriftSettings, Settings

PIPE_TURN = "it's option a | option b\nthen the second line"
SCRIPT = "<script>alert(1)</script>"
MARKUP_TURN = "# `rm -rf` *now* [link](x) ~gone~ @octocat"
LONG_TURN = "word " * 300
LABELS = ("genuine_followup", "genuine_followup", "restatement", "identity_drift", "degenerate", "closing")


def header(created: str, settings: Settings | None = None) -> RunHeader:
    return RunHeader(
        utg_version="0.1.0",
        created=created,
        settings=settings or Settings(controls=ControlSettings(temperatures=(0.7,), control="shuffle")),
        backend="http://llm.internal/v1 model support-bot",
        backend_key="k",
        served_by="support-bot-v7",
        embedding_model="all-MiniLM-L6-v2",
        prompt_fingerprint="p",
        labeller="heuristic-2",
        scorers={"semantic": "cosine-1", "lexical": "token-sort-1"},
        logs=(LogFile("logs/support|prod.jsonl", "ab" * 32, 12345),),
        log_errors=(),
        probes_in_logs=40,
        probes_in_shard=40,
    )


def _result(probe_id: str, rng: random.Random, semantic: float, prediction: str) -> ProbeResult:
    def clip(value: float) -> float:
        return min(1.0, max(0.0, value))

    references = {
        name: {"semantic": clip(rng.gauss(mean, 0.1)), "lexical": clip(rng.gauss(0.3, 0.1))}
        for name, mean in (("echo", 0.3), ("repeat", 0.22), ("floor", 0.09))
    }
    return ProbeResult(
        probe_id,
        prediction,
        prediction,
        {"semantic": clip(semantic), "lexical": clip(rng.gauss(0.3, 0.08))},
        references=references,
        echo=rng.random() < 0.05,
        label=rng.choice(LABELS),
    )


def run(created: str, shift: float = 0.0, seed: int = 0, n: int = 40, settings: Settings | None = None) -> RunRecord:
    """A run of `n` probes, two per conversation, whose semantic similarity is a fixed base (the same in every run)
    plus `shift` and noise; the first probes carry hostile log text, and the last one errored."""
    base = random.Random(99)
    rng = random.Random(seed)
    probes = []
    for i in range(n):
        probe_id = f"logs/support.jsonl::c{i // 2}::turn{i % 2 + 2}"
        target = {0: PIPE_TURN, 1: "fine, thanks", 2: LONG_TURN, 3: MARKUP_TURN}.get(i, f"real user turn {i}")
        prediction = SCRIPT if i == 1 else f"prediction {i} of seed {seed}"
        semantic = base.uniform(0.1, 0.7) + shift + rng.gauss(0, 0.05)
        if i < 2:
            semantic = 0.9 + (shift * 4 if shift < 0 else 0)
        result = _result(probe_id, rng, semantic, prediction)
        if i == n - 1:
            result = ProbeResult(probe_id, None, None, {}, error="HTTP 500 <b>after</b> 3 attempts", attempts=3)
        sweep = {"0.7": replace(result, label=rng.choice(LABELS))} if result.ok else {}
        shuffled = (
            replace(result, scores={k: v * 0.5 for k, v in result.scores.items()}) if i % 2 and result.ok else None
        )
        context = (
            Message("system", "You are the support assistant."),
            Message("user", f"my internet keeps dropping ({i})"),
            Message("assistant", f"Are you on Wi-Fi or a cable? (context of probe {i})"),
        )
        probes.append(
            ProbeRecord(
                probe_id,
                "logs/support.jsonl",
                i + 1,
                f"c{i // 2}",
                i % 2 + 2,
                5,
                context,
                target,
                f"{i:064x}",
                {},
                result,
                None if not result.ok else i % 7 != 0,
                sweep,
                shuffled,
            )
        )
    return RunRecord(header(created), tuple(probes))


@dataclass(frozen=True)
class Runs:
    base: RunRecord
    new: RunRecord
    history: tuple[RunRecord, ...]
    comparison: Comparison


def runs() -> Runs:
    """A candidate that fell in semantic similarity against its baseline, with three earlier runs."""
    base = run("2026-11-28T10:00:00+00:00", seed=1)
    new = run("2026-12-01T10:00:00+00:00", shift=-0.15, seed=2)
    history = tuple(
        run(f"2026-11-2{day}T10:00:00+00:00", shift=s, seed=day) for day, s in ((5, 0.02), (6, 0), (7, -0.4))
    )
    return Runs(base, new, history, baseline.compare(base, new))


@pytest.fixture(scope="module")
def sample() -> Runs:
    return runs()


CELL = re.compile(r"(?<!\\)\|")


def tables(text: str) -> dict[str, list[list[str]]]:
    """Each table of the document under the heading above it, as rows of cells split on unescaped pipes."""
    found: dict[str, list[list[str]]] = {}
    heading = ""
    for line in text.splitlines():
        if line.startswith(("#", "<details>")):
            heading = line.lstrip("# ")
        elif line.startswith("|") and not line.startswith("|---"):
            found.setdefault(heading, []).append([cell.strip() for cell in CELL.split(line)[1:-1]])
    return found


def table(text: str, heading: str) -> list[list[str]]:
    return next(rows for name, rows in tables(text).items() if name.startswith(heading))


def test_the_drift_table_carries_each_drift_as_computed_and_the_failed_gate_says_fail(sample: Runs) -> None:
    text = markdown.render(sample.new, sample.comparison)
    rows = table(text, "Drift gates")
    assert rows[0][:4] == ["gate", "verdict", "baseline", "candidate"]
    skill = sample.comparison.skill
    assert skill is not None
    assert len(rows) == 1 + len(sample.comparison.drifts) + 1
    assert rows[-1][:5] == ["`drift::skill`", "not gated", f"{skill.base:.3f}", f"{skill.new:.3f}",
                            f"{skill.difference:+.3f}"]  # fmt: skip
    for row, drift in zip(rows[1:-1], sample.comparison.drifts, strict=True):
        assert len(row) == len(rows[0])
        assert row[0] == f"`drift::{drift.metric}`"
        assert row[1].endswith(drift.verdict)
        assert row[2:8] == [
            f"{drift.base:.3f}",
            f"{drift.new:.3f}",
            f"{drift.difference:+.3f}",
            f"{drift.ci_low:+.3f}..{drift.ci_high:+.3f}",
            f"{drift.p_adjusted:.3g}",
            f"{drift.mde:.3f}",
        ]
        assert row[9] == str(drift.n)
        assert row[10] == (str(drift.needed) if drift.verdict == "inconclusive" else "-")
    semantic = sample.comparison.drift("semantic")
    assert semantic.verdict == "fail"
    assert rows[1][1] == "❌ fail"
    assert "**utg: ❌ failed**" in text.splitlines()[0]
    assert "`drift::semantic`" in text.splitlines()[0]


def test_an_inconclusive_drift_fails_only_when_the_run_says_so(sample: Runs) -> None:
    inconclusive = [d.metric for d in sample.comparison.drifts if d.verdict == "inconclusive"]
    assert inconclusive, "the sample should have an inconclusive drift metric"
    warned = markdown.render(sample.new, sample.comparison).splitlines()[0]
    assert f"inconclusive: `drift::{inconclusive[0]}`" in warned
    strict = Settings(drift=DriftSettings(inconclusive="fail"))
    record = replace(sample.new, header=replace(sample.new.header, settings=strict))
    text = markdown.render(record, sample.comparison)
    row = next(r for r in table(text, "Drift gates") if r[0] == f"`drift::{inconclusive[0]}`")
    assert row[1] == "❌ fail"
    assert f"`drift::{inconclusive[0]}`" in text.splitlines()[0].split("inconclusive")[0]


def test_the_run_gates_table_has_one_row_per_verdict(sample: Runs) -> None:
    rows = table(markdown.render(sample.new), "Gates")
    assert [r[0] for r in rows[1:]] == [f"`{v.name}`" for v in sample.new.verdicts]
    for row, verdict in zip(rows[1:], sample.new.verdicts, strict=True):
        assert row[1] == ("✅ pass" if verdict.passed else "❌ fail")
        assert row[3] == f"{verdict.value:.3f}"


def test_sections_come_in_order(sample: Runs) -> None:
    text = markdown.render(sample.new, sample.comparison, sample.history)
    order = ["**utg:", "### Gates", "### Drift gates", "### Label rates", "### Label transitions", "### Regressions",
             "### History", "<details>"]  # fmt: skip
    positions = [text.index(marker) for marker in order]
    assert positions == sorted(positions)
    assert text.rstrip().endswith("</details>")


def test_log_text_cannot_break_a_table_or_inject_markup(sample: Runs) -> None:
    text = markdown.render(sample.new, sample.comparison, top=40)
    rows = table(text, "Regressions")
    assert all(len(row) == 5 for row in rows)
    by_probe = {row[0]: row for row in rows[1:]}
    pipe = by_probe[markdown.escape("logs/support.jsonl::c0::turn2")]
    assert pipe[1] == "it's option a \\| option b then the second line"
    script = by_probe[markdown.escape("logs/support.jsonl::c0::turn3")]
    assert script[3] == "&lt;script&gt;alert(1)&lt;/script&gt;"
    markup = next(row for row in rows if "rm -rf" in row[1])
    assert markup[1] == "\\# \\`rm -rf\\` \\*now\\* \\[link\\](x) \\~gone\\~ @\u200boctocat"
    assert "<script" not in text
    assert "<b>" not in text
    logs = next(row for row in table(text, "<details>") if row[0] == "log files")
    assert logs == ["log files", "logs/support\\|prod.jsonl (12345 bytes, sha256 abababababab)"]


def test_long_texts_are_capped_with_an_ellipsis(sample: Runs) -> None:
    rows = table(markdown.render(sample.new, sample.comparison, top=40), "Regressions")
    long = next(row for row in rows if row[1].startswith("word word"))
    assert long[1].endswith("…")
    assert len(long[1]) == markdown.CAP
    assert markdown.escape("x" * 50, 10) == "x" * 9 + "…"


def test_top_limits_the_regressions_to_those_that_fell(sample: Runs) -> None:
    rows = table(markdown.render(sample.new, sample.comparison, top=3), "Regressions")
    assert len(rows) == 4
    worst = [r for r in sample.comparison.regressions if r.change < 0][:3]
    assert [row[4] for row in rows[1:]] == [f"{r.change:+.3f}" for r in worst]


def test_history_rows_come_oldest_first_and_end_with_this_run(sample: Runs) -> None:
    rows = table(markdown.render(sample.new, sample.comparison, sample.history), "History")
    assert [row[0] for row in rows[1:]] == ["1", "2", "3", "this run"]
    assert [row[1] for row in rows[1:]] == [r.header.created for r in sample.history] + [sample.new.header.created]
    semantic = rows[0].index("`semantic_similarity`")
    values = [run.verdict("semantic_similarity").value for run in (*sample.history, sample.new)]
    assert [row[semantic].split()[0] for row in rows[1:]] == [f"{v:.3f}" for v in values]


def test_labels_of_both_arms_and_their_transitions(sample: Runs) -> None:
    text = markdown.render(sample.new, sample.comparison)
    rates = table(text, "Label rates")
    genuine = next(row for row in rates if row[0] == "genuine_followup")
    b, n = sample.comparison.label_rates["genuine_followup"]
    assert genuine[1:3] == [f"{b:.1%}", f"{n:.1%}"]
    transitions = table(text, "Label transitions")
    columns = transitions[0][1:]
    for row in transitions[1:]:
        source = row[0].strip("*")
        for column, cell in zip(columns, row[1:], strict=True):
            count = sample.comparison.transitions.get(source, {}).get(column, 0)
            assert cell == (str(count) if count else "·")


def test_an_empty_run_renders_and_fails() -> None:
    text = markdown.render(RunRecord(header("2026-12-01T00:00:00+00:00"), ()))
    assert text.startswith("**utg: ❌ failed**")
    assert "No probes in this run" in text
    assert "0 run, 0 scored" in text


def test_a_run_whose_every_probe_errored_renders() -> None:
    errored = run("2026-12-01T00:00:00+00:00")
    probes = tuple(replace(p, result=ProbeResult(p.probe_id, None, None, {}, error="timeout"), passed=None)
                   for p in errored.probes)  # fmt: skip
    text = markdown.render(replace(errored, probes=probes), "the baseline could not be read")
    assert "0 scored" in text
    assert "> **Error:** drift not judged: the baseline could not be read" in text


def test_an_incomparable_comparison_is_shown_as_an_error_and_fails(sample: Runs) -> None:
    reason = "the two runs were scored differently: labeller: baseline 'heuristic-1' <b>, candidate 'heuristic-2'"
    text = markdown.render(sample.new, reason)
    assert "> **Error:** drift not judged: the two runs were scored differently: labeller: baseline" in text
    assert "'heuristic-1' &lt;b&gt;, candidate" in text
    assert "`drift`" in text.splitlines()[0]
    assert "### Drift gates" not in text


def test_the_report_is_deterministic_and_the_same_from_a_record_read_back(sample: Runs) -> None:
    text = markdown.render(sample.new, sample.comparison, sample.history)
    again = runs()
    assert markdown.render(again.new, again.comparison, again.history) == text
    read = loads(dumps(sample.new))
    assert markdown.render(read, baseline.compare(loads(dumps(sample.base)), read), sample.history) == text
