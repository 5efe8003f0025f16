"""A run, and its drift against a baseline, as Markdown for a pull-request comment or GITHUB_STEP_SUMMARY.

Rendered from the values given, deterministically, so a re-run posts the same comment. Log text is untrusted: every
piece of it is flattened to one line, capped, and escaped so it cannot break a table, open a code span, inject HTML or
ping a GitHub user; a slice's value comes from the logs' metadata, so it is log text too. The helpers that decide what
failed are shared with the HTML report, so both say the same thing.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from utg_pytest import slicing
from utg_pytest.baseline import Comparison, Drift, Regression
from utg_pytest.model import GateVerdict
from utg_pytest.record import RunRecord
from utg_pytest.report.terminal import agreement_note, number
from utg_pytest.scoring.labels import LABELS
from utg_pytest.scoring.scorers import LEXICAL, SEMANTIC
from utg_pytest.slicing import SMALL_CONVERSATIONS, SMALL_PROBES, Slice, SliceDrift, SliceVerdict

CAP = 200
"""Characters of one log text shown in a table cell."""
SLICE_CAP = 80
"""Characters of a slice's value (log metadata) wherever it is shown."""
SMALL = f"fewer than {SMALL_PROBES} predictions or {SMALL_CONVERSATIONS} conversations: too few to say much"
"""What the mark on a small slice means."""
SLICE_HEAD = (
    "probes",
    "conversations",
    "semantic",
    "95% CI",
    "lexical",
    "skill",
    "follow-up rate",
    "echo rate",
    "top labels",
)
"""The columns of a slice table after the slice itself."""
SLICE_DRIFT_HEAD = ("baseline", "candidate", "change", "95% CI", "p (Holm)", "allowed", "n")
"""The columns of the slice drift table after the gate, the slice and the verdict."""
NAMED = 12
"""Gates the verdict line names of those that failed, and of those that only warned, before saying how many more."""
MARK = {"pass": "✅ pass", "inconclusive": "⚠️ inconclusive", "fail": "❌ fail", "reported": "not gated"}
_SPECIAL = re.compile(r"([\\`*_\[\]|~])")
_MENTION = re.compile(r"@(?=\w)")
_PLAIN = re.compile(r"[\w.:=()\[\]/+ -]{1,120}")


# --- what failed: shared with the HTML report ------------------------------------------------------------------------


def drift_verdict(drift: Drift, inconclusive: str) -> str:
    """pass, inconclusive or fail, as the drift gate item reports it: an inconclusive verdict fails only when
    --utg-inconclusive says so."""
    return "fail" if drift.verdict == "inconclusive" and inconclusive == "fail" else drift.verdict


def shown_drifts(comparison: Comparison) -> tuple[Drift, ...]:
    """The drift table's rows: each gated metric, then skill, which is reported beside them but not gated."""
    return (*comparison.drifts, *((comparison.skill,) if comparison.skill is not None else ()))


def slice_verdicts(record: RunRecord) -> tuple[SliceVerdict, ...]:
    """The run gates judged on each slice, when the run asked for it (--utg-slice-gates) and has probes to judge."""
    settings = record.header.settings
    if not settings.slices.gates or not record.probes:
        return ()
    return slicing.judge(record, settings.gates, settings.drift.alpha)


def slice_drifts(record: RunRecord, comparison: Comparison | str | None) -> tuple[SliceDrift, ...]:
    """The drift gates judged on each slice, when the run asked for slice gates and the arms were compared."""
    settings = record.header.settings
    if not settings.slices.gates or not isinstance(comparison, Comparison):
        return ()
    return slicing.drift_by_slice(comparison, settings.slices.fields, settings.drift, list(record.header.scorers))


