"""Run every benchmark, one after the other (never two at once: they would share the two cores), printing their
figures. `--all` adds the prompt-strategy comparison, which generates with the embedded model for several minutes.

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
SLOW = ("strategies.py",)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--all", action="store_true", help="also run the slow prompt-strategy comparison")
    args = parser.parse_args()
    failed = []
    for script in QUICK + (SLOW if args.all else ()):
        print(f"## {script}", flush=True)
        started = time.perf_counter()
        code = subprocess.run([sys.executable, str(HERE / script)], cwd=HERE.parent, check=False).returncode
        print(f"({script}: {time.perf_counter() - started:.0f} s, exit {code})\n", flush=True)
        if code:
            failed.append(script)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
