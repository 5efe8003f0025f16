"""Lines for failures and the terminal summary, rendered from the run record so the pytest hooks only print them."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING

from utg_pytest.baseline import Comparison, Drift
from utg_pytest.controls import FOLLOWUP, Gap, SweepRow
from utg_pytest.cost import Usage, cost
from utg_pytest.figures import Distribution, Figures, Plausibility
from utg_pytest.model import GateVerdict, LogError, Probe
from utg_pytest.record import ProbeRecord, RunRecord
from utg_pytest.scoring.labels import READER_AGREEMENT, Agreement
from utg_pytest.settings import LimitSettings, Settings

if TYPE_CHECKING:
    from utg_pytest.runner import Status
    from utg_pytest.slicing import SliceDrift, SliceVerdict

CONTEXT_TURNS_SHOWN = 3
REFERENCE_HELP = {
    "echo": "the assistant's last message",
    "repeat": "the user's previous message",
    "floor": "another conversation's user turn",
}
WIDTH = 100


def _block(label: str, text: str) -> list[str]:
    body = textwrap.wrap(text, WIDTH - 4, replace_whitespace=False, drop_whitespace=True) or ["(empty)"]
    return [f"{label}:"] + [f"    {line}" for line in body]


def probe_failure(probe: ProbeRecord, shortfalls: Sequence[str]) -> str:
    """From the record, whose texts the PII guard has redacted where it found personal data."""
    result, thresholds = probe.result, probe.thresholds
    lines = [f"{probe.probe_id} ({probe.source}:{probe.line}): " + "; ".join(shortfalls)]
    shown = probe.context_tail[-CONTEXT_TURNS_SHOWN:]
    if probe.context_messages > len(shown):
        lines.append(f"... {probe.context_messages - len(shown)} earlier message(s)")
    for message in shown:
        lines += _block(f"[{message.role}]", message.text)
    lines += _block("real user turn", probe.target)
    lines += _block("predicted turn", result.prediction or "")
    lines.append(
        "scores: "
        + ", ".join(f"{m} {v:.3f}" for m, v in result.scores.items())
        + " | thresholds: "
        + ", ".join(f"{m} >= {v:.3f}" for m, v in thresholds.items())
    )
    lines += [
        f"  {name:<6} would score "
        + ", ".join(f"{m} {v:.3f}" for m, v in scores.items())
        + f" ({REFERENCE_HELP[name]})"
        for name, scores in result.references.items()
    ]
    if result.echo:
        lines.append(f"echo: the prediction near-copies the assistant's last message (score {result.echo_score:.2f})")
    return "\n".join(lines)


def probe_error(probe: Probe, error: str) -> str:
    return f"{probe.id} ({probe.source}:{probe.line}): no prediction: {error}"


def gate_line(verdict: GateVerdict) -> str:
    status = "PASS" if verdict.passed else "FAIL"
    if verdict.value is None:
        return f"{status} {verdict.name}: {verdict.detail}"
    interval = f" (95% CI {verdict.ci_low:.3f}..{verdict.ci_high:.3f})" if verdict.ci_low is not None else ""
    relation = verdict.comparison if verdict.passed else f"not {verdict.comparison}"
    extra = f"; {verdict.detail}" if verdict.detail else ""
    basis = (
        f", {verdict.basis} {verdict.compared:.3f},"
        if verdict.basis != "point" and verdict.compared is not None
        else ""
    )
    return (
        f"{status} {verdict.name}: {verdict.label} {verdict.value:.3f}{interval}{basis} "
        f"{relation} {verdict.threshold:.3f} over {verdict.n} probes{extra}"
    )


def gate_failure(verdict: GateVerdict) -> str:
    return f"gate {verdict.name} failed: {gate_line(verdict)}\n(threshold set by {verdict.option})"


def log_error(error: LogError) -> str:
    return f"invalid log line: {error.describe()}"


def progress_line(status: Status, elapsed_s: float) -> str:
    rate = status.done / elapsed_s if elapsed_s > 0 else 0.0
    left = status.total - status.done
    eta = f"ETA {_duration(left / rate)}" if rate > 0 and left else f"in {_duration(elapsed_s)}"
    return (
        f"utg: {status.done}/{status.total} {status.stage} | {rate:.1f}/s | {eta} | {status.errors} error(s) | "
        f"{status.cached} cached"
    )


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"


def usage_line(figures: Figures, settings: LimitSettings) -> str:
    """Tokens spent by this run's calls apart from those replayed from the cache (which cost nothing now)."""
    spent, saved = figures.spent, figures.replayed
    line = f"tokens: {spent.prompt_tokens} prompt + {spent.completion_tokens} completion this run"
    money = cost(spent, settings.price_input, settings.price_output)
    if money is not None:
        line += f", est. cost {money:.4f}"
    if saved.total:
        line += f" ({saved.total} more replayed from the cache)"
    if figures.judge_tokens:
        line += f"; LLM judge {figures.judge_tokens} tokens (not in the cost estimate or the budget)"
    return line


