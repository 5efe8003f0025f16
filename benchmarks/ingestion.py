"""Ingestion at scale: a synthetic JSONL log of 1,000,000 messages (100,000 conversations of 10) turned into probes by
utg's loader (validation, line-exact errors, the probe set), next to a plain `json.loads` loop that extracts the same
probes with no validation. Time and peak memory of each, measured in separate child processes so that one's memory
does not count against the other, alternating, `--repeat` times each; medians are reported.

utg's probe set builds a probe's text (its conversation parsed again) on first access, so two more figures show what
a run pays on top: building a 2,000-probe sample (`--utg-max-probes 2000`), and building every probe.

The same conversations are also written in the other shapes teams log them in (`--formats`, generation not timed) and
loaded through the plugin's entry (pipeline.load, --utg-format auto) in the same alternation, so each is compared
with the native bulk path measured beside it: the `table` adapter on Parquet, CSV and JSON Lines (one message per
row, rows of 1,000 conversations interleaved as a database export orders them by time), and `chat-calls`, one
proxy-logged call per assistant turn whose request holds the history so far, which the loader must rebuild into
conversations. Every shape must give the native log's probes (conversation ids and turns, in order) and texts.

    python benchmarks/ingestion.py [--conversations 100000] [--messages 10] [--repeat 3]
                                   [--formats table-parquet,table-csv,table-jsonl,chat-calls | none]
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from synthetic import write_log

HERE = Path(__file__).parent
BLOCK = 1000
"""Conversations whose records are interleaved turn by turn in the table and call shapes."""
EPOCH = 1_780_000_000
"""When the synthetic conversations start (2026-05-28, UTC): conversation n at EPOCH + 7 n s, a turn a minute."""


def plain_loop(path: Path) -> int:
    probes = []
    with path.open("rb") as handle:
        for raw in handle:
            document = json.loads(raw)
            messages = document["messages"]
            for index, message in enumerate(messages):
                if index and message["role"] == "user" and messages[index - 1]["role"] == "assistant":
                    probes.append((document["id"], messages[:index], message["content"]))
    return len(probes)


def utg_loader(path: Path, max_probes: int | None = None, build: bool = False) -> Sequence[Any]:
    """The probes as the plugin gets them: pipeline.load with the default --utg-format auto."""
    from utg_pytest.pipeline import load
    from utg_pytest.settings import build as settings

    options = {"logs": (str(path),)} | ({"max_probes": max_probes} if max_probes else {})
    loaded = load(settings(options, rootdir=str(path.parent)))
    assert not loaded.errors, [error.describe() for error in loaded.errors[:3]]
    return list(loaded.probes) if build else loaded.probes


RUNS: dict[str, Callable[[Path], int | Sequence[Any]]] = {
    "loop": plain_loop,
    "utg": utg_loader,
    "utg-sample": lambda path: utg_loader(path, max_probes=2000, build=True),
    "utg-all": lambda path: utg_loader(path, build=True),
}
LABELS = {
    "loop": "json.loads loop",
    "utg": "utg loader",
    "utg-sample": "utg, 2,000-probe sample built",
    "utg-all": "utg, every probe built",
}


def conversations(native: Path) -> Iterator[tuple[str, list[dict[str, str]]]]:
    with native.open("rb") as handle:
        for raw in handle:
            document = json.loads(raw)
            yield document["id"], document["messages"]


def interleaved(native: Path) -> Iterator[tuple[int, str, int, list[dict[str, str]]]]:
    """(conversation number, id, turn, messages) for every message, BLOCK conversations at a time turn by turn: a
    log written as messages happen holds many conversations at once."""
    block: list[tuple[str, list[dict[str, str]]]] = []
    number = 0
    for found in [*conversations(native), None]:
        if found is not None:
            block.append(found)
        if block and (found is None or len(block) == BLOCK):
            for turn in range(max(len(messages) for _, messages in block)):
                for offset, (identifier, messages) in enumerate(block):
                    if turn < len(messages):
                        yield number + offset, identifier, turn, messages
            number += len(block)
            block = []


def write_table(native: Path, path: Path) -> int:
    """One message per row (conversation_id, turn_index, role, content), in Parquet, CSV or JSON Lines by suffix."""
    import polars as pl

    rows = [
        (cid, turn, messages[turn]["role"], messages[turn]["content"]) for _, cid, turn, messages in interleaved(native)
    ]
    frame = pl.DataFrame(
        rows,
        schema={"conversation_id": pl.String, "turn_index": pl.Int64, "role": pl.String, "content": pl.String},
        orient="row",
    )
    if path.suffix == ".parquet":
        frame.write_parquet(path)
    elif path.suffix == ".csv":
        frame.write_csv(path)
    else:
        frame.write_ndjson(path)
    return frame.height


def write_calls(native: Path, path: Path) -> int:
    """One proxy line ({ts, metadata.session_id, request.messages, response}) per assistant turn, its request
    holding the conversation up to that turn, as a chat-completion proxy logs them."""
    logged = 0
    with path.open("w", encoding="utf-8") as handle:
        for number, cid, turn, messages in interleaved(native):
            if messages[turn]["role"] != "assistant":
                continue
            started = EPOCH + 7 * number + 60 * turn
            stamp = datetime.datetime.fromtimestamp(started, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            choice = {"index": 0, "message": messages[turn], "finish_reason": "stop"}
            response = {
                "id": f"chatcmpl-{cid}-{turn}",
                "object": "chat.completion",
                "created": started + 1,
                "model": "support-bot-v7",
                "choices": [choice],
            }
            record = {
                "ts": stamp,
                "metadata": {"session_id": cid},
                "request": {"model": "support-bot-v7", "messages": messages[:turn]},
                "response": response,
            }
            handle.write(json.dumps(record) + "\n")
            logged += turn + 1
    return logged


SHAPES: dict[str, tuple[str, str, Callable[[Path, Path], int]]] = {
    "table-parquet": ("table.parquet", "table, Parquet", write_table),
    "table-csv": ("table.csv", "table, CSV", write_table),
    "table-jsonl": ("table.jsonl", "table, JSON Lines", write_table),
    "chat-calls": ("calls.jsonl", "chat-calls (rebuilt)", write_calls),
}
"""Shape: file name, label, writer (returning the messages the file holds)."""
FORMAT_OF = {"utg": "openai", "chat-calls": "chat-calls"} | {shape: "table" for shape in SHAPES if "table" in shape}


def probe_ids(probes: Any) -> str:
    """A digest of the probes' ids without the file name (conversation id and turn), in order: a probe set's ids
    come from its index, so this builds no probe."""
    return hashlib.sha256("\n".join(found.split("::", 1)[1] for found in probes.ids).encode()).hexdigest()[:16]


def contents(path: Path) -> dict[str, Any]:
    """What a shape must reproduce besides the probe ids, checked once per file outside the timed runs: every
    conversation's id, roles and texts (a digest), and the format that read it, through ingest.load with the
    plugin's formats."""
    from utg_pytest import ingest
    from utg_pytest.pipeline import log_formats
    from utg_pytest.settings import build as settings

    loaded = ingest.load([path], log_format="auto", formats=log_formats(settings({"logs": (str(path),)})))
    assert not loaded.errors, [error.describe() for error in loaded.errors[:3]]
    digest, count, read_as = hashlib.sha256(), 0, None
    for conversation in loaded.conversations():
        read_as = read_as or conversation.metadata.get("source", {}).get("format", "openai")
        digest.update(json.dumps([conversation.id, [(m.role, m.text) for m in conversation.messages]]).encode())
        count += 1
    return {"conversations": count, "contents": digest.hexdigest()[:16], "format": read_as}


