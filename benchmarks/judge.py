"""The LLM judge as a labeller: its agreement with reader A on the real-prediction corpus, beside the heuristic's.

Each item is judged exactly as a run judges it (`judge_one` on the probe's whole label context, the default retries,
seed 0), by the embedded model unless `--base-url` names an endpoint. Verdicts are appended to `--save`
as they come, and a rerun with the same file judges only what is missing: on a shared 2-core machine the embedded
model takes several seconds per item, so run it once, niced:

    nice -n 10 python benchmarks/judge.py --save /tmp/judge-test.jsonl [--split test] [--limit N]

An unjudged item (no valid answer after the retries) counts as a disagreement; the figure over judged items alone is
printed too.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from labels import Item, label_all, real, report  # noqa: E402

from utg_pytest.generate import factory_for  # noqa: E402
from utg_pytest.scoring.embeddings import Embedder  # noqa: E402
from utg_pytest.scoring.judge import judge_one  # noqa: E402
from utg_pytest.scoring.labels import Label, measure  # noqa: E402
from utg_pytest.settings import BackendConfig  # noqa: E402

UNJUDGED = "unjudged"


def saved(path: Path | None) -> dict[str, dict[str, Any]]:
    if path is None or not path.exists():
        return {}
    with path.open(encoding="utf-8") as handle:
        return {record["id"]: record for record in map(json.loads, handle) if record}


async def judge_items(items: list[Item], config: BackendConfig, path: Path | None) -> dict[str, dict[str, Any]]:
    """Verdicts for every item, from `path` where already there; new ones are appended to it one by one."""
    found = saved(path)
    missing = [item for item in items if item.id not in found]
    if not missing:
        return found
    backend = await factory_for(config).open(config)
    started = time.perf_counter()
    try:
        for done, item in enumerate(missing, 1):
            verdict = await judge_one(backend, item.context, item.prediction, config.retries, 0)
            judgement = verdict.judgement
            record = {
                "id": item.id,
                "label": judgement.label if judgement else UNJUDGED,
                "plausibility": judgement.plausibility if judgement else None,
                "reason": judgement.reason if judgement else verdict.error,
                "tokens": verdict.tokens,
            }
            found[item.id] = record
            if path is not None:
                with path.open("a", encoding="utf-8") as handle:
                    handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            elapsed = time.perf_counter() - started
            print(f"  judged {done}/{len(missing)} ({elapsed / done:.1f} s/item)", file=sys.stderr, flush=True)
    finally:
        await backend.aclose()
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--split", default="test", choices=("dev", "test"))
    parser.add_argument("--limit", type=int, help="judge only the first N items (a smoke test)")
    parser.add_argument("--save", type=Path, help="JSONL file the verdicts are appended to and resumed from")
    parser.add_argument("--base-url", help="an OpenAI-compatible endpoint to judge with instead of the embedded model")
    parser.add_argument("--model", help="the endpoint's model name")
    parser.add_argument("--errors", action="store_true", help="list the items where a labeller disagrees")
    args = parser.parse_args()
    items = real(args.split)[: args.limit]
    config = BackendConfig(base_url=args.base_url, model=args.model)
    started = time.perf_counter()
    verdicts = asyncio.run(judge_items(items, config, args.save))
    elapsed = time.perf_counter() - started
    judged = [Label(verdicts[item.id]["label"], verdicts[item.id]["reason"] or "") for item in items]
    unjudged = sum(label.label == UNJUDGED for label in judged)
    who = args.base_url or "embedded model"
    print(f"LLM judge ({who}): {unjudged} of {len(items)} unjudged; labels {dict(Counter(j.label for j in judged))}")
    report(f"LLM judge, real ({args.split})", items, judged, elapsed, args.errors)
    kept = [(item.label, label.label) for item, label in zip(items, judged, strict=True) if label.label != UNJUDGED]
    if kept:
        alone = measure("judged only", [g for g, _ in kept], [p for _, p in kept])
        print(
            f"  over the {alone.items} judged items alone: agreement {alone.agreement:.1%}, genuine_followup "
            f"precision {alone.genuine_precision:.2f}, recall {alone.genuine_recall:.2f}"
        )
    started = time.perf_counter()
    heuristic = label_all(items, Embedder())
    report(f"heuristic, real ({args.split})", items, heuristic, time.perf_counter() - started, args.errors)


if __name__ == "__main__":
    main()