def outcome(record: RunRecord, comparison: Comparison | str | None) -> tuple[list[str], list[str]]:
    """The gates that failed and those that passed only with a warning (an inconclusive drift or slice gate), by item
    name. A slice gate that fails fails the run, as its pytest item does."""
    inconclusive = record.header.settings.drift.inconclusive
    failed = ["run"] if record.failure else []
    failed += [v.name for v in record.verdicts if not v.passed]
    warned: list[str] = []
    for found in slice_verdicts(record):
        if found.outcome != "pass":
            (failed if found.outcome == "fail" else warned).append(found.name)
    if isinstance(comparison, str):
        failed.append("drift")
    elif comparison is not None:
        for drift in comparison.drifts:
            verdict = drift_verdict(drift, inconclusive)
            if verdict != "pass":
                (failed if verdict == "fail" else warned).append(f"drift::{drift.metric}")
        for sliced in slice_drifts(record, comparison):
            verdict = drift_verdict(sliced.drift, inconclusive)
            if verdict != "pass":
                (failed if verdict == "fail" else warned).append(sliced.name)
    return failed, warned


def named(names: Sequence[str], cap: int = NAMED) -> tuple[list[str], int]:
    """The first `cap` names the verdict line shows, and how many it leaves out (slices can make them many)."""
    return list(names[:cap]), max(0, len(names) - cap)


def gate_count(record: RunRecord, comparison: Comparison | str | None) -> int:
    """The gates judged: the run's, each slice's, and the drift gates."""
    drifts = len(comparison.drifts) if isinstance(comparison, Comparison) else 0
    return len(record.verdicts) + len(slice_verdicts(record)) + drifts + len(slice_drifts(record, comparison))


def run_passed(run: RunRecord) -> tuple[bool, str]:
    """Whether a run passed, with its slice gates (slicing.passed), and a note of how many slice gates failed, so that a
    run whose run gates all passed says why it did not."""
    failed = sum(v.outcome == "fail" for v in slice_verdicts(run))
    return slicing.passed(run), f" ({failed} slice gate(s))" if failed else ""


def gate_names(runs: Sequence[RunRecord]) -> list[str]:
    """The run gates judged in any of the runs, in the order they first appear."""
    return list(dict.fromkeys(v.name for run in runs for v in run.verdicts))


def facts(record: RunRecord) -> list[tuple[str, str]]:
    """What produced the run, as plain text (each report escapes it its own way)."""
    header = record.header
    generation = header.settings.generation
    figures = record.figures
    shard = header.settings.logs.shard
    errors = sum(1 for e in header.log_errors if not e.skipped)
    skipped = sum(e.count for e in header.log_errors if e.skipped)
    probes = f"{header.probes_in_logs} in the logs"
    if shard:
        probes += f", {header.probes_in_shard} in shard {shard[0]}/{shard[1]}"
    found = [
        ("model", header.served_by or header.backend),
        ("backend", f"{header.backend} (key {header.backend_key})"),
        (
            "generation",
            f"prompt {generation.prompt}, temperature {generation.temperature:g}, max tokens "
            f"{generation.max_tokens}, samples {generation.samples}"
            + "".join(f", {name.replace('_', ' ')} {value:g}" for name, value in generation.decoding().items()),
        ),
        ("embedding model", header.embedding_model),
        ("labeller", f"{header.labeller}: {agreement_note(header.label_agreement)}"),
        ("scorers", ", ".join(f"{m} {v}" for m, v in header.scorers.items())),
        ("log files", "; ".join(f"{log.name} ({log.size} bytes, sha256 {log.sha256[:12]})" for log in header.logs)),
        (
            "probes",
            f"{probes}, {len(record.probes)} run, {figures.scored} scored, {figures.failed} without a prediction",
        ),
        ("invalid log lines", f"{errors}" + (f" ({skipped} records skipped on purpose)" if skipped else "")),
        ("utg version", header.utg_version),
        ("created", header.created),
    ]
    if header.pii:
        found.append(("personal data found", ", ".join(f"{kind} {n}" for kind, n in header.pii.items())))
    sliced = header.settings.slices
    if sliced.fields:
        gated = "each run gate judged per slice" if sliced.gates else "reported, not gated"
        found.append(("slices", f"by {', '.join(sliced.fields)} ({gated})"))
    return found