def child(which: str, path: Path, check: bool) -> None:
    if check:
        print(json.dumps(contents(path)))
        return
    started = time.perf_counter()
    found = (RUNS.get(which) or utg_loader)(path)
    elapsed = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    count = found if isinstance(found, int) else len(found)
    ids = {"ids": probe_ids(found)} if which in FORMAT_OF else {}
    print(json.dumps({"probes": count, "seconds": elapsed, "peak_mb": peak_mb} | ids))


def measure(which: str, path: Path, *extra: str) -> dict[str, Any]:
    command = [sys.executable, str(Path(__file__).resolve()), "--child", which, "--path", str(path), *extra]
    out = subprocess.run(command, capture_output=True, text=True, check=False)
    if out.returncode:
        sys.exit(f"{which} on {path.name} failed:\n{out.stderr[-3000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def write(shape: str, native: Path, path: Path) -> int:
    """Write a shape in a child process: peak memory (ru_maxrss) survives fork and exec, so a parent that had held
    the generated rows would lend its peak to every measured child."""
    return int(measure(shape, native, "--write", str(path))["messages"])


def shapes_of(value: str) -> list[str]:
    chosen = [] if value == "none" else [shape for shape in value.split(",") if shape]
    unknown = sorted(set(chosen) - set(SHAPES))
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown shape(s) {', '.join(unknown)}: known are {', '.join(SHAPES)}")
    return chosen


def main() -> None:
    wall = time.perf_counter()
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--formats",
        type=shapes_of,
        default=list(SHAPES),
        help=f"comma-separated shapes to compare with the native log ({', '.join(SHAPES)}; default all), or none",
    )
    parser.add_argument("--child", choices=sorted([*RUNS, *SHAPES]))
    parser.add_argument("--check", action="store_true", help="(child) digest every conversation instead of timing")
    parser.add_argument("--write", help="(child) write the shape from the native log at --path to this file")
    parser.add_argument("--path")
    args = parser.parse_args()
    if args.child and args.write:
        print(json.dumps({"messages": SHAPES[args.child][2](Path(args.path), Path(args.write))}))
        return
    if args.child:
        child(args.child, Path(args.path), args.check)
        return
    if "chat-calls" in args.formats and args.messages % 2:
        parser.error("chat-calls needs an even --messages: a call log holds no unanswered last user turn")
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "big.jsonl"
        expected = write_log(path, args.conversations, args.messages)
        files = {which: path for which in RUNS}
        logged = {which: args.conversations * args.messages for which in RUNS}
        generating = time.perf_counter()
        for shape in args.formats:
            files[shape] = Path(scratch) / SHAPES[shape][0]
            logged[shape] = write(shape, path, files[shape])
        generating = time.perf_counter() - generating
        sizes = {which: found.stat().st_size / 1e6 for which, found in files.items()}
        checks = {which: measure(which, files[which], "--check") for which in ["utg", *args.formats]}
        runs: dict[str, list[dict[str, Any]]] = {which: [] for which in files}
        for _ in range(args.repeat):
            for which, found in files.items():
                runs[which].append(measure(which, found))
    loop, utg = median(runs["loop"]), median(runs["utg"])
    assert loop["probes"] == utg["probes"] == expected == median(runs["utg-all"])["probes"], (loop, utg, expected)
    print(
        f"ingestion: {args.conversations * args.messages} messages, {args.conversations} conversations, "
        f"{sizes['utg']:.0f} MB -> {expected} probes; medians of {args.repeat} alternating runs"
    )
    for which, label in LABELS.items():
        figures = median(runs[which])
        print(f"  {label:30s} {figures['seconds']:5.2f} s, peak {figures['peak_mb']:4.0f} MB")
    print(f"  utg speed-up over the loop {loop['seconds'] / utg['seconds']:.2f}x (target >= 3x, peak < 2048 MB)")
    if args.formats:
        report_formats(args.formats, runs, checks, sizes, logged)
    print(f"wall time {time.perf_counter() - wall:.0f} s (other shapes generated in {generating:.0f} s, not timed)")


