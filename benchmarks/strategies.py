"""Measure the prompt strategies on the shipped fixtures with the embedded model.

One Markdown row per (strategy, temperature): semantic skill over the best reference predictor with its paired 95%
interval, echo rate, mean semantic and lexical similarity, and generation time per probe. The reference predictors'
own means on the same probes are printed first.

    python benchmarks/strategies.py [--logs fixtures/logs] [--temperatures 0,0.7] [--strategies template,roleswap]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

from utg_pytest.scoring.skill import echo_count, skill_report
from utg_pytest.settings import PROMPT_STRATEGIES, Settings
from utg_pytest.suite import Suite


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--logs", default="fixtures/logs")
    parser.add_argument("--temperatures", default="0,0.7")
    parser.add_argument("--strategies", default=",".join(PROMPT_STRATEGIES))
    args = parser.parse_args()

    base = Settings(logs=(args.logs,), rootdir=str(Path.cwd()), cache_mode="off")
    print(
        "| prompt | temperature | semantic skill [95% CI] | lexical skill | echo rate | semantic | lexical | s/probe |"
    )
    print("|---|---|---|---|---|---|---|---|")
    references = ""
    for strategy in args.strategies.split(","):
        for temperature in (float(t) for t in args.temperatures.split(",")):
            suite = Suite(replace(base, prompt=strategy, temperature=temperature))  # type: ignore[arg-type]
            suite.load()
            started = time.perf_counter()
            suite.ensure_results()
            per_probe = (time.perf_counter() - started) / len(suite.probes)
            results = suite.results()
            semantic = skill_report(results, "semantic")
            lexical = skill_report(results, "lexical")
            assert semantic is not None
            assert lexical is not None
            echoes, n = echo_count(results)
            interval = f"[{semantic.ci_low:+.3f}..{semantic.ci_high:+.3f}]"
            print(
                f"| {strategy} | {temperature:g} | {semantic.skill:+.3f} {interval}"
                f" | {lexical.skill:+.3f} | {echoes / n:.1%} | {semantic.model:.3f} | {lexical.model:.3f} "
                f"| {per_probe:.2f} |",
                flush=True,
            )
            references = ", ".join(
                f"{name} {semantic.references[name]:.3f} / {lexical.references[name]:.3f}"
                for name in semantic.references
            )
    print(f"\nReference predictors on the same {n} probes (semantic / lexical): {references}")


if __name__ == "__main__":
    main()