def dry_run(requests: Sequence[tuple[int, int]], settings: Settings) -> list[str]:
    """Lines for --utg-dry-run, from each request's (estimated prompt tokens, max completion tokens)."""
    upper = Usage(sum(p for p, _ in requests), sum(c for _, c in requests))
    lines = [
        f"utg dry run: {len(requests)} model request(s) would be made (cache hits excluded); nothing was called",
        f"  estimated tokens: {upper.prompt_tokens} prompt (about 4 characters per token) + at most "
        f"{upper.completion_tokens} completion ({settings.generation.max_tokens} per request)",
    ]
    limits = settings.limits
    money = cost(upper, limits.price_input, limits.price_output)
    if money is not None:
        lines.append(f"  estimated cost: at most {money:.4f}")
    if limits.budget_tokens is not None:
        verdict = "fits within" if upper.total <= limits.budget_tokens else "may exceed"
        lines.append(f"  worst case {upper.total} tokens {verdict} --utg-budget-tokens {limits.budget_tokens}")
    return lines


def _distribution(found: Distribution) -> str:
    return (
        f"mean {found.mean:.3f} [{found.ci_low:.3f}..{found.ci_high:.3f}]  "
        f"p10 {found.p10:.3f}  p50 {found.p50:.3f}  p90 {found.p90:.3f}"
    )


def summary(record: RunRecord, quiet: bool = False) -> list[str]:
    """The summary of a run, from its record alone: the live run and `utg report` print the same lines. Quiet, only
    the verdicts and what stopped the run."""
    header, figures = record.header, record.figures
    failure = [f"ERROR {record.failure}"] if record.failure else []
    verdicts = [gate_line(v) for v in record.verdicts] if record.probes else []
    if record.probes and header.settings.slices.gates:
        from utg_pytest.slicing import judge

        judged = judge(record, header.settings.gates, header.settings.drift.alpha)
        passed = sum(v.outcome == "pass" for v in judged)
        verdicts += [f"PASS {passed} of {len(judged)} slice gates (the others follow)" if passed < len(judged)
                     else f"PASS all {len(judged)} slice gates"]  # fmt: skip
        verdicts += [slice_gate_line(v) for v in judged if v.outcome != "pass"]
    if quiet:
        return failure + verdicts
    settings = header.settings
    return [
        *overview(record),
        *failure,
        *log_errors(header.log_errors, settings.logs.strict),
        *pii_lines(record),
        f"predictions: {figures.scored} scored ({figures.cached} from the cache), {figures.failed} without a "
        "prediction (model errors)",
        *([usage_line(figures, settings.limits)] if figures.results else []),
        *(f"  {metric:<9} {_distribution(found)}" for metric, found in figures.similarity.items()),
        *_references(figures),
        *plausibility_lines(figures.plausibility, header.label_agreement),
        *sweep_lines(figures.sweep),
        *gap_lines(figures.gaps),
        *slice_lines(record),
        *worst_lines(record),
        *verdicts,
    ]


