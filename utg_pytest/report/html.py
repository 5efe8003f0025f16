"""A run, and its drift against a baseline, as one self-contained HTML page: inline CSS and SVG, no script and no
external resource, so it opens offline, as a CI artifact or from an e-mail, and loads nothing from anywhere.

Every text is escaped with html.escape: log text is untrusted and a prediction may well contain markup. The verdicts
come from the same helpers as the Markdown report, so both say the same thing.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Sequence

from utg_pytest import slicing
from utg_pytest.baseline import Comparison, Pair
from utg_pytest.controls import FOLLOWUP
from utg_pytest.model import ProbeResult
from utg_pytest.record import ProbeRecord, RunRecord
from utg_pytest.report import plots
from utg_pytest.report.markdown import (
    SLICE_CAP,
    SLICE_DRIFT_HEAD,
    SLICE_HEAD,
    SMALL,
    drift_numbers,
    drift_verdict,
    facts,
    gate_names,
    interval,
    measured,
    named,
    outcome,
    pairing,
    run_passed,
    shorten,
    shortfall,
    shown_drifts,
    slice_cells,
    slice_drift_cells,
    slice_drift_intro,
    slice_drifts,
    slice_note,
    slice_verdicts,
    slices_intro,
    worst,
)
from utg_pytest.report.terminal import REFERENCE_HELP, agreement_note, number
from utg_pytest.scoring.labels import LABELS
from utg_pytest.scoring.scorers import SEMANTIC

CELL = 300
"""Characters of one log text in a table cell."""
MESSAGE = 2000
"""Characters of one message in a transcript."""
FAILING_SHOWN = 50
WORST_SHOWN = 50
"""Transcripts of the probes it gets most wrong."""
CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#111827;margin:0;
background:#f9fafb}
main{max-width:1160px;margin:0 auto;padding:16px 20px 40px}
h1{font-size:22px;margin:8px 0}h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #e5e7eb;padding-bottom:4px}
h3{font-size:15px;margin:14px 0 6px}
section{margin-bottom:8px}
.banner{padding:10px 14px;border-radius:6px;font-weight:600;margin:8px 0}
.banner.pass{background:#dcfce7;color:#14532d}.banner.fail{background:#fee2e2;color:#7f1d1d}
.banner .warned{font-weight:400;color:#78350f}
.error{background:#fee2e2;border-left:4px solid #dc2626;padding:8px 12px;margin:8px 0;white-space:pre-wrap}
.note{color:#4b5563}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:8px 0}
dl.meta dt{color:#4b5563}dl.meta dd{margin:0;overflow-wrap:anywhere}
table{border-collapse:collapse;margin:6px 0;background:#fff;display:block;max-width:100%;overflow-x:auto}
th,td{border:1px solid #e5e7eb;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f3f4f6;font-weight:600}
#gates td:last-child{min-width:220px}#drift td:last-child{min-width:190px}#drift{font-size:13px}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
tr.verdict-pass td:nth-child(2){background:#dcfce7}tr.verdict-fail td:nth-child(2){background:#fee2e2}
tr.verdict-inconclusive td:nth-child(2){background:#fef3c7}
table.sliced{font-size:13px}table.sliced td:last-child{min-width:190px}table.sliced tr td:nth-child(2){background:none}
table.sliced tr.verdict-pass td:nth-child(3){background:#dcfce7}
table.sliced tr.verdict-fail td:nth-child(3){background:#fee2e2}
table.sliced tr.verdict-inconclusive td:nth-child(3){background:#fef3c7}
tr.small td{color:#6b7280}
.badge{font-weight:600}.badge.pass{color:#15803d}.badge.fail{color:#b91c1c}.badge.inconclusive{color:#b45309}.badge.reported{color:#475569}
table.heat td{text-align:center;min-width:64px}
figure{margin:8px 0;background:#fff;border:1px solid #e5e7eb;padding:6px;display:inline-block;max-width:100%}
svg.plot{display:block;max-width:100%;height:auto}
.regression,.miss{background:#fff;border:1px solid #e5e7eb;border-radius:6px;padding:8px 12px;margin:10px 0}
.regression h3,.miss h3{margin:2px 0 8px;overflow-wrap:anywhere}.miss .against{font-weight:400;color:#4b5563}
.transcript{list-style:none;margin:0;padding:0}
.transcript li{display:grid;grid-template-columns:170px 1fr;gap:8px;margin:3px 0;padding:4px 8px;border-radius:4px}
.transcript .role{font-weight:600;color:#374151}.transcript .text{white-space:pre-wrap;overflow-wrap:anywhere}
.msg-user{background:#eff6ff}.msg-assistant{background:#f3f4f6}.msg-system,.msg-tool{background:#fafafa;color:#4b5563}
.real{background:#dcfce7}.base{background:#fef9c3}.new{background:#fee2e2}.ref{background:#f3f4f6;color:#4b5563}
.flex{display:flex;flex-wrap:wrap;gap:16px;align-items:flex-start}
"""


