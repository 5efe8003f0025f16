"""Lines for failures and the terminal summary, computed from records so the pytest hooks only print them."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING

from utg_pytest import stats
from utg_pytest.cost import Usage, cost
from utg_pytest.gates import METRICS
from utg_pytest.model import GateVerdict, LogError, Probe, ProbeResult
from utg_pytest.scoring.labels import GENUINE, LABELS
from utg_pytest.scoring.skill import echo_count, skill_report
from utg_pytest.settings import Settings

if TYPE_CHECKING:
    from utg_pytest.controls import Gap, SweepRow
    from utg_pytest.runner import Status

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


def probe_failure(probe: Probe, result: ProbeResult, thresholds: dict[str, float], shortfalls: Sequence[str]) -> str:
    lines = [f"{probe.id} ({probe.source}:{probe.line}): " + "; ".join(shortfalls)]
    shown = probe.context[-CONTEXT_TURNS_SHOWN:]
    if len(probe.context) > len(shown):
        lines.append(f"... {len(probe.context) - len(shown)} earlier message(s)")
    for message in shown:
        lines += _block(f"[{message.role}]", message.text)
    lines += _block("real user turn", probe.target)
    lines += _block("predicted turn", result.prediction or "")
    lines.append(
        "scores: "
        + ", ".join(f"{m} {result.scores[m]:.3f}" for m in METRICS)
        + " | thresholds: "
        + ", ".join(f"{m} >= {v:.3f}" for m, v in thresholds.items())
    )
    lines += [
        f"  {name:<6} would score " + ", ".join(f"{m} {scores[m]:.3f}" for m in METRICS) + f" ({REFERENCE_HELP[name]})"
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


def gate_failure(verdict: GateVerdict, option: str) -> str:
    return f"gate {verdict.name} failed: {gate_line(verdict)}\n(threshold set by {option})"


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


def usage_line(results: Sequence[ProbeResult], settings: Settings) -> str:
    """Tokens spent by this run's calls apart from those replayed from the cache (which cost nothing now)."""
    spent = sum((Usage(r.prompt_tokens, r.completion_tokens) for r in results if r.ok and not r.cached), Usage())
    saved = sum((Usage(r.prompt_tokens, r.completion_tokens) for r in results if r.ok and r.cached), Usage())
    line = f"tokens: {spent.prompt_tokens} prompt + {spent.completion_tokens} completion this run"
    money = cost(spent, settings.price_input, settings.price_output)
    if money is not None:
        line += f", est. cost {money:.4f}"
    if saved.total:
        line += f" ({saved.total} more replayed from the cache)"
    judged = sum(r.judge_tokens for r in results)
    if judged:
        line += f"; LLM judge {judged} tokens (not in the cost estimate or the budget)"
    return line


def dry_run(requests: Sequence[tuple[int, int]], settings: Settings) -> list[str]:
    """Lines for --utg-dry-run, from each request's (estimated prompt tokens, max completion tokens)."""
    upper = Usage(sum(p for p, _ in requests), sum(c for _, c in requests))
    lines = [
        f"utg dry run: {len(requests)} model request(s) would be made (cache hits excluded); nothing was called",
        f"  estimated tokens: {upper.prompt_tokens} prompt (about 4 characters per token) + at most "
        f"{upper.completion_tokens} completion ({settings.max_tokens} per request)",
    ]
    money = cost(upper, settings.price_input, settings.price_output)
    if money is not None:
        lines.append(f"  estimated cost: at most {money:.4f}")
    if settings.budget_tokens is not None:
        verdict = "fits within" if upper.total <= settings.budget_tokens else "may exceed"
        lines.append(f"  worst case {upper.total} tokens {verdict} --utg-budget-tokens {settings.budget_tokens}")
    return lines


def _distribution(values: Sequence[float]) -> str:
    low, high = stats.bootstrap_mean_ci(values)
    return (
        f"mean {stats.mean(values):.3f} [{low:.3f}..{high:.3f}]  "
        f"p10 {stats.percentile(values, 10):.3f}  p50 {stats.percentile(values, 50):.3f}  "
        f"p90 {stats.percentile(values, 90):.3f}"
    )