def slice_lines(record: RunRecord) -> list[str]:
    """Each --utg-slice field's table: the figures per value, a small slice marked, none hidden."""
    from utg_pytest.scoring.scorers import LEXICAL, SEMANTIC
    from utg_pytest.slicing import SMALL_CONVERSATIONS, SMALL_PROBES, slices

    lines: list[str] = []
    for field in record.header.settings.slices.fields:
        found = slices(record, field)
        small = sum(s.small for s in found)
        note = (
            f"; * fewer than {SMALL_PROBES} predictions or {SMALL_CONVERSATIONS} conversations: too few to say much"
            if small
            else ""
        )
        lines.append(f"by {field} ({len(found)} slices{note}):")
        table = [["slice", "probes", "convs", "semantic [95% CI]", "lexical", "skill", "follow-up", "echo", "labels"]]
        for part in found:
            figures = part.figures
            semantic, lexical = figures.similarity.get(SEMANTIC), figures.similarity.get(LEXICAL)
            skill = figures.skill.get(SEMANTIC)
            followup = figures.plausibility.followup
            labels = sorted(figures.plausibility.labels.items(), key=lambda item: (-item[1], item[0]))[:2]
            table.append([
                f"{part.value}{' *' if part.small else ''}",
                str(part.probes),
                str(part.conversations),
                f"{semantic.mean:.3f} [{semantic.ci_low:.2f}..{semantic.ci_high:.2f}]" if semantic else "-",
                number(lexical.mean if lexical else None),
                number(skill.skill if skill else None, True),
                number(followup.value if followup else None),
                number(figures.echo.value if figures.echo else None),
                ", ".join(f"{label} {count}" for label, count in labels),
            ])  # fmt: skip
        widths = [max(len(row[c]) for row in table) for c in range(len(table[0]))]
        lines += [
            "  " + "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in table
        ]
    return lines


def worst_lines(record: RunRecord, shown: int = 3) -> list[str]:
    """The probes the model gets most wrong: where a reference predictor beat it by most on the same probe."""
    from utg_pytest.slicing import worst

    found = worst(record)
    if not found:
        return []
    count = f"{min(shown, len(found))} of {len(found)}"
    lines = [f"probes it gets most wrong (semantic similarity below the best reference on that probe), {count}:"]
    for miss in found[:shown]:
        probe = miss.probe
        last = probe.context_tail[-1].text if probe.context_tail else ""
        lines += [
            f"  {probe.probe_id}: {miss.score:.3f}, {miss.gap:+.3f} against the {miss.reference} reference",
            f"    assistant:  {textwrap.shorten(last, WIDTH - 16) or '(none)'}",
            f"    real:       {textwrap.shorten(probe.target, WIDTH - 16)}",
            f"    prediction: {textwrap.shorten(probe.result.prediction or '', WIDTH - 16)}",
        ]
    return lines


def slice_gate_line(verdict: SliceVerdict) -> str:
    status = {"pass": "PASS", "inconclusive": "INCONCLUSIVE", "fail": "FAIL"}[verdict.outcome]
    line = gate_line(verdict.verdict).split(": ", 1)[1]
    if verdict.verdict.passed:
        return f"{status} {verdict.name}: {line}"
    if verdict.p is not None and verdict.p_adjusted is not None:
        line += (
            f"; shortfall p {verdict.p:.3g}, Holm {verdict.p_adjusted:.3g} across the {verdict.family} {verdict.field} "
            "slices"
        )
    elif not verdict.verdict.passed and verdict.verdict.value is not None:
        line += "; too few conversations to test the shortfall"
    return f"{status} {verdict.name}: {line}"


