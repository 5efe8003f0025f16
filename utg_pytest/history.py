"""The run store: every run's record kept in one directory (--utg-save-run), so drift is seen across releases, not
only between two of them.

A store is a plain directory of run records, one file per run, named by when the run was made and a digest of its
content: two runs never overwrite each other, a store can be copied, pruned or committed like any folder, and every
file in it is a record `utg report`, `utg compare` and `--utg-baseline` read as they are.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from utg_pytest import record as record_module
from utg_pytest.record import RecordError, RunRecord
from utg_pytest.scoring.labels import DEGENERATE
from utg_pytest.scoring.scorers import LEXICAL, SEMANTIC

if TYPE_CHECKING:
    from utg_pytest.baseline import Comparison
    from utg_pytest.settings import DriftSettings

SUFFIX = ".utg-run.jsonl.gz"


def save(directory: Path, record: RunRecord) -> Path:
    """Add a run to the store; returns its file."""
    text = record_module.dumps(record)
    stamp = record.header.created.replace(":", "").replace("-", "").replace("+0000", "Z")
    digest = hashlib.sha256(text.encode()).hexdigest()[:10]
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{stamp}-{digest}{SUFFIX}"
    record_module.write(path, record)
    return path


def load(directory: Path, leave_out: RunRecord | None = None) -> list[RunRecord]:
    """The store's runs, oldest first (by the time they were made, then by file name). `leave_out` drops the run
    being reported, which a run saved before its report would otherwise show twice."""
    if not directory.is_dir():
        raise RecordError(f"{directory}: no run store here (runs are saved with --utg-save-run {directory})")
    paths = [path for path in sorted(directory.iterdir()) if path.name.endswith((SUFFIX, SUFFIX.removesuffix(".gz")))]
    found = [(record_module.read(path), path.name) for path in paths]
    found.sort(key=lambda item: (item[0].header.created, item[1]))
    return [run for run, _ in found if leave_out is None or run != leave_out]


@dataclass(frozen=True)
class HistoryRow:
    """One run's gated figures, as the history table and trend plot show them."""

    created: str
    backend: str
    probes: int
    scored: int
    semantic: float | None
    lexical: float | None
    followup_rate: float | None
    degenerate_rate: float | None
    echo_rate: float | None
    skill: float | None
    """Semantic skill over the best reference."""
    passed: bool


METRICS: tuple[tuple[str, str], ...] = (
    ("semantic", "semantic"),
    ("lexical", "lexical"),
    ("followup_rate", "follow-up rate"),
    ("degenerate_rate", "degenerate rate"),
    ("echo_rate", "echo rate"),
    ("skill", "skill"),
)
"""(HistoryRow field, heading) of each figure the history follows."""


def row(record: RunRecord) -> HistoryRow:
    figures = record.figures
    labels = figures.plausibility.labels
    labelled = sum(labels.values())
    semantic = figures.similarity.get(SEMANTIC)
    lexical = figures.similarity.get(LEXICAL)
    skill = figures.skill.get(SEMANTIC)
    followup = figures.plausibility.followup
    return HistoryRow(
        created=record.header.created,
        backend=record.header.backend,
        probes=len(record.probes),
        scored=figures.scored,
        semantic=semantic.mean if semantic else None,
        lexical=lexical.mean if lexical else None,
        followup_rate=followup.value if followup else None,
        degenerate_rate=labels.get(DEGENERATE, 0) / labelled if labelled else None,
        echo_rate=figures.echo.value if figures.echo else None,
        skill=skill.skill if skill else None,
        passed=record.passed,
    )


def rows(records: Sequence[RunRecord]) -> list[HistoryRow]:
    return [row(found) for found in records]


def steps(records: Sequence[RunRecord], settings: DriftSettings) -> list[Comparison | str]:
    """Each run judged against the one before it, as the drift gates would: where along the releases it got worse."""
    from utg_pytest.baseline import judge

    return [judge(before, after, settings) for before, after in itertools.pairwise(records)]


def step_verdict(step: Comparison | str) -> str:
    """One word for a step: the worst drift verdict, or 'incomparable'."""
    from utg_pytest.baseline import VERDICTS

    if isinstance(step, str):
        return "incomparable"
    return max((d.verdict for d in step.drifts), key=VERDICTS.index)
