"""Turn log paths (files, directories, globs) into Conversations and LogErrors, keeping file and line exact."""

from __future__ import annotations

import gc
import glob
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from utg_pytest.ingest.jsonl import read_jsonl
from utg_pytest.model import Conversation, LogError

LOG_SUFFIXES = (".jsonl", ".jsonl.gz")


class LogPathError(ValueError):
    """A --utg-logs value that matches no log file."""


@dataclass(frozen=True)
class LoadedLogs:
    conversations: tuple[Conversation, ...]
    errors: tuple[LogError, ...]
    files: tuple[Path, ...]


def is_log_file(path: Path) -> bool:
    return path.is_file() and path.name.endswith(LOG_SUFFIXES)


def resolve_paths(specs: Iterable[str]) -> list[Path]:
    """Expand each spec to log files, in a stable order, each file once."""
    found: dict[Path, None] = {}
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            matches = sorted(p for p in path.rglob("*") if is_log_file(p))
        elif path.is_file():
            matches = [path]
        else:
            matches = sorted(p for p in map(Path, glob.glob(spec, recursive=True)) if is_log_file(p))
        if not matches:
            raise LogPathError(f"--utg-logs {spec}: no {' or '.join(LOG_SUFFIXES)} file found there")
        for match in matches:
            found.setdefault(match.resolve(), None)
    return list(found)


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    """Loading allocates millions of acyclic objects (records, tuples, strings); the cycle collector would rescan the
    growing heap again and again, which measured as half the load time of a large log. Nothing here makes cycles."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load(files: Iterable[Path], display: dict[Path, str] | None = None) -> LoadedLogs:
    """Read every file; `display` maps a file to the name used in node ids and messages (default: its path)."""
    with no_cycle_collection():
        return _load(files, display)


def _load(files: Iterable[Path], display: dict[Path, str] | None) -> LoadedLogs:
    conversations: list[Conversation] = []
    errors: list[LogError] = []
    paths = list(files)
    for path in paths:
        name = (display or {}).get(path, str(path))
        seen: dict[str, int] = {}
        for item in read_jsonl(path, name):
            if isinstance(item, LogError):
                errors.append(item)
            elif item.id in seen:
                errors.append(
                    LogError(
                        name,
                        item.line,
                        "/id",
                        f"duplicate conversation id {item.id!r} (first on line {seen[item.id]})",
                    )
                )
            else:
                seen[item.id] = item.line
                conversations.append(item)
    return LoadedLogs(tuple(conversations), tuple(errors), tuple(paths))