def overview(record: RunRecord) -> list[str]:
    header = record.header
    settings = header.settings
    errors = sum(1 for e in header.log_errors if not e.skipped)
    skipped = sum(e.count for e in header.log_errors if e.skipped)
    strict = " (--utg-strict: each fails)" if settings.logs.strict and errors else ""
    strict += f"; {skipped} record(s) skipped on purpose" if skipped else ""
    shard = settings.logs.shard
    selected = f"shard {shard[0]}/{shard[1]}: {header.probes_in_shard}, " if shard else ""
    generation = settings.generation
    return [
        f"{header.probes_in_logs} probes from {len(header.logs)} log file(s), {selected}{len(record.probes)} "
        f"selected; {errors} invalid log line(s){strict}",
        accounting(record),
        f"model: {header.served_by or header.backend} | prompt {generation.prompt} | temperature "
        f"{generation.temperature:g} | max tokens {generation.max_tokens}"
        + "".join(f" | {name.replace('_', ' ')} {value:g}" for name, value in generation.decoding().items()),
    ]


def accounting(record: RunRecord) -> str:
    """Where every record read went, so that none can go missing unseen: each became a conversation (tested, without a
    probe, or not selected), an invalid record, or one left out on purpose."""
    header = record.header
    invalid = sum(1 for e in header.log_errors if not e.skipped)
    left_out = sum(e.count for e in header.log_errors if e.skipped)
    tested = len({p.probe_id.rsplit("::", 1)[0] for p in record.probes})
    no_probe = header.conversations - header.conversations_with_probes
    not_selected = header.conversations_with_probes - tested
    read = header.conversations + invalid + left_out
    return (
        f"records read: {read} = {header.conversations} conversation(s) ({tested} tested, {no_probe} without a probe: "
        f"no user turn answering an assistant turn, {not_selected} not selected) + {invalid} invalid + {left_out} "
        "left out on purpose"
    )


def pii_lines(record: RunRecord) -> list[str]:
    header = record.header
    if not header.pii:
        return []
    mode = header.settings.privacy.pii
    kinds = ", ".join(f"{kind} {count}" for kind, count in header.pii.items())
    outcome = "sent with placeholders" if mode == "redact" else "their probes were not sent"
    return [
        f"pii guard ({mode}): {sum(header.pii.values())} value(s) of personal data in {header.pii_conversations} "
        f"conversation(s) ({kinds}); {outcome}"
    ]


def log_errors(errors: Sequence[LogError], strict: bool, shown: int = 10) -> list[str]:
    skipped = [f"  skipped: {e.describe()}" for e in errors if e.skipped]
    errors = [e for e in errors if not e.skipped]
    if strict:
        return skipped
    lines = skipped + [f"  {log_error(e)}" for e in errors[:shown]]
    if len(errors) > shown:
        lines.append(f"  ... {len(errors) - shown} more invalid line(s)")
    return lines


def agreement_note(agreement: Agreement | None) -> str:
    """What a label rate is worth: how often this labeller agrees with a careful human reader."""
    if agreement is None:
        return "labeller agreement with a human reader not measured"
    return (
        f"labeller agrees with a careful human reader on {agreement.agreement:.1%} of {agreement.items} real "
        f"predictions (genuine follow-up precision {agreement.genuine_precision:.2f}, recall "
        f"{agreement.genuine_recall:.2f}; two readers agree on {READER_AGREEMENT:.1%})"
    )


def plausibility_lines(found: Plausibility, agreement: Agreement | None = None) -> list[str]:
    lines = []
    rate = found.followup
    if rate is not None:
        counted = (
            f"mean of per-probe shares over {rate.n} probes, bootstrap 95%"
            if rate.per_probe
            else f"{rate.count}/{rate.n}, Wilson 95%"
        )
        counts = ", ".join(f"{label} {count}" for label, count in found.labels.items())
        lines += [
            f"  plausibility ({found.labelled_by}): genuine follow-up rate {rate.value:.3f} "
            f"[{rate.ci_low:.3f}..{rate.ci_high:.3f}] ({counted})",
            f"    labels: {counts}",
            f"    {agreement_note(agreement)}",
        ]
    if found.mean_plausibility is not None:
        lines.append(
            f"    mean plausibility {found.mean_plausibility:.2f} of 5 over {found.rated} judged prediction(s)"
        )
    if found.unjudged:
        lines.append(f"    {found.unjudged} prediction(s) unjudged (left out of the rate), e.g. {found.first_unjudged}")
    return lines


