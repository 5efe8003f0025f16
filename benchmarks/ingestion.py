"""Ingestion at scale: a synthetic JSONL log of 1,000,000 messages (100,000 conversations of 10) turned into probes by
utg's loader (validation, line-exact errors, probe records), next to a plain `json.loads` loop that extracts the same
probes with no validation. Time and peak memory of each, measured in separate child processes so that one's memory
does not count against the other.

    python benchmarks/ingestion.py [--conversations 100000] [--messages 10]
"""

from __future__ import annotations

import argparse
import json
import resource
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


def utg_loader(path: Path) -> int:
    from utg_pytest.settings import Settings
    from utg_pytest.suite import Suite

    suite = Suite(Settings(logs=(str(path),), rootdir=str(path.parent)))
    suite.load()
    assert not suite.errors, suite.errors[:3]
    return len(suite.probes)


def child(which: str, path: Path) -> None:
    started = time.perf_counter()
    count = (plain_loop if which == "loop" else utg_loader)(path)
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
    parser.add_argument("--child", choices=("loop", "utg"))
    parser.add_argument("--path")
    args = parser.parse_args()
    if args.child:
        child(args.child, Path(args.path))
        return
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "big.jsonl"
        expected = write_log(path, args.conversations, args.messages)
        size_mb = path.stat().st_size / 1e6
        loop, utg = measure("loop", path), measure("utg", path)
    assert loop["probes"] == utg["probes"] == expected, (loop, utg, expected)
    print(
        f"ingestion: {args.conversations * args.messages} messages, {args.conversations} conversations, "
        f"{size_mb:.0f} MB -> {expected} probes"
    )
    print(f"  json.loads loop  {loop['seconds']:.2f} s, peak {loop['peak_mb']:.0f} MB")
    print(f"  utg loader       {utg['seconds']:.2f} s, peak {utg['peak_mb']:.0f} MB")
    print(f"  utg speed-up over the loop {loop['seconds'] / utg['seconds']:.2f}x (target >= 3x, peak < 2048 MB)")


if __name__ == "__main__":
    main()