def pairing(record: RunRecord, comparison: Comparison) -> str:
    """How the two arms paired and how they were compared."""
    pairs = comparison.alignment
    baseline = record.header.settings.drift.baseline
    return (
        f"Against the baseline{f' {baseline}' if baseline else ''}: {len(pairs.pairs)} probes paired"
        + (f" ({pairs.by_fingerprint} by content)" if pairs.by_fingerprint else "")
        + f", {pairs.only_base} only in the baseline, {pairs.only_new} only in this run; paired bootstrap over "
        f"conversations, seed {comparison.seed}, alpha {comparison.alpha:g} (Holm)."
    )


def worst(comparison: Comparison, top: int) -> list[Regression]:
    """The probes whose semantic similarity fell most, those that fell at all."""
    return [r for r in comparison.regressions if r.change < 0][:top]


def interval(low: float | None, high: float | None, signed: bool = False) -> str:
    return "-" if low is None or high is None else f"{number(low, signed)}..{number(high, signed)}"


def measured(verdict: GateVerdict) -> str:
    """The value a gate judged, with the conservative bound when that is what was compared."""
    if verdict.basis != "point" and verdict.compared is not None:
        return f"{number(verdict.value)} ({verdict.basis} {verdict.compared:.3f})"
    return number(verdict.value)


def p_value(drift: Drift) -> str:
    return "-" if drift.p_adjusted is None else f"{drift.p_adjusted:.3g}"


def needed(drift: Drift) -> str:
    """The probes that would detect the margin, where too few were the reason for an inconclusive verdict."""
    return str(drift.needed) if drift.verdict == "inconclusive" and drift.needed else "-"


def drift_numbers(drift: Drift) -> list[str]:
    """A drift table's figures: baseline, candidate, change, interval, adjusted p, MDE, margin, n, probes needed."""
    return [
        number(drift.base),
        number(drift.new),
        number(drift.difference, True),
        interval(drift.ci_low, drift.ci_high, True),
        p_value(drift),
        number(drift.mde),
        allowed(drift),
        str(drift.n),
        needed(drift),
    ]


def allowed(drift: Drift) -> str:
    if drift.verdict == "reported":
        return "-"
    return f"{'fall' if drift.higher_is_better else 'rise'} {drift.margin:g}"


def slice_cells(part: Slice) -> list[str]:
    """A slice's figures, after its value, as the columns of SLICE_HEAD."""
    figures = part.figures
    semantic, lexical = figures.similarity.get(SEMANTIC), figures.similarity.get(LEXICAL)
    skill = figures.skill.get(SEMANTIC)
    followup = figures.plausibility.followup
    labels = sorted(figures.plausibility.labels.items(), key=lambda item: (-item[1], item[0]))[:2]
    return [
        str(part.probes),
        str(part.conversations),
        number(semantic.mean if semantic else None),
        interval(semantic.ci_low, semantic.ci_high) if semantic else "-",
        number(lexical.mean if lexical else None),
        number(skill.skill if skill else None, True),
        number(followup.value if followup else None),
        number(figures.echo.value if figures.echo else None),
        ", ".join(f"{label} {count}" for label, count in labels) or "-",
    ]


def shortfall(verdict: SliceVerdict) -> tuple[str, str]:
    """A slice gate's shortfall p-value, raw and after Holm across the field's slices."""
    return (
        "-" if verdict.p is None else f"{verdict.p:.3g}",
        "-" if verdict.p_adjusted is None else f"{verdict.p_adjusted:.3g}",
    )


def slice_note(verdict: SliceVerdict) -> str:
    """What a slice gate's row says besides its numbers, as plain text."""
    untested = not verdict.verdict.passed and verdict.verdict.value is not None and verdict.p_adjusted is None
    parts = [verdict.verdict.detail, "too few conversations to test the shortfall" if untested else ""]
    return "; ".join(part for part in parts if part)


