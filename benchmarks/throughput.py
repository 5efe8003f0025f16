"""A run against a loopback OpenAI-compatible server answering after a fixed delay, stage by stage.

- orchestration: the concurrent generation phase alone, wall time over the ideal probes x delay / concurrency;
- end to end: generation plus scoring (embeddings encoded while requests are in flight), over the same ideal;
- cold scoring: the same run replayed from the cache with no embedding cached, against one bare `encode` of exactly
  the distinct texts it had to encode (the embedding model loaded beforehand for both);
- cached re-run: the same probes replayed by a real `pytest` run, against a real `pytest` run of as many trivial
  parametrized tests (both with assertion rewriting as configured: this machine sets PYTHONDONTWRITEBYTECODE).

Each is repeated (`--repeats`, in turn) and the median ratio reported.

    python benchmarks/throughput.py [--probes 1000] [--delay 0.5] [--concurrency 32] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import sqlite3
import statistics
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
from utg_pytest.scoring.embeddings import Embedder, load_model
from utg_pytest.scoring.phase import known_texts, references_for
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
    backend = LazyBackend(lambda: factory_for(settings.model).open(settings.model))

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


def end_to_end(settings: Settings) -> float:
    """Wall time of generation plus scoring in one run, recording into the cache (the embedding model loaded
    beforehand, as in a session that already scored once)."""
    Embedder().encode(["loads the model before the clock starts"])
    loaded = load(settings)
    started = time.perf_counter()
    record = Run(settings, loaded).record()
    wall = time.perf_counter() - started
    assert all(p.result.ok for p in record.probes)
    return wall


def cold_scoring(settings: Settings, cache: Path) -> tuple[float, float, int]:
    """The run replayed with every prediction cached and no embedding, against a bare encode of the distinct texts
    that run needs: its known texts and its predictions, each once."""
    with sqlite3.connect(cache / "generations.sqlite3") as db:
        db.execute("DELETE FROM embeddings")
    embedder = Embedder()
    model = load_model(embedder.name)
    model.encode(["loads the model before the clock starts"])
    loaded = load(settings)
    started = time.perf_counter()
    record = Run(settings, loaded).record()
    scoring = time.perf_counter() - started
    references = references_for(loaded.probes, settings.logs.sample_seed, loaded.unsharded)
    texts = set(known_texts(loaded.probes, references))
    texts |= {p.result.prediction for p in record.probes if p.result.prediction}
    distinct = sorted(text for text in texts if text.strip())
    started = time.perf_counter()
    model.encode(distinct, batch_size=embedder.batch_size, normalize_embeddings=True, convert_to_numpy=True)
    return scoring, time.perf_counter() - started, len(distinct)


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


TRIVIAL = "import pytest\n\n\n@pytest.mark.parametrize('number', range({n}))\ndef test_trivial(number):\n    pass\n"


def report(name: str, figure: float, bound: float, above: bool = False) -> None:
    """One target line, which `run.py` collects into its table."""
    met = figure >= bound if above else figure <= bound
    print(f"target: {name} = {figure:.3f} (target {'>=' if above else '<='} {bound}) {'met' if met else 'MISSED'}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--probes", type=int, default=1000)
    parser.add_argument("--delay", type=float, default=0.5)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch, loopback(args.delay) as url:
        root = Path(scratch)
        (root / "empty").mkdir()
        (root / "trivial").mkdir()
        log = root / "logs.jsonl"
        probes = write_log(log, args.probes // 2, 5)
        (root / "trivial" / "test_trivial.py").write_text(TRIVIAL.format(n=probes))
        options = {
            "logs": (str(log),),
            "base_url": url,
            "model": "bench",
            "prompt": "roleswap",
            "concurrency": args.concurrency,
            "retries": 0,
        }
        ideal = probes * args.delay / args.concurrency
        print(
            f"{probes} probes, {args.delay * 1000:.0f} ms server, concurrency {args.concurrency}: ideal {ideal:.2f} s"
        )
        rows: dict[str, list[float]] = {"orchestration": [], "end to end": [], "scoring": [], "bare encode": []}
        rows |= {"replay": [], "trivial": []}
        texts = 0
        for repeat in range(args.repeats):
            cache = root / f"cache-{repeat}"
            rows["orchestration"].append(orchestration(build({**options, "cache_mode": "off"}, rootdir=scratch))[0])
            rows["end to end"].append(end_to_end(build({**options, "cache": str(cache)}, rootdir=scratch)))
            replay = build({**options, "cache": str(cache), "cache_mode": "replay"}, rootdir=scratch)
            scoring, bare, texts = cold_scoring(replay, cache)
            rows["scoring"].append(scoring)
            rows["bare encode"].append(bare)
            common = ["--utg-logs", str(log), "--utg-base-url", url, "--utg-model", "bench", "--utg-prompt", "roleswap"]
            common += ["--utg-cache", str(cache), "--rootdir", scratch, str(root / "empty")]
            rows["replay"].append(pytest_wall([*common, "--utg-cache-mode", "replay"], root))
            rows["trivial"].append(pytest_wall(["--rootdir", scratch, str(root / "trivial")], root))
            print(f"repeat {repeat + 1}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in rows.items()), flush=True)

        def ratio(a: str, b: str | float) -> float:
            return statistics.median(
                x / (y if isinstance(b, str) else b)
                for x, y in zip(rows[a], rows[b] if isinstance(b, str) else rows[a], strict=True)
            )

        print(f"cold scoring encoded {texts} distinct texts")
        report("endpoint orchestration: generation phase / ideal", ratio("orchestration", ideal), 1.15)
        report("endpoint end to end: generation + scoring / ideal", ratio("end to end", ideal), 1.15)
        report(
            "cold scoring: scoring a replayed run / bare encode of its distinct texts",
            ratio("scoring", "bare encode"),
            1.1,
        )
        report(
            f"cached re-run: pytest replaying {probes} probes / pytest of {probes} trivial tests",
            ratio("replay", "trivial"),
            1.5,
        )


if __name__ == "__main__":
    main()