def sweep_lines(rows: Sequence[SweepRow]) -> list[str]:
    if not rows:
        return []
    metrics = list(rows[0].scores)
    lines = [
        "temperature sweep (genuine follow-up rate with Wilson 95% interval):",
        "  | temperature | follow-up rate [95% CI] | " + " | ".join(metrics) + " | n | labels |",
        "  |---|---|" + "---|" * len(metrics) + "---|---|",
    ]
    for row in rows:
        rate = f"{row.followup:.3f} [{row.ci_low:.3f}..{row.ci_high:.3f}]" if row.followup is not None else "-"
        scores = " | ".join(f"{row.scores[m]:.3f}" if m in row.scores else "-" for m in metrics)
        labels = ", ".join(f"{label} {count}" for label, count in row.labels.items())
        errors = f" ({row.errors} errors)" if row.errors else ""
        lines.append(f"  | {row.temperature:g} | {rate} | {scores} | {row.n}{errors} | {labels} |")
    return lines


def gap_lines(gaps: Sequence[Gap]) -> list[str]:
    if not gaps:
        return []
    names = {FOLLOWUP: "follow-up rate"}
    lines = [f"grounding gap (shuffle control on {gaps[0].n} probes: real minus shuffled assistant turn, 95% CI):"]
    for gap in gaps:
        name = names.get(gap.metric, f"{gap.metric} similarity")
        lines.append(
            f"  {name:<20} real {gap.real:.3f}  shuffled {gap.perturbed:.3f}  "
            f"gap {gap.gap:+.3f} [{gap.ci_low:+.3f}..{gap.ci_high:+.3f}]" + ("" if gap.significant else "  (not > 0)")
        )
    if not any(gap.significant for gap in gaps):
        lines.append(
            "  no gap is significantly above zero: swapping the assistant's turn does not move the predictions, so "
            "these probes cannot see the model's interaction awareness"
        )
    return lines


def _references(figures: Figures) -> list[str]:
    """The model next to the reference predictors on the same probes, skill per metric, and the echo count."""
    reports = list(figures.skill.values())
    if not reports:
        return []
    lines = [f"  {'':<42} " + "  ".join(f"{r.metric:>8}" for r in reports)]
    lines.append(f"  {'model':<42} " + "  ".join(f"{r.model:>8.3f}" for r in reports))
    for name, help_text in REFERENCE_HELP.items():
        if name in reports[0].references:
            label = f"{name} ({help_text})"
            lines.append(f"  {label:<42} " + "  ".join(f"{r.references[name]:>8.3f}" for r in reports))
    for report in reports:
        lines.append(
            f"  skill ({report.metric}) {report.skill:+.3f} [{report.ci_low:+.3f}..{report.ci_high:+.3f}] "
            f"vs best reference {report.best}"
        )
    if figures.echo is not None:
        echo = figures.echo
        lines.append(
            f"  echo: {echo.count}/{echo.n} predictions ({echo.value:.1%}) near-copy the assistant's last message"
        )
    return lines


def number(value: float | None, signed: bool = False) -> str:
    """Three decimals; a value that rounds to zero is shown as zero, not as a "-0.000" fall."""
    if value is None:
        return "-"
    shown = round(value, 3) + 0.0
    return f"{shown:+.3f}" if signed else f"{shown:.3f}"


