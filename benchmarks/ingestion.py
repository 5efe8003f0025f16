"""Ingestion at scale: a synthetic JSONL log of 1,000,000 messages (100,000 conversations of 10) turned into probes by
utg's loader (validation, line-exact errors, the probe set), next to a plain `json.loads` loop that extracts the same
probes with no validation. Time and peak memory of each, measured in separate child processes so that one's memory
does not count against the other, alternating, `--repeat` times each; medians are reported.

utg's probe set builds a probe's text (its conversation parsed again) on first access, so two more figures show what
a run pays on top: building a 2,000-probe sample (`--utg-max-probes 2000`), and building every probe.

    python benchmarks/ingestion.py [--conversations 100000] [--messages 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from synthetic import write_log

HERE = Path(__file__).parent


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


def utg_loader(path: Path, max_probes: int | None = None, build: bool = False) -> int:
    from utg_pytest.pipeline import load
    from utg_pytest.settings import build as settings

    options = {"logs": (str(path),)} | ({"max_probes": max_probes} if max_probes else {})
    loaded = load(settings(options, rootdir=str(path.parent)))
    assert not loaded.errors, loaded.errors[:3]
    return len(list(loaded.probes) if build else loaded.probes)


RUNS = {
    "loop": plain_loop,
    "utg": utg_loader,
    "utg-sample": lambda path: utg_loader(path, max_probes=2000, build=True),
    "utg-all": lambda path: utg_loader(path, build=True),
}


def child(which: str, path: Path) -> None:
    started = time.perf_counter()
    count = RUNS[which](path)
    elapsed = time.perf_counter() - started
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"probes": count, "seconds": elapsed, "peak_mb": peak_mb}))


def measure(which: str, path: Path) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", which, "--path", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--messages", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--child", choices=sorted(RUNS))
    parser.add_argument("--path")
    args = parser.parse_args()
    if args.child:
        child(args.child, Path(args.path))
        return
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "big.jsonl"
        expected = write_log(path, args.conversations, args.messages)
        size_mb = path.stat().st_size / 1e6
        runs: dict[str, list[dict[str, float]]] = {which: [] for which in RUNS}
        for _ in range(args.repeat):
            for which in RUNS:
                runs[which].append(measure(which, path))
    loop, utg = median(runs["loop"]), median(runs["utg"])
    assert loop["probes"] == utg["probes"] == expected == median(runs["utg-all"])["probes"], (loop, utg, expected)
    print(
        f"ingestion: {args.conversations * args.messages} messages, {args.conversations} conversations, "
        f"{size_mb:.0f} MB -> {expected} probes; medians of {args.repeat} alternating runs"
    )
    labels = {
        "loop": "json.loads loop",
        "utg": "utg loader",
        "utg-sample": "utg, 2,000-probe sample built",
        "utg-all": "utg, every probe built",
    }
    for which, label in labels.items():
        found = median(runs[which])
        print(f"  {label:30s} {found['seconds']:5.2f} s, peak {found['peak_mb']:4.0f} MB")
    print(f"  utg speed-up over the loop {loop['seconds'] / utg['seconds']:.2f}x (target >= 3x, peak < 2048 MB)")


def median(found: list[dict[str, float]]) -> dict[str, float]:
    return {key: statistics.median(run[key] for run in found) for key in found[0]}


if __name__ == "__main__":
    main()
