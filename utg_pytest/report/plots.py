"""The HTML report's plots, drawn with matplotlib into inline SVG strings.

matplotlib is imported only when a plot is drawn, so importing the plugin stays cheap, and only through its
object-oriented API, inside `rc_context`: a report never touches the process's global matplotlib state (no pyplot, no
backend switch, no rcParams left changed). Each SVG is made fit to be inlined next to others in one HTML page: no XML
prolog, metadata or namespace URLs (the HTML parser supplies the namespaces), and every id prefixed with the plot's
name, since matplotlib numbers its ids from 1 in every figure. Log text drawn in a plot (a slice's value) is flattened,
capped and kept out of mathtext; matplotlib escapes it as it writes the SVG.
"""

from __future__ import annotations

import html
import io
import re
import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from utg_pytest import stats
from utg_pytest.baseline import Pair
from utg_pytest.controls import FOLLOWUP, Gap, SweepRow
from utg_pytest.model import GateVerdict, ProbeResult
from utg_pytest.scoring.references import REFERENCES
from utg_pytest.scoring.scorers import SEMANTIC
from utg_pytest.slicing import Slice

if TYPE_CHECKING:
    from matplotlib.figure import Figure

MODEL = "#2563eb"
REFERENCE = "#9ca3af"
WORSE = "#dc2626"
BETTER = "#2563eb"
PASS = "#16a34a"
_PROLOG = re.compile(r"\A.*?(?=<svg\b)", re.S)
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.S)
_NAMESPACES = re.compile(r'\s+xmlns(?::\w+)?="[^"]*"')
_IDS = re.compile(r'(\bid="|\bhref="#|url\(#)')
LABEL = 32
"""Characters of log text in a tick label."""


def _spread(value: float, low: float, high: float) -> list[list[float]]:
    """An interval as errorbar's lengths below and above the value. A bootstrap bound can miss the mean by a rounding
    error (seven scores of 0.1), and matplotlib refuses a negative length."""
    return [[max(0.0, value - low)], [max(0.0, high - value)]]


def _label(text: str) -> str:
    flat = " ".join(text.split())
    return flat if len(flat) <= LABEL else flat[: LABEL - 1].rstrip() + "…"


def _svg(name: str, size: tuple[float, float], draw: Callable[[Figure], None], label: str = "") -> str:
    """The figure `draw` fills, as an inline SVG; the fixed hash salt makes the output the same on every run. `name`
    (letters, digits, dashes) prefixes the ids; `label`, by default the name, is what a screen reader says. The text is
    left to the browser to draw (svg.fonttype none), so a glyph DejaVu Sans lacks (in log text) only makes matplotlib's
    layout approximate: its warning is not worth one."""
    import matplotlib
    from matplotlib.figure import Figure

    with matplotlib.rc_context(
        {
            "svg.fonttype": "none",
            "svg.hashsalt": f"utg-{name}",
            "font.family": "sans-serif",
            "font.sans-serif": ["DejaVu Sans"],
            "font.size": 9.0,
            "axes.spines.top": False,
            "axes.spines.right": False,
            "axes.grid": True,
            "grid.color": "#e5e7eb",
            "axes.axisbelow": True,
        }
    ):
        figure = Figure(figsize=size, layout="constrained")
        buffer = io.StringIO()
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", r"Glyph \d+ .* missing from font", UserWarning)
            draw(figure)
            figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = _METADATA.sub("", _PROLOG.sub("", buffer.getvalue(), count=1), count=1)
    text = _NAMESPACES.sub("", text)
    text = _IDS.sub(lambda found: f"{found.group(1)}{name}-", text)
    aria = html.escape(label or name)
    return text.replace("<svg ", f'<svg class="plot" role="img" aria-label="{aria}" ', 1).strip()