def report_formats(
    shapes: list[str],
    runs: dict[str, list[dict[str, Any]]],
    checks: dict[str, dict[str, Any]],
    sizes: dict[str, float],
    logged: dict[str, int],
) -> None:
    """The other shapes against the native bulk path measured beside them, as a Markdown table: the ratio of the
    medians, and the range of the ratios within each round (the runs of a round are seconds apart, so the range shows
    how much the machine's load moved the figure). Fails if any shape gave other conversations or probes."""
    native, truth = runs["utg"][0], checks["utg"]
    for which in shapes:
        read = checks[which]
        assert read["format"] == FORMAT_OF[which], (which, read)
        assert (read["conversations"], read["contents"]) == (truth["conversations"], truth["contents"]), (which, read)
        for run in runs[which]:
            assert (run["probes"], run["ids"]) == (native["probes"], native["ids"]), (which, run, native)
    from utg_pytest.ingest import BULK_FROM_BYTES  # here: a child must import utg inside its clock

    base = [run["seconds"] for run in runs["utg"]]
    bulk = sizes["utg"] * 1e6 >= BULK_FROM_BYTES
    print(
        f"\nformats: the same {truth['conversations']} conversations in other shapes, loaded by pipeline.load "
        f"(--utg-format auto, recognised as named; probes found, not built); each gave the native log's "
        f"{native['probes']} probes with the same ids and the same conversation texts; medians of {len(base)} "
        "interleaved runs"
    )
    print("\n| shape | messages logged | file | load | vs native bulk [per round] | peak |")
    print("|---|---|---|---|---|---|")
    worst = 0.0
    for which in ["utg", *shapes]:
        label = SHAPES[which][1] if which != "utg" else f"native JSONL, {'bulk' if bulk else 'exact'} path"
        seconds = [run["seconds"] for run in runs[which]]
        ratio = statistics.median(seconds) / statistics.median(base)
        rounds = [mine / theirs for mine, theirs in zip(seconds, base, strict=True)]
        if which in ("table-parquet", "table-csv"):
            worst = max(worst, ratio)
        print(
            f"| {label} | {logged[which]:,} | {sizes[which]:.0f} MB | {statistics.median(seconds):.2f} s | "
            f"{ratio:.2f}x [{min(rounds):.2f}..{max(rounds):.2f}] | {median(runs[which])['peak_mb']:.0f} MB |"
        )
    if {"table-parquet", "table-csv"} & set(shapes):
        verdict = ("met" if worst <= 2 else "NOT met") if bulk else "not judged: the native log is under the bulk size"
        print(f"\ntable adapter (Parquet, CSV) within 2x of the native bulk path: {verdict}")


def median(found: list[dict[str, Any]]) -> dict[str, Any]:
    numbers = [key for key, value in found[0].items() if isinstance(value, (int, float))]
    return {key: statistics.median(run[key] for run in found) for key in numbers}


if __name__ == "__main__":
    main()