def _e(text: str | None, cap: int = CELL) -> str:
    if text is None:
        return "<em>(none)</em>"
    return html.escape(shorten(text, cap)) if text else "<em>(empty)</em>"


def _row(cells: Iterable[str], numeric: Sequence[int] = (), kind: str = "", extra: str = "") -> str:
    classes = " ".join(c for c in (f"verdict-{kind}" if kind else "", extra) if c)
    cls = f' class="{classes}"' if classes else ""
    tds = "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(cells))
    return f"<tr{cls}>{tds}</tr>"


def _table(head: Sequence[str], rows: Sequence[str], id_: str = "", cls: str = "") -> str:
    attributes = (f' id="{id_}"' if id_ else "") + (f' class="{cls}"' if cls else "")
    heads = "".join(f"<th>{h}</th>" for h in head)
    return f"<table{attributes}><thead><tr>{heads}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _badge(verdict: str) -> str:
    return f'<span class="badge {verdict}">{verdict}</span>'


def _figure(svg: str | None) -> str:
    return f"<figure>{svg}</figure>" if svg else ""


def _names(names: list[str]) -> str:
    shown, more = named(names)
    return html.escape(", ".join(shown)) + (f" and {more} more" if more else "")


def _banner(record: RunRecord, comparison: Comparison | str | None) -> str:
    failed, warned = outcome(record, comparison)
    text = f"utg failed: {_names(failed)}" if failed else "utg passed"
    if warned:
        text += f' <span class="warned">(inconclusive: {_names(warned)})</span>'
    return f'<div class="banner {"fail" if failed else "pass"}" id="verdict">{text}</div>'


def _metadata(record: RunRecord) -> str:
    body = "".join(f"<dt>{html.escape(name)}</dt><dd>{_e(value, MESSAGE)}</dd>" for name, value in facts(record))
    return f'<section id="metadata"><dl class="meta">{body}</dl></section>'


def _errors(record: RunRecord, comparison: Comparison | str | None) -> str:
    found = [f"the run failed: {record.failure}"] if record.failure else []
    if isinstance(comparison, str):
        found.append(f"drift not judged: {comparison}")
    notes = "" if record.probes else '<p class="note">No probes in this run: every gate fails (no evidence).</p>'
    return "".join(f'<div class="error">{_e(text, MESSAGE)}</div>' for text in found) + notes


def _gates(record: RunRecord, comparison: Comparison | None) -> str:
    rows = [
        _row(
            [
                html.escape(v.name),
                _badge("pass" if v.passed else "fail"),
                html.escape(v.label),
                measured(v),
                interval(v.ci_low, v.ci_high),
                html.escape(f"{v.comparison} {v.threshold:.3f}"),
                str(v.n),
                html.escape(v.detail),
            ],
            numeric=(3, 4, 6),
            kind="pass" if v.passed else "fail",
        )
        for v in record.verdicts
    ]
    head = ["gate", "verdict", "measured", "value", "95% CI", "threshold", "n", "note"]
    parts = ["<h2>Gate verdicts</h2>", _table(head, rows, "gates")]
    if comparison is not None:
        inconclusive = record.header.settings.drift.inconclusive
        rows = []
        for d in shown_drifts(comparison):
            verdict = drift_verdict(d, inconclusive)
            cells = [
                f"drift::{d.metric}",
                _badge(verdict),
                *drift_numbers(d),
                html.escape(d.detail),
            ]
            rows.append(_row(cells, numeric=(2, 3, 4, 5, 6, 7, 8, 9, 10), kind=verdict))
        head = ["drift gate", "verdict", "baseline", "candidate", "change", "95% CI", "p (Holm)", "MDE", "allowed", "n"]
        parts += ["<h3>Drift against the baseline</h3>", _table([*head, "probes needed", "note"], rows, "drift")]
    return '<section id="gate-verdicts">' + "".join(parts) + "</section>"


