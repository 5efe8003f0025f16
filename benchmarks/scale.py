"""How a run's cost grows with the number of probes: real `pytest` runs against the loopback server at zero latency,
cold (every prediction generated and scored, the cache recording) and then replayed from that cache, at each size.
Reports wall time, time per probe and peak resident memory of the pytest process, and draws the curve.

    python benchmarks/scale.py [--sizes 1000,10000,100000] [--plot benchmarks/scale.svg]

Cost should grow linearly: time per probe about flat across sizes, and 100k probes under 2 GB peak.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from synthetic import write_log
from throughput import loopback

HERE = Path(__file__).parent


PYTEST_WITH_PEAK = (
    "import sys, pytest\n"
    "code = pytest.main(sys.argv[1:])\n"
    "peak = next(line for line in open('/proc/self/status') if line.startswith('VmHWM')).split()[1]\n"
    "sys.stderr.write(f'VmHWM {peak}\\n')\n"
    "sys.exit(code)\n"
)
"""pytest, then the peak of its own memory map (VmHWM): ru_maxrss of a child carries over the peak of the process it
was forked from, which Linux keeps across exec."""


def measured(args: list[str], cwd: Path) -> tuple[float, float]:
    """Wall seconds and peak resident MB of one pytest process."""
    command = [sys.executable, "-c", PYTEST_WITH_PEAK, "-p", "no:cacheprovider", "-q", *args]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1):
        raise RuntimeError(f"pytest exited {done.returncode}: {done.stderr[-2000:]}")
    peak = [line for line in done.stderr.splitlines() if line.startswith("VmHWM ")][-1]
    return wall, int(peak.split()[1]) / 1024


def plot(rows: list[dict[str, float]], path: Path) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 3.2))
    per_probe, memory = figure.subplots(1, 2)
    sizes = [row["probes"] for row in rows]
    for mode in ("cold", "cached"):
        per_probe.plot(sizes, [row[f"{mode}_ms_per_probe"] for row in rows], marker="o", label=mode)
        memory.plot(sizes, [row[f"{mode}_peak_mb"] for row in rows], marker="o", label=mode)
    for axis, label in ((per_probe, "ms per probe"), (memory, "peak memory (MB)")):
        axis.set_xscale("log")
        axis.set_xlabel("probes")
        axis.set_ylabel(label)
        axis.set_ylim(bottom=0)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    figure.savefig(path)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--plot", type=Path, default=HERE / "scale.svg")
    parser.add_argument("--out", type=Path, default=None, help="also write the rows as JSON")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as scratch, loopback(0.0) as url:
        root = Path(scratch)
        (root / "empty").mkdir()
        for size in (int(part) for part in args.sizes.split(",")):
            log = root / f"logs-{size}.jsonl"
            probes = write_log(log, size // 2, 5)
            common = ["--utg-logs", str(log), "--utg-base-url", url, "--utg-model", "bench", "--utg-prompt", "roleswap"]
            common += ["--utg-concurrency", str(args.concurrency), "--utg-cache", str(root / f"cache-{size}")]
            common += ["--rootdir", scratch, str(root / "empty")]
            cold, cold_mb = measured([*common, "--utg-cache-mode", "use"], root)
            cached, cached_mb = measured([*common, "--utg-cache-mode", "replay"], root)
            row = {
                "probes": probes,
                "cold_s": cold,
                "cold_ms_per_probe": cold / probes * 1000,
                "cold_peak_mb": cold_mb,
                "cached_s": cached,
                "cached_ms_per_probe": cached / probes * 1000,
                "cached_peak_mb": cached_mb,
            }
            rows.append(row)
            print(
                f"{probes:>7} probes: cold {cold:7.1f} s ({row['cold_ms_per_probe']:.2f} ms/probe, {cold_mb:.0f} MB)"
                f" | cached {cached:6.1f} s ({row['cached_ms_per_probe']:.2f} ms/probe, {cached_mb:.0f} MB)",
                flush=True,
            )
    plot(rows, args.plot)
    print(f"plot: {args.plot}")
    if args.out is not None:
        args.out.write_text(json.dumps(rows, indent=2) + "\n")
    largest = rows[-1]
    peak = max(largest["cold_peak_mb"], largest["cached_peak_mb"])
    status = "met" if peak < 2048 else "MISSED"
    print(f"target: scale: peak memory at {largest['probes']} probes = {peak:.0f} MB (target < 2048 MB) {status}")
    first, last = rows[0], rows[-1]
    for mode in ("cold", "cached"):
        growth = last[f"{mode}_ms_per_probe"] / first[f"{mode}_ms_per_probe"]
        # Linear cost: the time per probe stays flat (a fixed start-up makes it fall at first).
        status = "met" if growth <= 1.25 else "MISSED"
        name = f"scale: {mode} time per probe at {last['probes']} / at {first['probes']} probes"
        print(f"target: {name} = {growth:.3f} (target <= 1.25, linear) {status}")


if __name__ == "__main__":
    main()
