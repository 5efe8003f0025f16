"""`utg`: work with stored runs without calling any model.

    utg report [RECORD] [--baseline B] [--history DIR] [--format text|json|markdown|html] [-o FILE]
                                                    re-render a run: its summary, its drift, the runs before it
    utg merge RECORD... [-o OUT] [--format ...]     join shard records (--utg-shard K/N) and judge the gates over all
    utg compare BASE NEW [--max-drop ...] [--format ...]
                                                    drift of NEW against BASE, judged as the drift gates judge it
    utg cache check PATH                            is a record/replay cache sound (after a crash or a kill)?

Each exits 1 when a gate fails (or the run could not produce predictions), 2 on an unreadable, unmergeable or
incomparable record, like the pytest run it stands for; `cache check` exits 1 when the cache has problems, 2 when
there is no cache file.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from utg_pytest import __version__
from utg_pytest import record as record_module
from utg_pytest.cache import CACHE_FILE, check
from utg_pytest.record import RecordError, RunRecord
from utg_pytest.settings import DriftSettings

if TYPE_CHECKING:
    from utg_pytest.baseline import Comparison

EXIT_OK, EXIT_FAILED, EXIT_UNUSABLE = 0, 1, 2


def _render(
    record: RunRecord,
    fmt: str,
    quiet: bool,
    comparison: Comparison | None = None,
    history: Sequence[RunRecord] = (),
    baseline: str = "",
) -> str:
    """A run (with its drift against a baseline, and the runs before it) in one of the output formats."""
    if fmt == "json":
        document = summary_document(record)
        if comparison is not None:
            document["drift"] = record_module.encode(comparison)
        if history:
            from utg_pytest import history as history_module

            document["history"] = record_module.encode(history_module.rows([*history, record]))
        return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
    if fmt == "markdown":
        from utg_pytest.report import markdown

        return markdown.render(record, comparison, history)
    if fmt == "html":
        from utg_pytest.report import html

        return html.render(record, comparison, history)
    from utg_pytest.report import terminal

    lines = terminal.summary(record, quiet=quiet)
    if comparison is not None:
        lines += (
            [terminal.drift_line(d) for d in comparison.drifts] if quiet else terminal.drift_lines(comparison, baseline)
        )
    if history and not quiet:
        from utg_pytest import history as history_module

        runs = [*history, record]
        lines += terminal.history_lines(runs, history_module.steps(runs, DriftSettings()))
    return "".join(line + "\n" for line in lines)


def _emit(text: str, output: str | None) -> None:
    if output:
        Path(output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)


def _drift_settings(args: argparse.Namespace, scorers: Sequence[str] = ()) -> DriftSettings:
    """The drift settings the flags give; margins may name the metrics of the runs' own scorers."""
    from utg_pytest.baseline import margin_problem
    from utg_pytest.settings import BY_NAME

    margins = tuple(BY_NAME["max_drop"].convert(args.max_drop)) if args.max_drop else ()
    problem = margin_problem([name for name, _ in margins], scorers)
    if problem:
        raise RecordError(f"--max-drop: {problem}")
    return DriftSettings(max_drop=margins, alpha=args.alpha, inconclusive=args.inconclusive)


def _judged(base: RunRecord, new: RunRecord, settings: DriftSettings) -> Comparison:
    from utg_pytest.baseline import judge

    found = judge(base, new, settings)
    if isinstance(found, str):
        raise RecordError(found)
    return found


def _drift_failed(comparison: Comparison | None, settings: DriftSettings) -> bool:
    if comparison is None:
        return False
    inconclusive = settings.inconclusive == "fail" and any(d.verdict == "inconclusive" for d in comparison.drifts)
    return comparison.failed or inconclusive


