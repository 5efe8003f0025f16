"""Generation throughput against a loopback OpenAI-compatible server answering after a fixed delay.

- orchestration: the concurrent generation phase alone, wall time over the ideal probes x delay / concurrency;
- full phase: generation plus scoring (embeddings overlap the requests), next to encoding the same texts alone;
- cached re-run: the same probes replayed from the cache by a real `pytest` run, probes per second with pytest's own
  start-up (an empty run, measured alongside) subtracted.

    python benchmarks/throughput.py [--probes 2000] [--delay 0.1] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from synthetic import write_log

from utg_pytest.generate import factory_for
from utg_pytest.pipeline import Run, load
from utg_pytest.runner import LazyBackend, Limits, generate_all
from utg_pytest.scoring.embeddings import Embedder, TextVectors
from utg_pytest.settings import Settings, build

HERE = Path(__file__).parent


@contextmanager
def loopback(delay: float) -> Iterator[str]:
    server = subprocess.Popen(
        [sys.executable, str(HERE / "loopback.py"), "--delay", str(delay)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.kill()
        server.wait()


def orchestration(settings: Settings) -> tuple[float, int]:
    loaded = load(settings)
    backend = LazyBackend(lambda: factory_for(settings.model).open(settings.model), remote=True)

    async def phase() -> list[object]:
        limits = Limits(settings.limits)
        try:
            return list(await generate_all(loaded.probes, backend, settings.generation, limits, settings.model.retries))
        finally:
            await backend.aclose()

    started = time.perf_counter()
    outcomes = asyncio.run(phase())
    wall = time.perf_counter() - started
    failed = [o.error for o in outcomes if getattr(o, "error", None) is not None]
    assert not failed, failed[:3]
    return wall, len(outcomes)


def full_phase(settings: Settings) -> tuple[float, float]:
    """Wall time of generation plus scoring, and of encoding the same distinct texts with nothing else running (the
    model loaded beforehand for both)."""
    embedder = Embedder()
    embedder.encode(["loads the model before the clock starts"])
    loaded = load(settings)
    started = time.perf_counter()
    record = Run(settings, loaded).record()
    wall = time.perf_counter() - started
    results = [p.result for p in record.probes]
    assert all(r.ok for r in results)
    texts = {r.prediction for r in results if r.prediction} | {p.target for p in loaded.probes}
    texts |= {m.text for p in loaded.probes for m in p.context}
    started = time.perf_counter()
    TextVectors(embedder).add_all(sorted(texts))
    return wall, time.perf_counter() - started


def pytest_wall(args: list[str], cwd: Path) -> float:
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=False,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--probes", type=int, default=2000)
    parser.add_argument("--delay", type=float, default=0.1)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch, loopback(args.delay) as url:
        root = Path(scratch)
        (root / "empty").mkdir()
        log = root / "logs.jsonl"
        probes = write_log(log, args.probes // 2, 5)
        options = {
            "logs": (str(log),),
            "base_url": url,
            "model": "bench",
            "prompt": "roleswap",
            "concurrency": args.concurrency,
            "retries": 0,
            "cache": str(root / "cache"),
        }
        settings = build({**options, "cache_mode": "off"}, rootdir=scratch)
        ideal = probes * args.delay / args.concurrency
        cold, n = orchestration(settings)
        wall, _ = orchestration(settings)
        print(f"orchestration: {n} probes, {args.delay * 1000:.0f} ms server, concurrency {args.concurrency}")
        print(f"  wall {wall:.2f} s, ideal {ideal:.2f} s, ratio {wall / ideal:.3f} (target <= 1.15)")
        print(f"  first run in the process, importing the openai client inside the clock: ratio {cold / ideal:.3f}")

        phase, encode_only = full_phase(build({**options, "cache_mode": "use"}, rootdir=scratch))
        print(f"full phase (generation + scoring, cache recording): wall {phase:.2f} s")
        print(
            f"  encoding the same texts alone {encode_only:.2f} s; phase / max(ideal, encoding) "
            f"{phase / max(ideal, encode_only):.3f}, phase / (ideal + encoding) {phase / (ideal + encode_only):.3f}"
        )

        common = ["--utg-logs", str(log), "--utg-base-url", url, "--utg-model", "bench", "--utg-prompt", "roleswap"]
        common += ["--utg-cache", str(root / "cache"), "--rootdir", scratch, str(root / "empty")]
        replayed = pytest_wall([*common, "--utg-cache-mode", "replay"], root)
        empty = pytest_wall(["--rootdir", scratch, str(root / "empty")], root)
        print(f"cached re-run (replay, real pytest): {replayed:.2f} s, empty pytest run {empty:.2f} s")
        print(f"  {probes / (replayed - empty):.0f} probes/s with start-up excluded (target >= 1000)")


if __name__ == "__main__":
    main()