def drift_line(drift: Drift) -> str:
    """One drift gate's verdict, with everything a reader needs to trust it."""
    status = {"pass": "PASS", "fail": "FAIL", "inconclusive": "INCONCLUSIVE"}[drift.verdict]
    if drift.difference is None:
        return f"{status} drift::{drift.metric}: {drift.detail}"
    direction = "fall" if drift.higher_is_better else "rise"
    p = (
        f"p {drift.p:.3g}, Holm {drift.p_adjusted:.3g}"
        if drift.p is not None and drift.p_adjusted is not None
        else "p -"
    )
    line = (
        f"{status} drift::{drift.metric}: {drift.label} {number(drift.base)} -> {number(drift.new)}, change "
        f"{number(drift.difference, True)} (95% CI {number(drift.ci_low, True)}..{number(drift.ci_high, True)}), "
        f"{p}, n {drift.n}, minimum detectable {number(drift.mde)}, allowed {direction} {drift.margin:g}"
    )
    return line + (f"; {drift.detail}" if drift.detail else "")


def drift_lines(comparison: Comparison, baseline: str, shown: int = 3) -> list[str]:
    pairs = comparison.alignment
    lines = [
        f"drift against the baseline {baseline}: {len(pairs.pairs)} probes paired"
        + (f" ({pairs.by_fingerprint} by content)" if pairs.by_fingerprint else "")
        + f", {pairs.only_base} only in the baseline, {pairs.only_new} only in this run; paired bootstrap over "
        f"conversations, seed {comparison.seed}, alpha {comparison.alpha:g} (Holm)",
    ]
    if comparison.label_rates:
        rates = ", ".join(
            f"{label} {base:.2f}->{new:.2f}" for label, (base, new) in comparison.label_rates.items() if base or new
        )
        lines.append(f"  label rates (baseline->this run): {rates}")
    moved = [f"{a}->{b} {n}" for a, row in comparison.transitions.items() for b, n in row.items() if a != b]
    if moved:
        lines.append(f"  labels that changed: {', '.join(moved)}")
    worst = [r for r in comparison.regressions if r.change < 0][:shown]
    if worst:
        lines.append(f"  probes that regressed most (semantic similarity to the real turn), {len(worst)} of them:")
        for found in worst:
            lines += [
                f"    {found.probe_id}: {found.change:+.3f}",
                f"      real:      {textwrap.shorten(found.target, WIDTH - 17)}",
                f"      baseline:  {textwrap.shorten(found.base_prediction or '(none)', WIDTH - 17)}",
                f"      this run:  {textwrap.shorten(found.new_prediction or '(none)', WIDTH - 17)}",
            ]
    skill = comparison.skill
    if skill is not None and skill.difference is not None:
        lines.append(
            f"  {skill.label} (not gated: its change is the semantic change): {number(skill.base)} -> "
            f"{number(skill.new)}, change {number(skill.difference, True)} (95% CI {number(skill.ci_low, True)}.."
            f"{number(skill.ci_high, True)})"
        )
    return lines + [drift_line(drift) for drift in comparison.drifts]


def history_lines(records: Sequence[RunRecord], steps: Sequence[Comparison | str]) -> list[str]:
    """The gated figures of each saved run, oldest first, with the drift verdict against the run before it."""
    from utg_pytest.history import METRICS, row, step_verdict

    lines = [f"{len(records)} saved runs, oldest first; 'against previous' is the worst drift verdict of each run "
             "against the one before it"]  # fmt: skip
    headings = ["created", *(heading for _, heading in METRICS), "gates", "against previous"]
    table = [headings]
    for i, found in enumerate(records):
        figures = row(found)
        cells = [figures.created, *(number(getattr(figures, name)) for name, _ in METRICS)]
        table.append([*cells, "passed" if figures.passed else "FAILED", step_verdict(steps[i - 1]) if i else "-"])
    widths = [max(len(cells[c]) for cells in table) for c in range(len(headings))]
    lines += ["  " + "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True)).rstrip()
              for cells in table]  # fmt: skip
    return lines


def slice_drift_line(found: SliceDrift) -> str:
    """A drift gate's verdict on one slice, saying how wide its correction was."""
    line = drift_line(found.drift).replace(f"drift::{found.drift.metric}:", f"{found.name}:", 1)
    return f"{line} (Holm across the {found.family} metric and {found.field} slice tests)"
