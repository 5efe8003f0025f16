"""The Markdown report: verdicts and numbers as the comparison computed them, log text that cannot break the comment,
and every shape of run (empty, incomparable, with history, sliced or not) rendered."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, replace

import pytest

from utg_pytest import baseline, slicing
from utg_pytest.baseline import Comparison
from utg_pytest.model import LogFile, Message, ProbeResult
from utg_pytest.record import ProbeRecord, RunHeader, RunRecord, dumps, loads
from utg_pytest.report import markdown
from utg_pytest.settings import ControlSettings, DriftSettings, Settings, SliceSettings

PIPE_TURN = "it's option a | option b\nthen the second line"
SCRIPT = "<script>alert(1)</script>"
MARKUP_TURN = "# `rm -rf` *now* [link](x) ~gone~ @octocat"
LONG_TURN = "word " * 300
LABELS = ("genuine_followup", "genuine_followup", "restatement", "identity_drift", "degenerate", "closing")
HOSTILE_SLICE = "a | b <script>alert(1)</script>\nnext `x` @octocat"
DOMAINS = {
    **dict.fromkeys((3, 6, 9, 12, 15, 18), "billing"),
    **dict.fromkeys((0, 2, 5, 7, 8, 10, 11, 19), "network"),
    16: "refunds",
}
"""The domain of each conversation of a sample run; the others have none. The model collapses on billing (a slice gate
fails significantly), refunds is one conversation (a small slice)."""
SLICED = SliceSettings(fields=("domain", "channel"), gates=True)
SETTINGS = Settings(controls=ControlSettings(temperatures=(0.7,), control="shuffle"), slices=SLICED)


def header(created: str, settings: Settings | None = None) -> RunHeader:
    return RunHeader(
        utg_version="0.1.0",
        created=created,
        settings=settings or SETTINGS,
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
    plus `shift` and noise, a quarter of that on billing; the first probes carry hostile log text, and the last one
    errored. Each probe is sliced by its conversation's domain (DOMAINS) and channel (chat or email)."""
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
        domain = DOMAINS.get(i // 2, slicing.NONE)
        if domain == "billing":
            semantic *= 0.25
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
                {"domain": domain, "channel": "chat" if i // 2 % 2 else "email"},
            )
        )
    return RunRecord(header(created, settings), tuple(probes))


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
    warned = markdown.render(sample.new, sample.comparison).splitlines()[0].split("; inconclusive: ")[1]
    assert f"`drift::{inconclusive[0]}`" in warned
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
    order = ["**utg:", "### Gates", "### Drift gates", "### Slices by domain", "### Slices by channel",
             "### Slice gates", "### Slice drift gates", "### Probes it gets most wrong", "### Label rates",
             "### Label transitions", "### Regressions", "### History", "<details>"]  # fmt: skip
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


# --- slices and the probes it gets most wrong ------------------------------------------------------------------------


def unsliced(record: RunRecord) -> RunRecord:
    """The record as a run without --utg-slice would have kept it."""
    settings = replace(record.header.settings, slices=SliceSettings())
    probes = tuple(replace(p, slices={}) for p in record.probes)
    return replace(record, header=replace(record.header, settings=settings), probes=probes)


def hostile(record: RunRecord) -> RunRecord:
    """The record with the billing slice's value (log metadata, so untrusted) made of markup, a pipe and a newline."""
    probes = tuple(
        replace(p, slices={**p.slices, "domain": HOSTILE_SLICE}) if p.slices.get("domain") == "billing" else p
        for p in record.probes
    )
    return replace(record, probes=probes)


def slice_gated(record: RunRecord, **gates: float) -> RunRecord:
    settings = replace(record.header.settings, gates=replace(record.header.settings.gates, **gates))
    return replace(record, header=replace(record.header, settings=settings))


def test_each_slice_field_has_a_table_of_the_figures_slicing_computes(sample: Runs) -> None:
    text = markdown.render(sample.new)
    for field in SLICED.fields:
        rows = table(text, f"Slices by {field}")
        found = slicing.slices(sample.new, field)
        assert rows[0] == ["slice", *markdown.SLICE_HEAD]
        assert [row[0].removesuffix(" \\*") for row in rows[1:]] == [part.value for part in found]
        for row, part in zip(rows[1:], found, strict=True):
            figures = part.figures
            semantic, lexical = figures.similarity["semantic"], figures.similarity["lexical"]
            assert figures.plausibility.followup is not None
            assert figures.echo is not None
            labels = sorted(figures.plausibility.labels.items(), key=lambda item: (-item[1], item[0]))[:2]
            assert row[1:] == [
                str(part.probes),
                str(part.conversations),
                f"{semantic.mean:.3f}",
                f"{semantic.ci_low:.3f}..{semantic.ci_high:.3f}",
                f"{lexical.mean:.3f}",
                f"{figures.skill['semantic'].skill:+.3f}",
                f"{figures.plausibility.followup.value:.3f}",
                f"{figures.echo.value:.3f}",
                ", ".join(f"{label} {count}" for label, count in labels),
            ]
    domains = [row[0] for row in table(text, "Slices by domain")[1:]]
    assert domains == ["billing", "network", "refunds \\*", slicing.NONE], "by value, the (none) slice last"
    assert sum(part.probes for part in slicing.slices(sample.new, "domain")) == len(sample.new.probes)


