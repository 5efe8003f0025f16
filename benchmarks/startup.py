"""Start-up cost of the installed but unused plugin: a plain `pytest` run of one trivial test, with the plugin loaded
and with it disabled (`-p no:utg`), alternated; medians of the repeats.

    python benchmarks/startup.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def wall(args: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args],
        cwd=cwd,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "test_trivial.py").write_text("def test_one():\n    assert True\n")
        (root / "pytest.ini").write_text("[pytest]\n")
        loaded, disabled = [], []
        for _ in range(args.repeats):
            loaded.append(wall([], root))
            disabled.append(wall(["-p", "no:utg"], root))
    on, off = statistics.median(loaded), statistics.median(disabled)
    print(f"start-up: median of {args.repeats} plain pytest runs of one test")
    print(f"  plugin loaded {on * 1000:.0f} ms, disabled (-p no:utg) {off * 1000:.0f} ms")
    print(f"  difference {(on - off) * 1000:+.0f} ms (target < 50 ms)")


if __name__ == "__main__":
    main()