def distributions(results: Sequence[ProbeResult], metrics: Sequence[str]) -> str | None:
    """Per metric, the model's scores beside each reference predictor's on the same probes (the skill's terms); None
    without predictions. References that some probe lacks are left out, as skill leaves them out. The boxes are drawn
    by hand: matplotlib's boxplot reads every rcParam, which imports pyplot to resolve the backend."""
    scored = [r for r in results if r.ok]
    if not scored or not metrics:
        return None
    names = [name for name in REFERENCES if all(name in r.references for r in scored)]
    groups = ["model", *names]

    def draw(figure: Figure) -> None:
        axes = figure.subplots(1, len(metrics), sharey=True, squeeze=False)[0]
        for ax, metric in zip(axes, metrics, strict=True):
            columns = [[r.scores[metric] for r in scored]] + [[r.references[n][metric] for r in scored] for n in names]
            for x, (group, values) in enumerate(zip(groups, columns, strict=True)):
                p10, q1, median, q3, p90 = (stats.percentile(values, q) for q in (10, 25, 50, 75, 90))
                ax.vlines(x, p10, p90, color="#374151", linewidth=1)
                ax.bar(x, q3 - q1, 0.6, q1, color=MODEL if group == "model" else REFERENCE, edgecolor="#374151")
                ax.hlines(median, x - 0.3, x + 0.3, color="black", linewidth=1.5)
                ax.plot([x], [stats.mean(values)], marker="D", color="white", markeredgecolor="black", markersize=5)
            ax.set_xticks(range(len(groups)), groups)
            ax.set_title(f"{metric} similarity to the real turn (n={len(scored)})")
        axes[0].set_ylabel("box: quartiles, line: p10..p90, diamond: mean")

    return _svg("distributions", (10.0, 3.4), draw)


def paired(pairs: Sequence[Pair], metric: str = SEMANTIC) -> str | None:
    """Each paired probe's score in the baseline against the candidate's; below the diagonal it got worse."""
    points = [
        (p.base.result.scores[metric], p.new.result.scores[metric])
        for p in pairs
        if metric in p.base.result.scores and metric in p.new.result.scores
    ]
    if not points:
        return None

    def draw(figure: Figure) -> None:
        ax = figure.subplots()
        low = min(0.0, *(v for point in points for v in point))
        high = max(1.0, *(v for point in points for v in point))
        ax.plot([low, high], [low, high], linestyle="--", color="#6b7280", linewidth=1, label="no change")
        worse = [(b, n) for b, n in points if n < b]
        rest = [(b, n) for b, n in points if n >= b]
        for found, colour, label in ((worse, WORSE, "worse"), (rest, BETTER, "same or better")):
            if found:
                xs, ys = zip(*found, strict=True)
                ax.scatter(xs, ys, s=14, color=colour, alpha=0.7, label=f"{label} ({len(found)})")
        ax.set_xlim(low, high)
        ax.set_ylim(low, high)
        ax.set_aspect("equal")
        ax.set_xlabel(f"baseline {metric} similarity")
        ax.set_ylabel(f"candidate {metric} similarity")
        ax.set_title(f"per-probe {metric} similarity, {len(points)} paired probes")
        ax.legend(loc="upper left", fontsize=8)

    return _svg("paired", (5.2, 5.0), draw)


def sweep(rows: Sequence[SweepRow]) -> str | None:
    """The follow-up rate (with its interval) and the mean similarities at each temperature."""
    if not rows:
        return None

    def draw(figure: Figure) -> None:
        ax = figure.subplots()
        temperatures = [row.temperature for row in rows]
        rated = [
            (row.temperature, row.followup, *(side[0] for side in _spread(row.followup, row.ci_low, row.ci_high)))
            for row in rows
            if row.followup is not None and row.ci_low is not None and row.ci_high is not None
        ]
        if rated:
            xs, ys, below, above = zip(*rated, strict=True)
            ax.errorbar(
                xs, ys, yerr=[below, above], marker="o", capsize=4, color=MODEL, label="genuine follow-up rate (95% CI)"
            )
        for metric, colour in zip(rows[0].scores, ("#f59e0b", "#6b7280"), strict=False):
            ax.plot(
                temperatures,
                [row.scores.get(metric, float("nan")) for row in rows],
                marker="s",
                linestyle=":",
                color=colour,
                label=f"mean {metric}",
            )
        ax.set_xticks(temperatures, [f"{t:g}" for t in temperatures])
        ax.set_ylim(0, 1)
        ax.set_xlabel("temperature")
        ax.set_title("temperature sweep")
        ax.legend(loc="upper left", fontsize=8)

    return _svg("sweep", (6.4, 3.4), draw)