def test_a_small_slice_is_marked_and_the_mark_explained_once_under_its_table(sample: Runs) -> None:
    text = markdown.render(sample.new)
    small = {part.value for part in slicing.slices(sample.new, "domain") if part.small}
    assert small == {"refunds"}, "one conversation is too few to say much"
    for row in table(text, "Slices by domain")[1:]:
        assert row[0].endswith(" \\*") == (row[0].removesuffix(" \\*") in small)
    footnote = f"\\* {markdown.SMALL}."
    assert text.count(footnote) == 1, "only the domain table has a small slice"
    assert text.index("### Slices by domain") < text.index(footnote) < text.index("### Slices by channel")


def test_the_slice_gates_table_has_each_verdict_and_a_failing_slice_fails_the_headline(sample: Runs) -> None:
    record = sample.new
    settings = record.header.settings
    judged = slicing.judge(record, settings.gates, settings.drift.alpha)
    text = markdown.render(record)
    rows = table(text, "Slice gates")
    assert rows[0][:9] == ["gate", "slice", "verdict", "value", "threshold", "95% CI", "shortfall p", "Holm p",
                           "family size"]  # fmt: skip
    assert len(rows) == 1 + len(judged) == 1 + 5 * (4 + 2)
    for row, verdict in zip(rows[1:], judged, strict=True):
        assert len(row) == len(rows[0])
        assert row[:3] == [f"`{verdict.gate}`", markdown.escape(f"{verdict.field}={verdict.value}"),
                           markdown.MARK[verdict.outcome]]  # fmt: skip
        assert row[3] == f"{verdict.verdict.value:.3f}"
        assert row[4] == f"{verdict.verdict.comparison} {verdict.verdict.threshold:.3f}"
        assert row[6:9] == [
            "-" if verdict.p is None else f"{verdict.p:.3g}",
            "-" if verdict.p_adjusted is None else f"{verdict.p_adjusted:.3g}",
            str(verdict.family),
        ]
    billing = next(v for v in judged if v.name == "semantic_similarity[domain=billing]")
    assert billing.outcome == "fail"
    assert billing.p_adjusted is not None
    assert billing.p_adjusted < settings.drift.alpha, "significant after Holm"
    failing = [v.name for v in judged if v.outcome == "fail"]
    inconclusive = [v.name for v in judged if v.outcome == "inconclusive"]
    assert inconclusive, "the sample should have a slice short of a threshold but not significantly"
    failed, warned = markdown.outcome(record, None)
    assert failed == ["skill", *failing]
    assert warned == inconclusive
    headline = text.splitlines()[0]
    assert headline.startswith("**utg: ❌ failed**: `skill`, `semantic_similarity[domain=billing]`")
    assert all(f"`{name}`" in headline.split("; inconclusive")[0] for name in failing)


def test_a_run_that_fails_only_on_a_slice_fails_and_says_which() -> None:
    record = slice_gated(run("2026-12-01T10:00:00+00:00", shift=-0.15, seed=2), min_skill=-1.0)
    assert record.passed, "every run gate passes"
    assert not slicing.passed(record)
    text = markdown.render(record, history=(record,))
    assert text.splitlines()[0].startswith("**utg: ❌ failed**: `semantic_similarity[domain=billing]` · ")
    assert [row[-1] for row in table(text, "History")[1:]] == ["❌ (1 slice gate(s))"] * 2
    ungated = replace(record.header.settings, slices=SliceSettings(fields=SLICED.fields))
    text = markdown.render(replace(record, header=replace(record.header, settings=ungated)))
    assert text.startswith(f"**utg: ✅ passed** (all {len(record.verdicts)} gates)")
    assert "### Slices by domain" in text
    assert "### Slice gates" not in text
    more = slice_gated(record, min_similarity=-1.0)
    judged = slicing.judge(more, more.header.settings.gates)
    assert markdown.render(more).startswith(f"**utg: ✅ passed** (all {len(more.verdicts) + len(judged)} gates)")