def _scores(record: RunRecord) -> str:
    figures = record.figures
    parts = ["<h2>Scores beside the reference predictors</h2>"]
    if not figures.scored:
        return '<section id="scores">' + parts[0] + '<p class="note">No probe produced a prediction.</p></section>'
    parts.append(_figure(plots.distributions([p.result for p in record.probes], record.header.metrics)))
    reports = list(figures.skill.values())
    if reports:
        names = [name for name in REFERENCE_HELP if name in reports[0].references]
        rows = [_row(["model", *(number(r.model) for r in reports)], numeric=range(1, 1 + len(reports)))]
        rows += [
            _row(
                [f"{n} ({REFERENCE_HELP[n]})", *(number(r.references[n]) for r in reports)], range(1, 1 + len(reports))
            )
            for n in names
        ]
        rows.append(
            _row(
                [
                    "skill vs best reference",
                    *(f"{r.skill:+.3f} [{r.ci_low:+.3f}..{r.ci_high:+.3f}] vs {r.best}" for r in reports),
                ],
                range(1, 1 + len(reports)),
            )
        )
        parts.append(_table(["", *(html.escape(r.metric) for r in reports)], rows, "skill"))
    else:
        parts.append('<p class="note">No reference predictor scores in this record, so no skill.</p>')
    if figures.echo is not None:
        echo = figures.echo
        parts.append(
            f"<p>echo: {echo.count}/{echo.n} predictions ({echo.value:.1%}) near-copy the assistant's last message</p>"
        )
    plausibility = figures.plausibility
    if plausibility.labels:
        counts = ", ".join(f"{label} {count}" for label, count in plausibility.labels.items())
        parts.append(f"<p>labels ({html.escape(plausibility.labelled_by)}): {html.escape(counts)}</p>")
        note = agreement_note(record.header.label_agreement)
        parts.append(f'<p class="note">{html.escape(note)}</p>')
    return '<section id="scores">' + "".join(parts) + "</section>"


def _heat(count: int, most: int) -> str:
    if not count:
        return '<td class="num">·</td>'
    alpha = 0.15 + 0.85 * count / most
    ink = "#fff" if alpha > 0.6 else "#111827"
    return f'<td class="num" style="background:rgba(37,99,235,{alpha:.2f});color:{ink}">{count}</td>'


def _rates(comparison: Comparison) -> str:
    rows = [
        _row([label, f"{b:.1%}", f"{n:.1%}", f"{n - b:+.1%}"], numeric=(1, 2, 3))
        for label, (b, n) in comparison.label_rates.items()
        if b or n
    ]
    if not rows:
        return ""
    return "<div><h3>Label rates</h3>" + _table(["label", "baseline", "candidate", "change"], rows, "rates") + "</div>"


def _transitions(comparison: Comparison) -> str:
    """Baseline label against candidate label, shaded by count, so the labels that moved stand out."""
    transitions = comparison.transitions
    if not transitions:
        return ""
    used = [a for a in LABELS if a in transitions or any(a in row for row in transitions.values())]
    most = max(n for row in transitions.values() for n in row.values())
    rows = [
        f"<tr><th>{a}</th>{''.join(_heat(transitions.get(a, {}).get(b, 0), most) for b in used)}</tr>" for a in used
    ]
    table = _table(["baseline \\ candidate", *used], rows, "transitions", "heat")
    return f"<h3>Label transitions (probes)</h3>{table}"