def summary_document(record: RunRecord) -> dict[str, Any]:
    """The run's figures and verdicts, per slice too, and the probes it gets most wrong, as JSON for dashboards and
    scripts."""
    from utg_pytest import slicing

    settings = record.header.settings
    document: dict[str, Any] = {
        "run": {k: v for k, v in record_module.header_line(record).items() if k not in ("kind", "verdicts")},
        "figures": record_module.encode(record.figures),
        "verdicts": record_module.encode(record.verdicts),
        "passed": slicing.passed(record),
    }
    if settings.slices.fields:
        document["slices"] = {
            field: [{**record_module.encode(found), "small": found.small} for found in slicing.slices(record, field)]
            for field in settings.slices.fields
        }
    if settings.slices.gates:
        judged = slicing.judge(record, settings.gates, settings.drift.alpha)
        document["slice_verdicts"] = [{"name": v.name, **record_module.encode(v)} for v in judged]
    document["worst"] = [
        {"probe_id": m.probe.probe_id, "score": m.score, "reference": m.reference, "reference_score": m.reference_score,
         "gap": m.gap, "target": m.probe.target, "prediction": m.probe.result.prediction}
        for m in slicing.worst(record, 20)
    ]  # fmt: skip
    return document


def _status(record: RunRecord) -> int:
    from utg_pytest.slicing import passed

    return EXIT_OK if passed(record) else EXIT_FAILED


def report(args: argparse.Namespace) -> int:
    history: list[RunRecord] = []
    if args.history:
        from utg_pytest import history as history_module

        history = history_module.load(Path(args.history))
    if args.record:
        found = record_module.read(Path(args.record))
        history = [run for run in history if run != found]
    elif history:
        found = history.pop()
    else:
        raise RecordError("give a RECORD, or a run store with --history DIR")
    settings = _drift_settings(args, list(found.header.scorers))
    comparison = _judged(record_module.read(Path(args.baseline)), found, settings) if args.baseline else None
    _emit(_render(found, args.format, args.quiet, comparison, history, args.baseline or ""), args.output)
    return EXIT_FAILED if _status(found) == EXIT_FAILED or _drift_failed(comparison, settings) else EXIT_OK


def merge(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.records]
    parts = [record_module.read(path) for path in paths]
    merged = record_module.merge(parts, [str(p) for p in paths])
    if args.output:
        record_module.write(Path(args.output), merged)
    sys.stdout.write(_render(merged, args.format, args.quiet))
    return _status(merged)


def compare(args: argparse.Namespace) -> int:
    base, new = record_module.read(Path(args.base)), record_module.read(Path(args.new))
    settings = _drift_settings(args, list(new.header.scorers))
    comparison = _judged(base, new, settings)
    if args.format in ("markdown", "html"):
        _emit(_render(new, args.format, args.quiet, comparison), args.output)
    elif args.format == "json":
        _emit(json.dumps(record_module.encode(comparison), indent=2, ensure_ascii=False) + "\n", args.output)
    else:
        from utg_pytest.report import terminal

        lines = (
            [terminal.drift_line(d) for d in comparison.drifts]
            if args.quiet
            else terminal.drift_lines(comparison, args.base)
        )
        _emit("".join(line + "\n" for line in lines), args.output)
    return EXIT_FAILED if _drift_failed(comparison, settings) else EXIT_OK