def test_each_drift_gate_on_each_slice_is_shown_and_a_failing_one_fails_the_headline(sample: Runs) -> None:
    settings = sample.new.header.settings
    found = slicing.drift_by_slice(
        sample.comparison, settings.slices.fields, settings.drift, list(sample.new.header.scorers)
    )
    text = markdown.render(sample.new, sample.comparison)
    rows = table(text, "Slice drift gates")
    assert len(rows) == 1 + len(found)
    for row, sliced in zip(rows[1:], found, strict=True):
        drift = sliced.drift
        assert len(row) == len(rows[0])
        assert row[:4] == [f"`drift::{drift.metric}`", f"{sliced.field}={markdown.escape(sliced.value)}",
                           markdown.MARK[drift.verdict], f"{drift.base:.3f}"]  # fmt: skip
        assert row[5:10] == [
            f"{drift.difference:+.3f}",
            f"{drift.ci_low:+.3f}..{drift.ci_high:+.3f}",
            f"{drift.p_adjusted:.3g}",
            f"{'fall' if drift.higher_is_better else 'rise'} {drift.margin:g}",
            str(drift.n),
        ]
    families = {d.field: d.family for d in found}
    assert families == {"domain": 5 * 4, "channel": 5 * 2}, "every metric on every slice of the field"
    assert "Holm across every metric and slice of the field (tests: domain 20, channel 10)." in text
    failing = [d.name for d in found if d.drift.verdict == "fail"]
    assert "drift::semantic[domain=billing]" in failing
    failed, _ = markdown.outcome(sample.new, sample.comparison)
    assert failed[-len(failing) :] == failing
    assert "`drift::semantic[domain=billing]`" in text.splitlines()[0]
    assert "### Slice drift gates" not in markdown.render(sample.new), "only against a baseline"


def test_the_probes_it_gets_most_wrong_come_most_negative_gap_first_up_to_top(sample: Runs) -> None:
    misses = slicing.worst(sample.new)
    assert 4 < len(misses) < len(sample.new.probes)
    text = markdown.render(sample.new, top=4)
    rows = table(text, "Probes it gets most wrong")
    assert f"Probes it gets most wrong: 4 of the {len(misses)} " in text
    assert rows[0] == ["probe", "semantic", "best reference", "gap", "real user turn", "prediction"]
    assert len(rows) == 1 + 4
    for row, miss in zip(rows[1:], misses, strict=False):
        assert row == [
            markdown.escape(miss.probe.probe_id),
            f"{miss.score:.3f}",
            f"{miss.reference} {miss.reference_score:.3f}",
            f"{miss.gap:+.3f}",
            markdown.escape(miss.probe.target),
            markdown.escape(miss.probe.result.prediction),
        ]
    gaps = [float(row[3]) for row in rows[1:]]
    assert gaps == sorted(gaps)
    assert gaps[-1] < 0
    every = table(markdown.render(sample.new, top=1000), "Probes it gets most wrong")
    assert len(every) == 1 + len(misses), "only the probes a reference beat"
    markup = next(row for row in every if "rm -rf" in row[4])
    assert markup[4] == "\\# \\`rm -rf\\` \\*now\\* \\[link\\](x) \\~gone\\~ @\u200boctocat"


def test_no_probe_below_a_reference_and_no_slice_field_add_nothing(sample: Runs) -> None:
    plain = unsliced(sample.new)
    text = markdown.render(plain, sample.comparison)
    for gone in ("Slices by", "Slice gates", "Slice drift gates", "too few to say much", "| slices |", "[domain"):
        assert gone not in text
    assert "### Probes it gets most wrong" in text, "shown whenever a reference beat the model on a probe"
    assert markdown.outcome(plain, sample.comparison) == (
        ["skill", "drift::semantic"],
        [f"drift::{d.metric}" for d in sample.comparison.drifts if d.verdict == "inconclusive"],
    )
    beaten = tuple(
        replace(
            p, result=replace(p.result, references={n: {m: -1.0 for m in s} for n, s in p.result.references.items()})
        )
        for p in plain.probes
    )
    assert slicing.worst(replace(plain, probes=beaten)) == []
    assert "Probes it gets most wrong" not in markdown.render(replace(plain, probes=beaten))


def test_a_hostile_slice_value_cannot_break_a_table_or_the_headline(sample: Runs) -> None:
    record = hostile(sample.new)
    text = markdown.render(record, baseline.compare(hostile(sample.base), record))
    assert "<script" not in text
    shown = markdown.escape(HOSTILE_SLICE, markdown.SLICE_CAP)
    assert shown == "a \\| b &lt;script&gt;alert(1)&lt;/script&gt; next \\`x\\` @\u200boctocat"
    for heading in ("Slices by domain", "Slice gates", "Slice drift gates"):
        rows = table(text, heading)
        assert all(len(row) == len(rows[0]) for row in rows), heading
    assert table(text, "Slices by domain")[1][0] == shown
    gate = next(row for row in table(text, "Slice gates") if row[0] == "`semantic_similarity`")
    assert gate[1] == markdown.escape(f"domain={HOSTILE_SLICE}")
    assert gate[2] == "❌ fail"
    headline = text.splitlines()[0]
    assert headline.endswith("· model support-bot-v7"), "one line"
    name = f"semantic_similarity[domain={HOSTILE_SLICE}]"
    assert markdown.code(name) == markdown.escape(name, markdown.SLICE_CAP + 40)
    assert markdown.code(name) in headline
    assert f"`{name}`" not in headline
    assert "@octocat" not in text


def test_the_headline_names_a_dozen_gates_then_counts_the_rest() -> None:
    assert markdown.named([str(i) for i in range(markdown.NAMED)]) == ([str(i) for i in range(markdown.NAMED)], 0)
    shown, more = markdown.named([str(i) for i in range(markdown.NAMED + 3)])
    assert len(shown) == markdown.NAMED
    assert more == 3
