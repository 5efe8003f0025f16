"""The README's main job with the embedded model: idle and beside a competing CPU-bound process, against its two
phases run alone, and the plugin's generation phase against bare llama-cpp-python completing the same prompts.

Real `pytest` runs on the shipped fixtures, in turn, round after round (medians of the per-round ratios):
- main job: a cold cache, as a new user runs it;
- busy: the same with `yes > /dev/null` running;
- generation alone: every embedding cached, so scoring costs nothing but bookkeeping;
- scoring alone: every prediction cached, so the model never loads;
- bare: llama-cpp-python (same model, threads and sampling, its own prefix reuse) completing the prompts the plugin
  sends, one after the other, against the plugin's generation phase alone in the same kind of process.

    python benchmarks/embedded.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parent
FIXTURES = ROOT / "fixtures"


def pytest_wall(cache: Path, cwd: Path) -> float:
    command = [sys.executable, "-m", "pytest", "fixtures", "--utg-logs", "fixtures/logs", "-q"]
    command += ["-p", "no:cacheprovider", "--utg-cache", str(cache)]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    wall = time.perf_counter() - started
    if done.returncode not in (0, 1) or "error" in done.stdout.splitlines()[-1]:
        raise RuntimeError(f"pytest exited {done.returncode}: {done.stdout[-3000:]}")
    return wall


def emptied(source: Path, target: Path, table: str) -> Path:
    """A copy of the cache `source` with one of its tables emptied."""
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(source, target)
    with sqlite3.connect(target / "generations.sqlite3") as db:
        db.execute(f"DELETE FROM {table}")
    return target


def worker(kind: str) -> None:
    """One generation phase in this process, printing its wall time: the plugin's, or bare llama-cpp-python's."""
    sys.path.insert(0, str(ROOT))
    from utg_pytest.generate import factory_for
    from utg_pytest.generate.embedded import default_gguf, default_threads, load_llama
    from utg_pytest.generate.prompts import CHATML, ChatTemplate, build_request
    from utg_pytest.pipeline import load
    from utg_pytest.runner import LazyBackend, Limits, generate_all
    from utg_pytest.settings import build

    settings = build({"logs": (str(FIXTURES / "logs"),)}, rootdir=str(ROOT))
    probes = list(load(settings).probes)
    generation = settings.generation
    decoding = dict(settings.generation.decoding())
    if kind == "bare":
        import os

        path = default_gguf()
        llm = load_llama()(
            model_path=str(path),
            n_ctx=settings.model.n_ctx,
            n_threads=default_threads(path.stat().st_size, os.cpu_count() or 1),
            n_threads_batch=os.cpu_count() or 1,
            seed=0,
            verbose=False,
        )
        eos = llm.detokenize([llm.token_eos()]).decode("utf-8", errors="ignore")
        template = ChatTemplate(llm.metadata.get("tokenizer.chat_template") or CHATML, eos_token=eos)
        requests = [build_request(probe, generation.prompt, template) for probe in probes]
        started = time.perf_counter()
        for request in requests:
            llm.create_completion(
                prompt=request.prompt,
                stop=list(request.stops),
                temperature=generation.temperature,
                max_tokens=generation.max_tokens,
                seed=0,
                **decoding,
            )
        print(time.perf_counter() - started)
        return
    backend = LazyBackend(lambda: factory_for(settings.model).open(settings.model))

    async def phase() -> float:
        await backend.get()
        started = time.perf_counter()
        try:
            outcomes = await generate_all(probes, backend, generation, Limits(settings.limits), 0)
        finally:
            await backend.aclose()
        assert all(o.prediction is not None for o in outcomes)
        return time.perf_counter() - started

    print(asyncio.run(phase()))


def in_worker(kind: str) -> float:
    done = subprocess.run(
        [sys.executable, __file__, "--worker", kind], capture_output=True, text=True, check=True, cwd=ROOT
    )
    return float(done.stdout.split()[-1])


def busy(run: Callable[[], float]) -> float:
    competitor = subprocess.Popen(["yes"], stdout=subprocess.DEVNULL)
    try:
        return run()
    finally:
        competitor.kill()
        competitor.wait()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", choices=("bare", "plugin"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=None, help="also write every measurement as JSON")
    args = parser.parse_args()
    if args.worker:
        worker(args.worker)
        return
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        shutil.copytree(FIXTURES, root / "fixtures")
        full = root / "full"
        pytest_wall(full, root)  # warm-up: the file cache, and a complete cache to derive the others from
        rows = []
        for number in range(args.rounds):
            row = {
                "main": pytest_wall(root / f"cold-{number}", root),
                "busy": busy(lambda number=number: pytest_wall(root / f"busy-{number}", root)),
                "generation_alone": pytest_wall(emptied(full, root / "no-generations", "generations"), root),
                "scoring_alone": pytest_wall(emptied(full, root / "no-embeddings", "embeddings"), root),
                "bare": in_worker("bare"),
                "plugin_generation": in_worker("plugin"),
            }
            rows.append(row)
            print(f"round {number + 1}: " + ", ".join(f"{k} {v:.1f} s" for k, v in row.items()), flush=True)
    if args.out is not None:
        args.out.write_text(json.dumps(rows, indent=2) + "\n")

    def median(figure: Callable[[dict[str, float]], float]) -> float:
        return statistics.median(figure(row) for row in rows)

    print("medians: " + ", ".join(f"{k} {median(lambda r, k=k: r[k]):.1f} s" for k in rows[0]))
    report(
        "busy machine: main job with `yes` running / idle",
        median(lambda r: r["busy"] / r["main"]),
        1.5,
    )
    report(
        "embedded overlap: main job / max(generation alone, scoring alone)",
        median(lambda r: r["main"] / max(r["generation_alone"], r["scoring_alone"])),
        1.1,
    )
    report(
        "embedded generation: plugin's phase / bare llama-cpp-python with prefix reuse",
        median(lambda r: r["plugin_generation"] / r["bare"]),
        1.1,
    )


def report(name: str, figure: float, bound: float) -> None:
    """One target line, which `run.py` collects into its table."""
    print(f"target: {name} = {figure:.3f} (target <= {bound}) {'met' if figure <= bound else 'MISSED'}", flush=True)


if __name__ == "__main__":
    main()
