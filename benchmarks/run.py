"""Run every benchmark, one after the other (never two at once: they would share the two cores), printing their
figures, then a table of the performance targets (issue 15) with the figure each measured in this run. `--all` adds
the slow ones: the embedded main job idle and busy (about 15 minutes), the scale curve to 100k probes (about half an
hour) and the prompt-strategy comparison.

    python benchmarks/run.py [--all]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent
QUICK = ("throughput.py", "scoring.py", "startup.py", "ingestion.py", "labels.py")
SLOW = ("embedded.py", "scale.py", "strategies.py")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--all", action="store_true", help="also run the slow benchmarks")
    args = parser.parse_args()
    failed = []
    targets = []
    for script in QUICK + (SLOW if args.all else ()):
        print(f"## {script}", flush=True)
        started = time.perf_counter()
        child = subprocess.Popen(
            [sys.executable, str(HERE / script)], cwd=HERE.parent, stdout=subprocess.PIPE, text=True
        )
        assert child.stdout is not None
        for line in child.stdout:
            print(line, end="", flush=True)
            if line.startswith("target: "):
                targets.append((script, line.removeprefix("target: ").strip()))
        code = child.wait()
        print(f"({script}: {time.perf_counter() - started:.0f} s, exit {code})\n", flush=True)
        if code:
            failed.append(script)
    if targets:
        print("## targets measured in this run")
        print("| benchmark | target | figure |")
        print("|---|---|---|")
        for script, line in targets:
            name, _, figure = line.partition(" = ")
            print(f"| {script} | {name} | {figure} |")
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
