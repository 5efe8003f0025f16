"""Measure the prompt strategies on the shipped fixtures with the embedded model.

Prints one Markdown row per (strategy, temperature): mean semantic and lexical similarity to the real user turn, next
to what copying the last assistant message scores on the same probes, plus generation time.

    python benchmarks/strategies.py [--logs fixtures/logs] [--temperatures 0,0.7]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

from utg_pytest import stats
from utg_pytest.scoring import similarity
from utg_pytest.settings import PROMPT_STRATEGIES, Settings
from utg_pytest.suite import Suite


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--logs", default="fixtures/logs")
    parser.add_argument("--temperatures", default="0,0.7")
    parser.add_argument("--strategies", default=",".join(PROMPT_STRATEGIES))
    args = parser.parse_args()

    base = Settings(logs=(args.logs,), rootdir=str(Path.cwd()))
    reference = Suite(base)
    reference.load()
    probes = reference.probes
    embedder = similarity.Embedder()
    echo_pairs = [(next(m.text for m in reversed(p.context) if m.role == "assistant"), p.target) for p in probes]
    echo_semantic = stats.mean(similarity.semantic(echo_pairs, embedder))
    echo_lexical = stats.mean([similarity.lexical(a, b) for a, b in echo_pairs])
    print(
        f"{len(probes)} probes; copying the last assistant message: semantic {echo_semantic:.3f}, "
        f"lexical {echo_lexical:.3f}\n"
    )
    print("| prompt | temperature | semantic mean [95% CI] | lexical mean | empty | s/probe |")
    print("|---|---|---|---|---|---|")
    for strategy in args.strategies.split(","):
        for temperature in (float(t) for t in args.temperatures.split(",")):
            suite = Suite(replace(base, prompt=strategy, temperature=temperature))  # type: ignore[arg-type]
            suite.load()
            started = time.perf_counter()
            suite.ensure_results()
            elapsed = time.perf_counter() - started
            results = [r for r in suite.results() if r.ok]
            semantic = [r.scores["semantic"] for r in results]
            lexical = [r.scores["lexical"] for r in results]
            low, high = stats.bootstrap_mean_ci(semantic)
            empty = sum(1 for r in results if not (r.prediction or "").strip())
            print(
                f"| {strategy} | {temperature:g} | {stats.mean(semantic):.3f} [{low:.3f}..{high:.3f}] | "
                f"{stats.mean(lexical):.3f} | {empty} | {elapsed / len(probes):.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