def cache_check(args: argparse.Namespace) -> int:
    try:
        found = check(Path(args.path))
    except FileNotFoundError as exc:
        print(f"utg cache check: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    rows = (
        f"{found.generations} generation(s), {found.embeddings} embedding(s), {found.labels} label(s), "
        f"{found.clean} clean conversation(s), {found.digests} file digest(s)"
    )
    if found.ok:
        sys.stdout.write(f"{found.path}: sound; {rows}\n")
        return EXIT_OK
    sys.stdout.write("".join(f"{found.path}: {problem}\n" for problem in found.problems))
    sys.stdout.write(f"{found.path}: {len(found.problems)} problem(s); {rows}\n")
    return EXIT_FAILED


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="utg",
        description="Work with utg-pytest run records (the --utg-results files) without calling any model.",
        epilog="Exit status: 0 when every gate passed, 1 when a gate failed, 2 when a record cannot be read, merged or "
        "compared.",
    )
    top.add_argument("--version", action="version", version=f"utg-pytest {__version__}")
    verbs = top.add_subparsers(dest="verb", required=True, metavar="COMMAND")

    shown = argparse.ArgumentParser(add_help=False)
    shown.add_argument("-q", "--quiet", action="store_true", help="text format: only the gate verdicts")
    rendered = argparse.ArgumentParser(add_help=False, parents=[shown])
    rendered.add_argument(
        "--format",
        choices=("text", "json", "markdown", "html"),
        default="text",
        help="text: the pytest summary (default); json: figures and verdicts; markdown: a pull-request comment; "
        "html: one self-contained page with plots",
    )
    rendered.add_argument("-o", "--output", metavar="FILE", help="write the report here instead of to stdout")
    drifting = argparse.ArgumentParser(add_help=False)
    drifting.add_argument("--max-drop", metavar="METRIC=X,...", help="drift margins, as --utg-max-drop")
    drifting.add_argument("--alpha", type=float, default=0.05, help="significance level, family-wise (default 0.05)")
    drifting.add_argument(
        "--inconclusive", choices=("warn", "fail"), default="warn", help="whether an inconclusive drift verdict fails"
    )

    found = verbs.add_parser(
        "report",
        parents=[rendered, drifting],
        help="render a stored run: its summary, a Markdown comment or an HTML page",
        description="Render a stored run (a --utg-results file): the summary exactly as the live run printed it, or a "
        "Markdown or HTML report. With --baseline, its drift against that run, judged as --utg-baseline judges it; "
        "with --history, the gated figures of every run in a --utg-save-run store, oldest first.",
    )
    found.add_argument("record", metavar="RECORD", nargs="?", help="a run record (default: the latest in --history)")
    found.add_argument("--baseline", metavar="BASE", help="a run record to judge the drift against")
    found.add_argument("--history", metavar="DIR", help="a run store (--utg-save-run DIR)")
    found.set_defaults(action=report)

    stored = argparse.ArgumentParser(add_help=False, parents=[shown])
    stored.add_argument("--format", choices=("text", "json"), default="text", help="text: the pytest summary; json")
    joined = verbs.add_parser(
        "merge",
        parents=[stored],
        help="join the records of shards (--utg-shard K/N) and judge the gates over all probes",
        description="Join the records of the shards of one run (--utg-shard 1/N ... N/N), after checking that they "
        "come from the same logs, model and settings and that no shard is missing, then judge the gates over every "
        "probe.",
    )
    joined.add_argument("records", nargs="+", metavar="RECORD", help="the shards' --utg-results files")
    joined.add_argument("-o", "--output", metavar="FILE", help="write the merged record here")
    joined.set_defaults(action=merge)

    drifted = verbs.add_parser(
        "compare",
        parents=[rendered, drifting],
        help="is NEW significantly worse than BASE on the same probes? (the drift gates, from two stored runs)",
        description="Pair the probes of two stored runs (by id, else by content), and judge each drift metric as "
        "pytest --utg-baseline does: the change with a bootstrap interval over conversations, a p-value (Holm across "
        "metrics), the minimum detectable effect, and pass, inconclusive or fail against the allowed margin.",
    )
    drifted.add_argument("base", metavar="BASE", help="the baseline run record")
    drifted.add_argument("new", metavar="NEW", help="the candidate run record")
    drifted.set_defaults(action=compare)

    cached = verbs.add_parser(
        "cache",
        help="inspect a record/replay cache (--utg-cache)",
        description="Inspect a record/replay cache without running anything.",
    )
    cache_verbs = cached.add_subparsers(dest="cache_verb", required=True, metavar="COMMAND")
    checked = cache_verbs.add_parser(
        "check",
        help="check that a cache is sound: SQLite's integrity check, and every row decodes as a run reads it",
        description="Check a record/replay cache, as after a run that was killed: SQLite's integrity check of the "
        "file and its write-ahead log, the tables a run expects, and every cached generation, embedding and file "
        "digest decoding as a run reads it back. Exit 0 when sound, 1 with problems (each printed), 2 without a "
        "cache file.",
    )
    checked.add_argument("path", metavar="PATH", help=f"the cache directory (--utg-cache) or its {CACHE_FILE}")
    checked.set_defaults(action=cache_check)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        status: int = args.action(args)
    except (RecordError, argparse.ArgumentTypeError) as exc:
        print(f"utg {args.verb}: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    return status


if __name__ == "__main__":
    raise SystemExit(main())
