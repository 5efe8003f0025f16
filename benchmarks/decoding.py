"""Compare decoding settings of the embedded model: which default stops the repetition loops without costing skill.

For each corpus and each setting, runs the pipeline (what `pytest --utg-logs ...` runs) with the template prompt and
prints one Markdown row: degenerate and genuine follow-up rates (heuristic labels, Wilson 95%), semantic skill over
the best reference predictor with its paired 95% interval, mean semantic and lexical similarity, mean completion
tokens (a loop runs to the token limit, so it costs time too; unlike seconds, tokens do not move with the machine's
load) and seconds per prediction (first to last prediction of the generation phase, so the model load is left out).
Settings run one after the other, never in parallel.

Each (corpus, setting) has its own record/replay cache directory under --cache-root, so a rerun generates nothing
and recomputes the scores and labels with the current code (a reworked labeller); delete one directory to regenerate
that setting. A fully cached rerun keeps the generation time measured when the predictions were made.

    python benchmarks/decoding.py [--settings t0,t0.7] [--corpora fixtures,real] [--real-probes 120]
        [--cache-root /tmp/utg_decoding/cache] [--out benchmarks/data/decoding/results.json]
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from utg_pytest.figures import Rate
from utg_pytest.pipeline import Run, load
from utg_pytest.runner import Status
from utg_pytest.scoring.labels import DEGENERATE, GENUINE
from utg_pytest.settings import build
from utg_pytest.stats import wilson_interval


@dataclass(frozen=True)
class Decoding:
    name: str
    temperature: float
    seed: int | None = None
    top_p: float | None = None
    min_p: float | None = None
    repeat_penalty: float | None = None

    def options(self) -> dict[str, Any]:
        """The plugin options this setting sets; unset ones keep the backend's defaults (llama.cpp: top_p 0.95,
        min_p 0.05, top_k 40, repeat_penalty 1.0 over the last 64 generated tokens)."""
        chosen = asdict(self)
        del chosen["name"]
        return {name: value for name, value in chosen.items() if value is not None}


SETTINGS = (
    Decoding("t0", 0.0),
    Decoding("t0_rp1.1", 0.0, repeat_penalty=1.1),
    Decoding("t0_rp1.3", 0.0, repeat_penalty=1.3),
    Decoding("t0.7", 0.7, seed=0),
    Decoding("t0.7_minp0.1", 0.7, seed=0, min_p=0.1),
    Decoding("t0.7_rp1.1", 0.7, seed=0, repeat_penalty=1.1),
    Decoding("t0.4_rp1.1", 0.4, seed=0, repeat_penalty=1.1),
    Decoding("t0.7_minp0.1_rp1.1", 0.7, seed=0, min_p=0.1, repeat_penalty=1.1),
)
BY_NAME = {setting.name: setting for setting in SETTINGS}

CORPORA = {
    "fixtures": "fixtures/logs",
    "real": "tests/data/real_predictions/conversations.jsonl",
}
"""The shipped fixtures, and the blind-labelled corpus of a different kind (longer threads, other languages)."""


def rate(count: int, n: int) -> dict[str, float]:
    low, high = wilson_interval(count, n) if n else (0.0, 0.0)
    return {"value": count / n if n else 0.0, "ci_low": low, "ci_high": high, "count": count, "n": n}


def measure(corpus: str, setting: Decoding, probes: int | None, cache_root: Path) -> dict[str, Any]:
    """One pipeline run, and what the table needs from it, with each probe's prediction and label for later study."""
    values: dict[str, Any] = {
        "logs": (CORPORA[corpus],),
        "prompt": "template",
        "cache_mode": "use",
        "cache": str(cache_root / corpus / setting.name),
        **setting.options(),
    }
    if probes is not None:
        values |= {"max_probes": probes, "sample_seed": 0}
    settings = build(values, rootdir=str(Path.cwd()))
    loaded = load(settings)
    settled: list[float] = []

    def progress(status: Status) -> None:
        if status.stage == "predictions":
            settled.append(time.perf_counter())

    started = time.perf_counter()
    record = Run(settings, loaded).record(progress)
    elapsed = time.perf_counter() - started
    figures = record.figures
    results = [p.result for p in record.probes]
    scored = [r for r in results if r.ok]
    generated = sum(not r.cached for r in scored)
    labels = [r.label for r in scored]
    semantic = figures.skill["semantic"]
    followup: Rate | None = figures.plausibility.followup
    return {
        "corpus": corpus,
        "setting": setting.name,
        "options": setting.options(),
        "probes": len(results),
        "scored": len(scored),
        "generated": generated,
        "generation_s": (settled[-1] - settled[0]) if generated > 1 else None,
        "run_s": elapsed,
        "degenerate": rate(labels.count(DEGENERATE), len(labels)),
        "genuine_followup": rate(labels.count(GENUINE), len(labels)),
        "followup_gate": asdict(followup) if followup else None,
        "labels": figures.plausibility.labels,
        "labelled_by": figures.plausibility.labelled_by,
        "semantic_skill": {
            "skill": semantic.skill,
            "ci_low": semantic.ci_low,
            "ci_high": semantic.ci_high,
            "best": semantic.best,
            "references": semantic.references,
        },
        "completion_tokens": sum(r.completion_tokens for r in scored) / len(scored),
        "semantic": figures.similarity["semantic"].mean,
        "lexical": figures.similarity["lexical"].mean,
        "predictions": [
            {
                "probe_id": r.probe_id,
                "prediction": r.prediction,
                "label": r.label,
                "semantic": r.scores.get("semantic"),
                "lexical": r.scores.get("lexical"),
                "completion_tokens": r.completion_tokens,
                "cached": r.cached,
            }
            for r in results
        ],
    }


