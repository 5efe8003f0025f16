"""The files a run leaves behind when it ends: its record (results, baseline, run store, the live baseline arm) and
its reports (HTML, Markdown, GitHub's job summary), all rendered from the same record and comparison."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from utg_pytest import record as record_module
from utg_pytest.record import RunRecord

if TYPE_CHECKING:
    from utg_pytest.baseline import Comparison
    from utg_pytest.settings import Settings


def unwritable(settings: Settings) -> list[str]:
    """The output paths this run could not write, checked before any prediction is made: a typo in a results path
    must not cost a whole run's generation."""
    files = {
        "--utg-results": settings.output.results,
        "--utg-update-baseline": settings.drift.update_baseline,
        "--utg-compare-results": settings.drift.compare_results,
        "--utg-html": settings.output.html,
        "--utg-markdown": settings.output.markdown,
    }
    found = [f"{flag} {path}: {why}" for flag, path in files.items() if path and (why := _why_not(Path(path), False))]
    store = settings.output.save_run
    if store and (why := _why_not(Path(store), True)):
        found.append(f"--utg-save-run {store}: {why}")
    return found


def _why_not(path: Path, directory: bool) -> str | None:
    if path.is_dir() != directory and path.exists():
        return "is a directory" if path.is_dir() else "is a file, not a directory"
    existing = path if path.exists() else next((p for p in path.parents if p.exists()), Path("."))
    if not existing.is_dir() and existing != path:
        return f"{existing} is a file, not a directory"
    target = existing if existing.is_dir() else existing.parent
    if not os.access(target, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
        return f"cannot write in {target}"
    return None


def write(
    settings: Settings,
    record: RunRecord,
    comparison: Comparison | str | None,
    live_baseline: RunRecord | None = None,
    step_summary: str | None = None,
) -> list[Path]:
    """Write every output the settings ask for; returns the files written. `step_summary` is the path GitHub Actions
    gives in $GITHUB_STEP_SUMMARY, when it is set."""
    written: list[Path] = []
    for target in (settings.output.results, settings.drift.update_baseline):
        if target is not None:
            record_module.write(Path(target), record)
            written.append(Path(target))
    if settings.drift.compare_results is not None and live_baseline is not None:
        record_module.write(Path(settings.drift.compare_results), live_baseline)
        written.append(Path(settings.drift.compare_results))
    output = settings.output
    summary = step_summary if output.step_summary == "auto" and step_summary else None
    reported = output.markdown is not None or summary is not None or output.html is not None
    history: list[RunRecord] = []
    if output.save_run is not None:
        from utg_pytest import history as history_module

        store = Path(output.save_run)
        if reported and store.is_dir():
            history = history_module.load(store)
        written.append(history_module.save(store, record))
    if output.markdown is not None or summary is not None:
        from utg_pytest.report import markdown

        text = markdown.render(record, comparison, history)
        if output.markdown is not None:
            Path(output.markdown).write_text(text, encoding="utf-8")
            written.append(Path(output.markdown))
        if summary is not None:
            with open(summary, "a", encoding="utf-8") as found:
                found.write(text + "\n")
    if output.html is not None:
        from utg_pytest.report import html

        Path(output.html).write_text(html.render(record, comparison, history), encoding="utf-8")
        written.append(Path(output.html))
    return written