def slice_drift_cells(found: SliceDrift) -> list[str]:
    """A slice drift gate's numbers, as the columns of SLICE_DRIFT_HEAD."""
    d = found.drift
    return [
        number(d.base),
        number(d.new),
        number(d.difference, True),
        interval(d.ci_low, d.ci_high, True),
        p_value(d),
        allowed(d),
        str(d.n),
    ]


def slice_drift_intro(found: Sequence[SliceDrift]) -> str:
    """What the slice drift gates are, with the size of each field's correction, as plain text."""
    families = ", ".join(f"{field} {family}" for field, family in dict((d.field, d.family) for d in found).items())
    return (
        "Each drift gate on each slice of the paired probes (a pair's slice is the candidate's value), Holm across "
        f"every metric and slice of the field (tests: {families})."
    )


def slices_intro(record: RunRecord) -> str:
    """What the slice gates decide, as plain text."""
    alpha = record.header.settings.drift.alpha
    return (
        "Each run gate on each slice. A slice fails when it falls short of the gate's threshold and the shortfall is "
        f"significant at alpha {alpha:g} after Holm across the field's slices (conversations clustered); short of "
        "it but not significantly is inconclusive, a warning."
    )


def shorten(text: str, cap: int) -> str:
    if len(text) <= cap:
        return text
    return text[: cap - 1].rstrip() + "…"


# --- Markdown --------------------------------------------------------------------------------------------------------


def escape(text: str | None, cap: int = CAP) -> str:
    """One line of inert Markdown: whitespace (newlines too) collapsed, capped, HTML and Markdown syntax escaped, and
    `@name` broken by a zero-width space so that log text never mentions a GitHub user."""
    if text is None:
        return "(none)"
    flat = shorten(" ".join(text.split()), cap)
    if not flat:
        return "(empty)"
    flat = flat.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    flat = _SPECIAL.sub(r"\\\1", flat)
    flat = "\\" + flat if flat[0] in "#+-=" else flat
    return _MENTION.sub("@\u200b", flat)


def code(name: str) -> str:
    """A gate's item name as code, unless it holds what a code span cannot (a slice's value may hold anything): then
    escaped like log text."""
    return f"`{name}`" if _PLAIN.fullmatch(name) else escape(name, SLICE_CAP + 40)