def per_probe_s(found: dict[str, Any]) -> str:
    if found["generation_s"] is None:
        return "cached"
    return f"{found['generation_s'] / (found['generated'] - 1):.2f}"


def row(found: dict[str, Any]) -> str:
    skill = found["semantic_skill"]
    degenerate, genuine = found["degenerate"], found["genuine_followup"]
    return (
        f"| {found['setting']} | {degenerate['value']:.1%} [{degenerate['ci_low']:.1%}..{degenerate['ci_high']:.1%}]"
        f" | {genuine['value']:.1%} [{genuine['ci_low']:.1%}..{genuine['ci_high']:.1%}]"
        f" | {skill['skill']:+.3f} [{skill['ci_low']:+.3f}..{skill['ci_high']:+.3f}] vs {skill['best']}"
        f" | {found['semantic']:.3f} | {found['lexical']:.3f} | {found['completion_tokens']:.1f}"
        f" | {per_probe_s(found)} |"
    )


HEADER = (
    "| setting | degenerate [95% CI] | genuine follow-up [95% CI] | semantic skill [95% CI] | semantic | lexical "
    "| tokens | s/probe |\n|---|---|---|---|---|---|---|---|"
)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--settings", default=",".join(BY_NAME), help=f"comma-separated, of: {', '.join(BY_NAME)}")
    parser.add_argument("--corpora", default=",".join(CORPORA))
    parser.add_argument("--fixtures-probes", type=int, default=None, help="sample of the fixtures (default: all)")
    parser.add_argument("--real-probes", type=int, default=120, help="seeded sample of the real conversations")
    parser.add_argument("--cache-root", type=Path, default=Path("/tmp/utg_decoding/cache"))
    parser.add_argument("--out", type=Path, default=Path("benchmarks/data/decoding/results.json"))
    args = parser.parse_args()

    saved: dict[str, Any] = json.loads(args.out.read_text()) if args.out.is_file() else {}
    sizes = {"fixtures": args.fixtures_probes, "real": args.real_probes}
    for corpus in args.corpora.split(","):
        print(f"\n### {corpus} ({CORPORA[corpus]})\n\n{HEADER}", flush=True)
        for name in args.settings.split(","):
            found = measure(corpus, BY_NAME[name], sizes[corpus], args.cache_root)
            key = f"{corpus}/{name}"
            earlier = saved.get(key)
            if found["generation_s"] is None and earlier and earlier.get("probes") == found["probes"]:
                found["generation_s"], found["generated"] = earlier["generation_s"], earlier["generated"]
            saved[key] = found
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(json.dumps(saved, indent=1, ensure_ascii=False) + "\n")
            print(row(found), flush=True)
    print(f"\nRaw results, with every prediction and label: {args.out}")


if __name__ == "__main__":
    main()