def gaps(found: Sequence[Gap]) -> str | None:
    """Each grounding gap with its interval: a model that reads the interaction keeps them right of zero."""
    if not found:
        return None

    def draw(figure: Figure) -> None:
        ax = figure.subplots()
        names = [("follow-up rate" if g.metric == FOLLOWUP else f"{g.metric} similarity") for g in found][::-1]
        ordered = list(found)[::-1]
        for y, gap in enumerate(ordered):
            ax.errorbar(
                [gap.gap],
                [y],
                xerr=_spread(gap.gap, gap.ci_low, gap.ci_high),
                marker="o",
                capsize=4,
                color=PASS if gap.significant else REFERENCE,
            )
        ax.axvline(0, color="#6b7280", linestyle="--", linewidth=1)
        ax.set_yticks(range(len(ordered)), names)
        ax.set_ylim(-0.6, len(ordered) - 0.4)
        ax.set_xlabel("real minus shuffled assistant turn (95% CI; green: above zero)")
        ax.set_title(f"grounding gap, shuffle control on {found[0].n} probes")

    return _svg("gaps", (6.4, 0.5 * len(found) + 1.5), draw)


def trend(runs: Sequence[Sequence[GateVerdict]], labels: Sequence[str]) -> str | None:
    """One panel per gate: its value in each run (oldest first), its threshold, and the runs where it failed."""
    names = list(dict.fromkeys(v.name for verdicts in runs for v in verdicts))
    if len(runs) < 2 or not names:
        return None
    columns = min(3, len(names))
    rows = -(-len(names) // columns)

    def draw(figure: Figure) -> None:
        axes = figure.subplots(rows, columns, squeeze=False).ravel()
        for ax, name in zip(axes, names, strict=False):
            found = [{v.name: v for v in verdicts}.get(name) for verdicts in runs]
            xs = [i for i, v in enumerate(found) if v is not None and v.value is not None]
            values = [v.value for v in found if v is not None and v.value is not None]
            ax.plot(xs, values, marker="o", color=MODEL, linewidth=1.5)
            failed = [i for i, v in enumerate(found) if v is not None and v.value is not None and not v.passed]
            if failed:
                ax.scatter(failed, [values[xs.index(i)] for i in failed], color=WORSE, zorder=3, s=30)
            threshold = next(v for v in reversed(found) if v is not None)
            ax.axhline(threshold.threshold, color="#6b7280", linestyle="--", linewidth=1)
            ax.set_title(f"{name} ({threshold.comparison} {threshold.threshold:g})")
            ax.set_xticks(range(len(runs)), labels, fontsize=8)
        for ax in axes[len(names) :]:
            ax.set_visible(False)

    return _svg("trend", (10.0, 2.4 * rows + 0.3), draw)


def slices(name: str, field: str, found: Sequence[Slice], overall: float | None, threshold: float) -> str | None:
    """Each slice's mean semantic similarity with its interval, first slice on top, beside the whole run's mean and
    the gate's threshold; a small slice faded. None when no slice has a prediction."""
    shown = [(part, dist) for part in found if (dist := part.figures.similarity.get(SEMANTIC)) is not None][::-1]
    if not shown:
        return None

    def draw(figure: Figure) -> None:
        ax = figure.subplots()
        for y, (part, dist) in enumerate(shown):
            ax.errorbar(
                [dist.mean],
                [y],
                xerr=_spread(dist.mean, dist.ci_low, dist.ci_high),
                marker="o",
                capsize=4,
                color=MODEL,
                alpha=0.3 if part.small else 1.0,
            )
        if overall is not None:
            ax.axvline(overall, color="#374151", linestyle="--", linewidth=1, label=f"whole run {overall:.3f}")
        ax.axvline(threshold, color=WORSE, linestyle=":", linewidth=1, label=f"gate threshold {threshold:g}")
        labels = [f"{_label(part.value)} (n={dist.n}){' *' if part.small else ''}" for part, dist in shown]
        ax.set_yticks(range(len(shown)), labels, parse_math=False)
        ax.set_ylim(-0.6, len(shown) - 0.4)
        ax.set_xlabel("mean semantic similarity to the real turn (95% CI; faded *: too few to say much)")
        ax.set_title(f"semantic similarity by {_label(field)}", parse_math=False)
        figure.legend(loc="outside lower center", ncols=2, fontsize=8, frameon=False)

    return _svg(name, (6.4, 0.38 * len(shown) + 1.8), draw, f"semantic similarity by {field}")