def _message(kind: str, who: str, text: str | None) -> str:
    role = f'<span class="role">{html.escape(who)}</span>'
    return f'<li class="{kind}">{role}<span class="text">{_e(text, MESSAGE)}</span></li>'


def _context(probe: ProbeRecord) -> list[str]:
    """The transcript's lines up to the real turn: the context's tail, after a note of what came before it."""
    shown = probe.context_tail
    earlier = probe.context_messages - len(shown)
    items = [f'<li class="note"><span></span><span>… {earlier} earlier message(s)</span></li>'] if earlier > 0 else []
    items += [_message(f"msg-{m.role}", m.role, m.text) for m in shown]
    items.append(_message("real", "real user turn", probe.target))
    return items


def _transcript(pair: Pair, change: float) -> str:
    items = _context(pair.new)
    for kind, name, result in (("base", "baseline", pair.base.result), ("new", "candidate", pair.new.result)):
        items.append(_message(kind, f"{name} ({number(result.scores.get(SEMANTIC))})", result.prediction))
    title = f'{_e(pair.probe_id)} <span class="badge fail">{change:+.3f}</span>'
    return f'<article class="regression"><h3>{title}</h3><ol class="transcript">{"".join(items)}</ol></article>'


def _slices(record: RunRecord, comparison: Comparison | None) -> str:
    """Per --utg-slice field, its table and plot; then the slice gates and slice drift gates, when they ran."""
    parts = []
    threshold = record.header.settings.gates.min_similarity
    semantic = record.figures.similarity.get(SEMANTIC)
    for index, field in enumerate(record.header.settings.slices.fields):
        found = slicing.slices(record, field)
        if not found:
            continue
        rows = [
            _row(
                [_e(p.value, SLICE_CAP) + (" *" if p.small else ""), *(html.escape(c) for c in slice_cells(p))],
                numeric=range(1, len(SLICE_HEAD)),
                extra="small" if p.small else "",
            )
            for p in found
        ]
        table = _table(["slice", *SLICE_HEAD], rows, f"slices-{index}")
        plot = plots.slices(f"slices-{index}", field, found, semantic.mean if semantic else None, threshold)
        note = f'<p class="note">* {html.escape(SMALL)}.</p>' if any(p.small for p in found) else ""
        parts.append(f'<h3>By {_e(field, SLICE_CAP)}</h3><div class="flex">{table}{_figure(plot)}</div>{note}')
    judged = slice_verdicts(record)
    if judged:
        rows = [
            _row(
                [
                    html.escape(v.gate),
                    _e(f"{v.field}={v.value}", SLICE_CAP),
                    _badge(v.outcome),
                    measured(v.verdict),
                    html.escape(f"{v.verdict.comparison} {v.verdict.threshold:.3f}"),
                    interval(v.verdict.ci_low, v.verdict.ci_high),
                    *shortfall(v),
                    str(v.family),
                    html.escape(slice_note(v)),
                ],
                numeric=(3, 5, 6, 7, 8),
                kind=v.outcome,
            )
            for v in judged
        ]
        head = ["gate", "slice", "verdict", "value", "threshold", "95% CI", "shortfall p", "Holm p", "family size"]
        parts += [
            f"<h3>Slice gates</h3><p>{html.escape(slices_intro(record))}</p>",
            _table([*head, "note"], rows, "slice-gates", "sliced"),
        ]
    drifts = slice_drifts(record, comparison)
    if drifts:
        inconclusive = record.header.settings.drift.inconclusive
        rows = []
        for d in drifts:
            verdict = drift_verdict(d.drift, inconclusive)
            cells = [
                html.escape(f"drift::{d.drift.metric}"),
                _e(f"{d.field}={d.value}", SLICE_CAP),
                _badge(verdict),
                *slice_drift_cells(d),
                html.escape(d.drift.detail),
            ]
            rows.append(_row(cells, numeric=range(3, 3 + len(SLICE_DRIFT_HEAD)), kind=verdict))
        head = ["drift gate", "slice", "verdict", *SLICE_DRIFT_HEAD, "note"]
        parts += [
            f"<h3>Slice drift gates</h3><p>{html.escape(slice_drift_intro(drifts))}</p>",
            _table(head, rows, "slice-drift", "sliced"),
        ]
    if not parts:
        return ""
    intro = (
        f'<p class="note">The run\'s figures on each value of each --utg-slice field, {slicing.NONE} for the '
        "conversations without it: a mean over every probe can hide a model that got much worse on one kind of "
        "conversation.</p>"
    )
    return f'<section id="slices"><h2>Where the model struggles: slices</h2>{intro}{"".join(parts)}</section>'


