"""Per-probe results as plain JSON records (schemas/result.schema.json), one line each."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from utg_pytest.model import Probe, ProbeResult
from utg_pytest.settings import Settings

SCHEMA_VERSION = 1


def record(
    probe: Probe,
    result: ProbeResult,
    thresholds: dict[str, float],
    passed: bool | None,
    settings: Settings,
    backend: str | None,
    sweep: dict[float, ProbeResult] | None = None,
    shuffled: ProbeResult | None = None,
) -> dict[str, Any]:
    return {
        "schema_version": SCHEMA_VERSION,
        "probe_id": probe.id,
        "source": probe.source,
        "line": probe.line,
        "conversation_id": probe.conversation_id,
        "turn": probe.turn,
        "context_messages": len(probe.context),
        "target": probe.target,
        "prediction": result.prediction,
        "raw_output": result.raw_output,
        "error": result.error,
        "scores": dict(result.scores),
        "references": {name: dict(scores) for name, scores in result.references.items()},
        "echo": result.echo,
        "echo_score": result.echo_score,
        "label": result.label,
        "label_reason": result.label_reason or None,
        "labelled_by": result.labelled_by,
        "plausibility": result.plausibility,
        "unjudged": result.unjudged,
        "thresholds": dict(thresholds),
        "passed": passed,
        "attempts": result.attempts,
        "cached": result.cached,
        "latency_s": round(result.latency_s, 4),
        "usage": {
            "prompt_tokens": result.prompt_tokens,
            "completion_tokens": result.completion_tokens,
            "judge_tokens": result.judge_tokens,
        },
        "samples": [variant(s) for s in result.samples],
        "sweep": {f"{t:g}": variant(r) for t, r in (sweep or {}).items()},
        "shuffled": variant(shuffled) if shuffled is not None else None,
        "model": {
            "backend": backend,
            "prompt": settings.prompt,
            "temperature": settings.temperature,
            "max_tokens": settings.max_tokens,
            "seed": settings.seed,
        },
    }


def variant(result: ProbeResult) -> dict[str, Any]:
    """The same probe generated under other conditions (another temperature, a perturbed context), briefly."""
    return {
        "prediction": result.prediction,
        "error": result.error,
        "scores": dict(result.scores),
        "label": result.label,
        "plausibility": result.plausibility,
    }


def write_jsonl(path: Path, records: Iterable[dict[str, Any]]) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for item in records:
            handle.write(json.dumps(item, ensure_ascii=False) + "\n")
            count += 1
    return count
