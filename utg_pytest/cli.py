"""`utg`: work with stored runs without calling any model.

    utg report RECORD [--format text|json] [-q]     re-render a run's summary
    utg merge RECORD... [-o OUT] [--format ...]     join shard records (--utg-shard K/N) and judge the gates over all
    utg compare BASE NEW [--max-drop ...]           drift of NEW against BASE, judged as the drift gates judge it

Each exits 1 when a gate fails (or the run could not produce predictions), 2 on an unreadable, unmergeable or
incomparable record, like the pytest run it stands for.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from utg_pytest import __version__
from utg_pytest import record as record_module
from utg_pytest.record import RecordError, RunRecord

EXIT_OK, EXIT_FAILED, EXIT_UNUSABLE = 0, 1, 2


def _render(record: RunRecord, fmt: str, quiet: bool) -> str:
    if fmt == "json":
        return json.dumps(summary_document(record), indent=2, ensure_ascii=False) + "\n"
    from utg_pytest.report import terminal

    return "".join(line + "\n" for line in terminal.summary(record, quiet=quiet))


def summary_document(record: RunRecord) -> dict[str, Any]:
    """The run's figures and verdicts as JSON, for dashboards and scripts."""
    return {
        "run": {k: v for k, v in record_module.header_line(record).items() if k not in ("kind", "verdicts")},
        "figures": record_module.encode(record.figures),
        "verdicts": record_module.encode(record.verdicts),
        "passed": record.passed,
    }


def _status(record: RunRecord) -> int:
    return EXIT_OK if record.passed else EXIT_FAILED


def report(args: argparse.Namespace) -> int:
    found = record_module.read(Path(args.record))
    sys.stdout.write(_render(found, args.format, args.quiet))
    return _status(found)


def merge(args: argparse.Namespace) -> int:
    paths = [Path(p) for p in args.records]
    parts = [record_module.read(path) for path in paths]
    merged = record_module.merge(parts, [str(p) for p in paths])
    if args.output:
        record_module.write(Path(args.output), merged)
    sys.stdout.write(_render(merged, args.format, args.quiet))
    return _status(merged)


def compare(args: argparse.Namespace) -> int:
    from utg_pytest.baseline import IncomparableError, margin_problem
    from utg_pytest.baseline import compare as compare_runs
    from utg_pytest.report import terminal
    from utg_pytest.settings import BY_NAME

    margins = dict(BY_NAME["max_drop"].convert(args.max_drop)) if args.max_drop else {}
    problem = margin_problem(list(margins))
    if problem:
        raise RecordError(f"--max-drop: {problem}")
    base, new = record_module.read(Path(args.base)), record_module.read(Path(args.new))
    try:
        comparison = compare_runs(base, new, margins, args.alpha)
    except IncomparableError as exc:
        raise RecordError(str(exc)) from None
    if args.format == "json":
        sys.stdout.write(json.dumps(record_module.encode(comparison), indent=2, ensure_ascii=False) + "\n")
    else:
        lines = (
            [terminal.drift_line(d) for d in comparison.drifts]
            if args.quiet
            else terminal.drift_lines(comparison, args.base)
        )
        sys.stdout.write("".join(line + "\n" for line in lines))
    failed = comparison.failed or (
        args.inconclusive == "fail" and any(d.verdict == "inconclusive" for d in comparison.drifts)
    )
    return EXIT_FAILED if failed else EXIT_OK


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="utg",
        description="Work with utg-pytest run records (the --utg-results files) without calling any model.",
    )
    top.add_argument("--version", action="version", version=f"utg-pytest {__version__}")
    verbs = top.add_subparsers(dest="verb", required=True, metavar="COMMAND")

    shown = argparse.ArgumentParser(add_help=False)
    shown.add_argument("--format", choices=("text", "json"), default="text", help="text: the pytest summary; json")
    shown.add_argument("-q", "--quiet", action="store_true", help="text format: only the gate verdicts")

    found = verbs.add_parser(
        "report",
        parents=[shown],
        help="print the summary of a stored run, as the pytest run printed it",
        description="Print the summary of a stored run (a --utg-results file), exactly as the live run printed it.",
    )
    found.add_argument("record", metavar="RECORD", help="a --utg-results file")
    found.set_defaults(action=report)

    joined = verbs.add_parser(
        "merge",
        parents=[shown],
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
        parents=[shown],
        help="is NEW significantly worse than BASE on the same probes? (the drift gates, from two stored runs)",
        description="Pair the probes of two stored runs (by id, else by content), and judge each drift metric as "
        "pytest --utg-baseline does: the change with a bootstrap interval over conversations, a p-value (Holm across "
        "metrics), the minimum detectable effect, and pass, inconclusive or fail against the allowed margin.",
    )
    drifted.add_argument("base", metavar="BASE", help="the baseline run record")
    drifted.add_argument("new", metavar="NEW", help="the candidate run record")
    drifted.add_argument("--max-drop", metavar="METRIC=X,...", help="margins, as --utg-max-drop")
    drifted.add_argument("--alpha", type=float, default=0.05, help="significance level, family-wise (default 0.05)")
    drifted.add_argument(
        "--inconclusive", choices=("warn", "fail"), default="warn", help="whether an inconclusive verdict fails"
    )
    drifted.set_defaults(action=compare)
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