def _miss(miss: slicing.Miss) -> str:
    probe = miss.probe
    items = _context(probe)
    items.append(_message("new", f"prediction ({number(miss.score)})", probe.result.prediction))
    help_text = REFERENCE_HELP.get(miss.reference)
    what = f": {help_text}" if help_text else ""
    items.append(_message("ref", "best reference", f"{miss.reference} {number(miss.reference_score)}{what}"))
    where = ", ".join(f"{field}={shorten(value, SLICE_CAP)}" for field, value in probe.slices.items())
    against = f"{number(miss.score)} against the {miss.reference} reference's {number(miss.reference_score)}"
    title = (
        f'{_e(probe.probe_id)} <span class="badge fail">{miss.gap:+.3f}</span> '
        f'<span class="against">{html.escape(against)}{"; " + html.escape(where) if where else ""}</span>'
    )
    return f'<article class="miss"><h3>{title}</h3><ol class="transcript">{"".join(items)}</ol></article>'


def _misses(record: RunRecord) -> str:
    found = slicing.worst(record)
    if not found:
        return ""
    articles = "".join(_miss(m) for m in found[:WORST_SHOWN])
    left = len(found) - WORST_SHOWN
    note = f'<p class="note">{left} more probe(s) below the best reference left out.</p>' if left > 0 else ""
    intro = (
        "<p class=\"note\">Where a reference predictor (a parrot: the assistant's last message, the user's previous "
        "one, another conversation's turn) came closer to the real turn than the model did, ranked by how far the "
        "model's semantic similarity falls below the best reference's on that probe.</p>"
    )
    return f'<section id="worst"><h2>Probes it gets most wrong ({len(found)})</h2>{intro}{articles}{note}</section>'


def _comparison(record: RunRecord, comparison: Comparison, top: int) -> str:
    pairs = comparison.alignment
    by_id = {pair.probe_id: pair for pair in pairs.pairs}
    fell = worst(comparison, top)
    summary = f"<p>{html.escape(pairing(record, comparison))}</p>"
    transcripts = "".join(_transcript(by_id[r.probe_id], r.change) for r in fell)
    regressions = (
        f"<h3>The {len(fell)} probes whose semantic similarity fell most</h3>{transcripts}"
        if fell
        else '<p class="note">No paired probe lost semantic similarity to the real turn.</p>'
    )
    return (
        '<section id="comparison"><h2>Baseline against candidate</h2>'
        + summary
        + f'<div class="flex">{_figure(plots.paired(pairs.pairs))}{_rates(comparison)}</div>'
        + _transitions(comparison)
        + f'<section id="regressions">{regressions}</section></section>'
    )