def _table(head: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _names(names: Sequence[str]) -> str:
    shown, more = named(names)
    return ", ".join(code(name) for name in shown) + (f" and {more} more" if more else "")


def _headline(record: RunRecord, comparison: Comparison | str | None) -> str:
    failed, warned = outcome(record, comparison)
    if failed:
        line = f"**utg: ❌ failed**: {_names(failed)}"
    else:
        line = f"**utg: ✅ passed** (all {gate_count(record, comparison)} gates)"
    if warned:
        line += f"; inconclusive: {_names(warned)}"
    header = record.header
    model = escape(header.served_by or header.backend, 80)
    return f"{line} · {len(record.probes)} probes, {record.figures.scored} scored · model {model}"


def _errors(record: RunRecord, comparison: Comparison | str | None) -> list[str]:
    found = [f"> **Error:** the run failed: {escape(record.failure, 1000)}"] if record.failure else []
    if isinstance(comparison, str):
        found.append(f"> **Error:** drift not judged: {escape(comparison, 1000)}")
    if not record.probes:
        found.append("> No probes in this run: every gate fails, as no evidence is not a pass.")
    return found


def _run_gates(record: RunRecord) -> str:
    rows = [
        [
            f"`{v.name}`",
            MARK["pass" if v.passed else "fail"],
            escape(v.label),
            measured(v),
            interval(v.ci_low, v.ci_high),
            f"{v.comparison} {v.threshold:.3f}",
            str(v.n),
            escape(v.detail) if v.detail else "",
        ]
        for v in record.verdicts
    ]
    return "### Gates\n\n" + _table(["gate", "verdict", "measured", "value", "95% CI", "threshold", "n", "note"], rows)


def _drift_gates(record: RunRecord, comparison: Comparison) -> str:
    inconclusive = record.header.settings.drift.inconclusive
    intro = escape(pairing(record, comparison), 1000)
    rows = [
        [
            f"`drift::{d.metric}`",
            MARK[drift_verdict(d, inconclusive)],
            *drift_numbers(d),
            escape(d.detail) if d.detail else "",
        ]
        for d in shown_drifts(comparison)
    ]
    head = ["gate", "verdict", "baseline", "candidate", "change", "95% CI", "p (Holm)", "MDE", "allowed", "n"]
    return "### Drift gates\n\n" + intro + "\n\n" + _table([*head, "probes needed", "note"], rows)


def _slices(record: RunRecord) -> list[str]:
    """Per --utg-slice field, the figures on each of its values; a small slice is marked."""
    found = []
    for field in record.header.settings.slices.fields:
        parts = slicing.slices(record, field)
        if not parts:
            continue
        rows = [[escape(p.value, SLICE_CAP) + (" \\*" if p.small else ""), *slice_cells(p)] for p in parts]
        text = (
            f"### Slices by {escape(field, SLICE_CAP)}\n\n"
            f"The run's figures on each value of {escape(field, SLICE_CAP)}, {slicing.NONE} for the conversations "
            f"without it.\n\n" + _table(["slice", *SLICE_HEAD], rows)
        )
        if any(p.small for p in parts):
            text += f"\n\n\\* {SMALL}."
        found.append(text)
    return found


def _slice_gates(record: RunRecord) -> str:
    judged = slice_verdicts(record)
    if not judged:
        return ""
    rows = [
        [
            f"`{v.gate}`",
            escape(f"{v.field}={v.value}", SLICE_CAP),
            MARK[v.outcome],
            measured(v.verdict),
            f"{v.verdict.comparison} {v.verdict.threshold:.3f}",
            interval(v.verdict.ci_low, v.verdict.ci_high),
            *shortfall(v),
            str(v.family),
            escape(note) if (note := slice_note(v)) else "",
        ]
        for v in judged
    ]
    head = ["gate", "slice", "verdict", "value", "threshold", "95% CI", "shortfall p", "Holm p", "family size", "note"]
    return "### Slice gates\n\n" + slices_intro(record) + "\n\n" + _table(head, rows)


def _slice_drifts(record: RunRecord, comparison: Comparison) -> str:
    found = slice_drifts(record, comparison)
    if not found:
        return ""
    inconclusive = record.header.settings.drift.inconclusive
    rows = [
        [
            f"`drift::{d.drift.metric}`",
            escape(f"{d.field}={d.value}", SLICE_CAP),
            MARK[drift_verdict(d.drift, inconclusive)],
            *slice_drift_cells(d),
            escape(d.drift.detail) if d.drift.detail else "",
        ]
        for d in found
    ]
    return (
        "### Slice drift gates\n\n"
        + escape(slice_drift_intro(found), 1000)
        + "\n\n"
        + _table(["gate", "slice", "verdict", *SLICE_DRIFT_HEAD, "note"], rows)
    )


def _misses(record: RunRecord, top: int) -> str:
    found = slicing.worst(record)
    shown = found[:top]
    if not shown:
        return ""
    rows = [
        [
            escape(m.probe.probe_id),
            number(m.score),
            f"{escape(m.reference, 40)} {number(m.reference_score)}",
            number(m.gap, True),
            escape(m.probe.target),
            escape(m.probe.result.prediction),
        ]
        for m in shown
    ]
    head = ["probe", "semantic", "best reference", "gap", "real user turn", "prediction"]
    return (
        f"### Probes it gets most wrong: {len(shown)} of the {len(found)} where a reference predictor beat it\n\n"
        "Ranked by how far the model's semantic similarity to the real turn falls below the best reference "
        "predictor's on the same probe.\n\n" + _table(head, rows)
    )


def _labels(record: RunRecord, comparison: Comparison | None) -> list[str]:
    if comparison is None:
        counts = record.figures.plausibility.labels
        total = sum(counts.values())
        if not total:
            return []
        rows = [[label, str(count), f"{count / total:.1%}"] for label, count in counts.items()]
        note = f"By {record.header.labeller}; {agreement_note(record.header.label_agreement)}.\n\n"
        return ["### Labels\n\n" + note + _table(["label", "predictions", "share"], rows)]
    found = []
    rates = [
        [label, f"{b:.1%}", f"{n:.1%}", f"{n - b:+.1%}"] for label, (b, n) in comparison.label_rates.items() if b or n
    ]
    if rates:
        note = f"By {record.header.labeller}; {agreement_note(record.header.label_agreement)}.\n\n"
        found.append("### Label rates\n\n" + note + _table(["label", "baseline", "candidate", "change"], rates))
    if comparison.transitions:
        used = [
            label
            for label in LABELS
            if label in comparison.transitions or any(label in row for row in comparison.transitions.values())
        ]
        rows = [[f"**{a}**", *(str(comparison.transitions.get(a, {}).get(b, 0) or "·") for b in used)] for a in used]
        found.append(
            "### Label transitions (probes; rows: baseline, columns: candidate)\n\n"
            + _table(["baseline \\ candidate", *used], rows)
        )
    return found


def _regressions(comparison: Comparison, top: int) -> str:
    fell = worst(comparison, top)
    if not fell:
        return "### Regressions\n\nNo paired probe lost semantic similarity to the real turn."
    rows = [
        [escape(r.probe_id), escape(r.target), escape(r.base_prediction), escape(r.new_prediction), f"{r.change:+.3f}"]
        for r in fell
    ]
    head = ["probe", "real user turn", "baseline prediction", "candidate prediction", "semantic change"]
    return f"### Regressions: the {len(fell)} probes whose semantic similarity fell most\n\n" + _table(head, rows)


def _history(record: RunRecord, history: Sequence[RunRecord]) -> str:
    runs = [*history, record]
    names = gate_names(runs)
    rows = []
    for index, run in enumerate(runs, start=1):
        verdicts = {v.name: v for v in run.verdicts}
        name = "this run" if index == len(runs) else str(index)
        cells = [
            f"{number(verdicts[n].value)} {'✅' if verdicts[n].passed else '❌'}" if n in verdicts else "-"
            for n in names
        ]
        passed, note = run_passed(run)
        rows.append([name, escape(run.header.created), str(len(run.probes)), *cells, ("✅" if passed else "❌") + note])
    head = ["run", "created", "probes", *(f"`{n}`" for n in names), "passed"]
    return "### History (oldest first)\n\n" + _table(head, rows)


def _metadata(record: RunRecord) -> str:
    rows = [[name, escape(value, 1000)] for name, value in facts(record)]
    return "<details><summary>Run metadata</summary>\n\n" + _table(["", "value"], rows) + "\n\n</details>"


def render(
    record: RunRecord,
    comparison: Comparison | str | None = None,
    history: Sequence[RunRecord] = (),
    top: int = 5,
) -> str:
    """`comparison` is the drift of `record` against a baseline, or why the two could not be compared; `history`
    holds earlier runs, oldest first, without `record`; `top` is how many regressions, and how many of the probes it
    gets most wrong, are listed."""
    compared = comparison if isinstance(comparison, Comparison) else None
    parts = [_headline(record, comparison), *_errors(record, comparison), _run_gates(record)]
    if compared is not None:
        parts.append(_drift_gates(record, compared))
    parts += [*_slices(record), _slice_gates(record)]
    if compared is not None:
        parts.append(_slice_drifts(record, compared))
    parts.append(_misses(record, top))
    parts += _labels(record, compared)
    if compared is not None:
        parts.append(_regressions(compared, top))
    if history:
        parts.append(_history(record, history))
    parts.append(_metadata(record))
    return "\n\n".join(part for part in parts if part) + "\n"
