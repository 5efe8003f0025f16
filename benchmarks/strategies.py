"""Measure the prompt strategies on the shipped fixtures with the embedded model.

One Markdown row per (strategy, temperature): semantic skill over the best reference predictor with its paired 95%
interval, echo rate, mean semantic and lexical similarity, and generation time per probe. The reference predictors'
own means on the same probes are printed first.

    python benchmarks/strategies.py [--logs fixtures/logs] [--temperatures 0,0.7] [--strategies template,roleswap]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from utg_pytest.pipeline import Run, load
from utg_pytest.scoring.skill import echo_count, skill_report
from utg_pytest.settings import PROMPT_STRATEGIES, build


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--logs", default="fixtures/logs")
    parser.add_argument("--temperatures", default="0,0.7")
    parser.add_argument("--strategies", default=",".join(PROMPT_STRATEGIES))
    args = parser.parse_args()

    base = {"logs": (args.logs,), "cache_mode": "off"}
    print(
        "| prompt | temperature | semantic skill [95% CI] | lexical skill | echo rate | semantic | lexical | s/probe |"
    )
    print("|---|---|---|---|---|---|---|---|")
    references = ""
    for strategy in args.strategies.split(","):
        for temperature in (float(t) for t in args.temperatures.split(",")):
            settings = build({**base, "prompt": strategy, "temperature": temperature}, rootdir=str(Path.cwd()))
            loaded = load(settings)
            started = time.perf_counter()
            record = Run(settings, loaded).record()
            per_probe = (time.perf_counter() - started) / len(loaded.probes)
            results = [p.result for p in record.probes]
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