def _controls(record: RunRecord) -> str:
    figures = record.figures
    parts = []
    if figures.sweep:
        metrics = list(figures.sweep[0].scores)
        rows = [
            _row(
                [
                    f"{row.temperature:g}",
                    number(row.followup),
                    interval(row.ci_low, row.ci_high),
                    *(number(row.scores.get(m)) for m in metrics),
                    str(row.n),
                    str(row.errors),
                    html.escape(", ".join(f"{k} {v}" for k, v in row.labels.items())),
                ],
                numeric=range(0, 5 + len(metrics)),
            )
            for row in figures.sweep
        ]
        head = ["temperature", "follow-up rate", "95% CI", *metrics, "n", "errors", "labels"]
        table = _table(head, rows, "sweep-rows")
        parts.append(
            f'<section id="sweep"><h2>Temperature sweep</h2><div class="flex">{table}'
            f"{_figure(plots.sweep(figures.sweep))}</div></section>"
        )
    if figures.gaps:
        rows = [
            _row(
                [
                    "follow-up rate" if g.metric == FOLLOWUP else f"{g.metric} similarity",
                    number(g.real),
                    number(g.perturbed),
                    number(g.gap, True),
                    interval(g.ci_low, g.ci_high, True),
                    str(g.n),
                    "yes" if g.significant else "no",
                ],
                numeric=(1, 2, 3, 4, 5),
            )
            for g in figures.gaps
        ]
        table = _table(["metric", "real", "shuffled", "gap", "95% CI", "n", "above zero"], rows, "gaps")
        parts.append(
            f'<section id="grounding"><h2>Grounding gap (shuffle control)</h2><div class="flex">{table}'
            f"{_figure(plots.gaps(figures.gaps))}</div></section>"
        )
    return "".join(parts)


def _history(record: RunRecord, history: Sequence[RunRecord]) -> str:
    runs = [*history, record]
    names = gate_names(runs)
    labels = [*(str(i) for i in range(1, len(runs))), "this run"]
    rows = []
    for label, run in zip(labels, runs, strict=True):
        verdicts = {v.name: v for v in run.verdicts}
        cells = [
            f"{number(verdicts[n].value)} {_badge('pass' if verdicts[n].passed else 'fail')}" if n in verdicts else "-"
            for n in names
        ]
        ok, note = run_passed(run)
        passed = _badge("pass" if ok else "fail") + html.escape(note)
        rows.append(
            _row([label, _e(run.header.created), str(len(run.probes)), *cells, passed], range(1, 3 + len(names)))
        )
    table = _table(["run", "created", "probes", *names, "passed"], rows, "history-rows")
    trend = _figure(plots.trend([run.verdicts for run in runs], labels))
    return f'<section id="history"><h2>History (oldest first)</h2>{table}{trend}</section>'


def _failing(probes: Sequence[ProbeRecord]) -> str:
    failing = [p for p in probes if not p.result.ok or p.passed is False]
    if not failing:
        return ""
    rows = [
        _row([_e(p.probe_id), _e(p.target), _e(p.result.prediction), _scores_text(p.result), _error(p.result)])
        for p in failing[:FAILING_SHOWN]
    ]
    left = len(failing) - FAILING_SHOWN
    note = f'<p class="note">{left} more failing probe(s) left out.</p>' if left > 0 else ""
    table = _table(["probe", "real user turn", "prediction", "scores", "error"], rows, "failing")
    return f'<section id="failing-probes"><h2>Failing probes ({len(failing)})</h2>{table}{note}</section>'


def _scores_text(result: ProbeResult) -> str:
    return html.escape(", ".join(f"{m} {v:.3f}" for m, v in result.scores.items())) or "-"


def _error(result: ProbeResult) -> str:
    return _e(result.error) if result.error else ""


def render(
    record: RunRecord,
    comparison: Comparison | str | None = None,
    history: Sequence[RunRecord] = (),
    top: int = 20,
) -> str:
    """`comparison` is the drift of `record` against a baseline, or why the two could not be compared; `history`
    holds earlier runs, oldest first, without `record`; `top` is how many regressions are shown with transcripts (the
    probes it gets most wrong are shown up to WORST_SHOWN)."""
    compared = comparison if isinstance(comparison, Comparison) else None
    title = html.escape(f"utg report: {record.header.served_by or record.header.backend}")
    body = [
        f"<h1>{title}</h1>",
        _banner(record, comparison),
        _errors(record, comparison),
        _metadata(record),
        _gates(record, compared),
        _slices(record, compared),
        _scores(record),
        _comparison(record, compared, top) if compared is not None else "",
        _controls(record),
        _history(record, history) if history else "",
        _misses(record),
        _failing(record.probes),
    ]
    # The empty icon keeps a browser that is served the page over HTTP from asking for /favicon.ico.
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<link rel="icon" href="data:,"><title>{title}</title><style>{CSS}</style></head>'
        f"<body><main>{''.join(body)}</main></body></html>\n"
    )