def summary(
    settings: Settings,
    backend: str | None,
    files: int,
    probes: int,
    selected: int,
    errors: Sequence[LogError],
    results: Sequence[ProbeResult],
    verdicts: Sequence[GateVerdict],
    failure: str | None,
    sweep: Sequence[SweepRow] = (),
    gaps: Sequence[Gap] = (),
) -> list[str]:
    lines = [
        f"{probes} probes from {files} log file(s), {selected} selected; "
        f"{len(errors)} invalid log line(s)" + (" (--utg-strict: each fails)" if settings.strict and errors else ""),
        f"model: {backend or 'not started'} | prompt {settings.prompt} | temperature {settings.temperature:g} | "
        f"max tokens {settings.max_tokens}",
    ]
    if failure:
        lines.append(f"ERROR {failure}")
    if not settings.strict:
        lines += [f"  {log_error(e)}" for e in errors[:10]]
        if len(errors) > 10:
            lines.append(f"  ... {len(errors) - 10} more invalid line(s)")
    scored = [r for r in results if r.ok]
    failed = len(results) - len(scored)
    cached = sum(r.cached for r in scored)
    lines.append(
        f"predictions: {len(scored)} scored ({cached} from the cache), {failed} without a prediction (model errors)"
    )
    if results:
        lines.append(usage_line(results, settings))
    for metric in METRICS:
        values = [r.scores[metric] for r in scored]
        if values:
            lines.append(f"  {metric:<9} {_distribution(values)}")
    lines += _references(scored)
    lines += plausibility_lines(scored)
    lines += sweep_lines(sweep)
    lines += gap_lines(gaps)
    lines += [gate_line(v) for v in verdicts]
    return lines


def plausibility_lines(scored: Sequence[ProbeResult]) -> list[str]:
    labels = [r.label for r in scored if r.label is not None]
    unjudged = [r for r in scored if r.unjudged]
    lines = []
    if labels:
        genuine = labels.count(GENUINE)
        low, high = stats.wilson_interval(genuine, len(labels))
        counts = ", ".join(f"{label} {labels.count(label)}" for label in LABELS if labels.count(label))
        lines += [
            f"  plausibility ({scored[0].labelled_by}): genuine follow-up rate {genuine / len(labels):.3f} "
            f"[{low:.3f}..{high:.3f}] ({genuine}/{len(labels)}, Wilson 95%)",
            f"    labels: {counts}",
        ]
    ratings = [r.plausibility for r in scored if r.plausibility is not None]
    if ratings:
        lines.append(f"    mean plausibility {stats.mean(ratings):.2f} of 5 over {len(ratings)} judged prediction(s)")
    if unjudged:
        lines.append(f"    {len(unjudged)} prediction(s) unjudged (left out of the rate), e.g. {unjudged[0].unjudged}")
    return lines


def sweep_lines(rows: Sequence[SweepRow]) -> list[str]:
    if not rows:
        return []
    lines = [
        "temperature sweep (genuine follow-up rate with Wilson 95% interval):",
        "  | temperature | follow-up rate [95% CI] | semantic | lexical | n | labels |",
        "  |---|---|---|---|---|---|",
    ]
    for row in rows:
        rate = f"{row.followup:.3f} [{row.ci_low:.3f}..{row.ci_high:.3f}]" if row.followup is not None else "-"
        semantic = f"{row.semantic:.3f}" if row.semantic is not None else "-"
        lexical = f"{row.lexical:.3f}" if row.lexical is not None else "-"
        labels = ", ".join(f"{label} {count}" for label, count in row.labels.items())
        errors = f" ({row.errors} errors)" if row.errors else ""
        lines.append(f"  | {row.temperature:g} | {rate} | {semantic} | {lexical} | {row.n}{errors} | {labels} |")
    return lines


def gap_lines(gaps: Sequence[Gap]) -> list[str]:
    if not gaps:
        return []
    names = {"semantic": "semantic similarity", "lexical": "lexical similarity", "followup": "follow-up rate"}
    lines = [f"grounding gap (shuffle control on {gaps[0].n} probes: real minus shuffled assistant turn, 95% CI):"]
    for gap in gaps:
        lines.append(
            f"  {names[gap.metric]:<20} real {gap.real:.3f}  shuffled {gap.perturbed:.3f}  "
            f"gap {gap.gap:+.3f} [{gap.ci_low:+.3f}..{gap.ci_high:+.3f}]" + ("" if gap.significant else "  (not > 0)")
        )
    if not any(gap.significant for gap in gaps):
        lines.append(
            "  no gap is significantly above zero: swapping the assistant's turn does not move the predictions, so "
            "these probes cannot see the model's interaction awareness"
        )
    return lines


def _references(scored: Sequence[ProbeResult]) -> list[str]:
    """The model next to the reference predictors on the same probes, skill per metric, and the echo count."""
    reports = [r for r in (skill_report(scored, metric) for metric in METRICS) if r is not None]
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
    echoes, n = echo_count(scored)
    lines.append(f"  echo: {echoes}/{n} predictions ({echoes / n:.1%}) near-copy the assistant's last message")
    return lines
