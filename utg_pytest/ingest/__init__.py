"""Turn log paths (files, directories, globs) into LogIndexes and LogErrors, keeping file and line exact.

Small files are parsed line by line, exactly. Files from BULK_FROM_BYTES up take the bulk path (ingest.bulk): polars
recognises the plainly valid lines in one pass and only the others are parsed here; both paths give the same index.
"""

from __future__ import annotations

import gc
import glob
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from utg_pytest.ingest.jsonl import parse_line, read_jsonl
from utg_pytest.model import Conversation, LogError, LogIndex

LOG_SUFFIXES = (".jsonl", ".jsonl.gz")
BULK_FROM_BYTES = 8 * 2**20
"""On-disk size from which a file takes the bulk path. Importing polars costs about 0.15 s, what the exact parser
spends on some 4 MB of log; the bulk path reads a file about seven times faster."""


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    """Loading allocates millions of acyclic objects (records, tuples, strings); the cycle collector would rescan the
    growing heap again and again, which measured as half the time of loading a large log. Nothing here makes cycles."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


class LogPathError(ValueError):
    """A --utg-logs value that matches no log file."""


@dataclass(frozen=True)
class LoadedLogs:
    logs: tuple[LogIndex, ...]
    errors: tuple[LogError, ...]
    files: tuple[Path, ...]

    def conversations(self) -> Iterator[Conversation]:
        """Every valid conversation, in file and line order (parsing it if it was not kept)."""
        for log in self.logs:
            for position in range(len(log.lines)):
                yield log.read(position)


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


def load(files: Iterable[Path], display: dict[Path, str] | None = None, bulk_from: int = BULK_FROM_BYTES) -> LoadedLogs:
    """Read every file; `display` maps a file to the name used in node ids and messages (default: its path)."""
    logs: list[LogIndex] = []
    errors: list[LogError] = []
    paths = list(files)
    with no_cycle_collection():
        for path in paths:
            name = (display or {}).get(path, str(path))
            reader = _load_bulk if path.stat().st_size >= bulk_from else _load_exact
            log, found = reader(path, name)
            logs.append(log)
            errors.extend(found)
    return LoadedLogs(tuple(logs), tuple(errors), tuple(paths))


def _first_of_each_id(name: str, entries: Iterable[tuple[int, str]], errors: list[LogError]) -> list[int]:
    """The lines of (line, id) entries, in line order, whose id is not on an earlier line; each later one becomes an
    error."""
    seen: dict[str, int] = {}
    kept: list[int] = []
    for line, conversation_id in entries:
        if conversation_id in seen:
            reason = f"duplicate conversation id {conversation_id!r} (first on line {seen[conversation_id]})"
            errors.append(LogError(name, line, "/id", reason))
        else:
            seen[conversation_id] = line
            kept.append(line)
    return kept


def index_conversations(name: str, conversations: Sequence[Conversation]) -> LogIndex:
    """The index of conversations already parsed, kept in memory."""
    kept = list(conversations)
    return LogIndex(name, [c.line for c in kept], [c.id for c in kept], kept.__getitem__)


def _load_exact(path: Path, name: str) -> tuple[LogIndex, list[LogError]]:
    by_line: dict[int, Conversation] = {}
    errors: list[LogError] = []
    for item in read_jsonl(path, name):
        if isinstance(item, LogError):
            errors.append(item)
        else:
            by_line[item.line] = item
    kept = _first_of_each_id(name, ((line, c.id) for line, c in by_line.items()), errors)
    errors.sort(key=lambda error: error.line)
    return index_conversations(name, [by_line[line] for line in kept]), errors


def _load_bulk(path: Path, name: str) -> tuple[LogIndex, list[LogError]]:
    """Plain lines are outlined by the bulk scan; the others are parsed exactly now (their errors are reported) and
    kept. Of two lines with one id, the later is reported and dropped."""
    import polars as pl

    from utg_pytest.ingest import bulk

    scan = bulk.scan(path)
    kept: dict[int, Conversation] = {}
    errors: list[LogError] = []
    for number in scan.others:
        parsed = parse_line(scan.read(number), name, number)
        if isinstance(parsed, LogError):
            errors.append(parsed)
        elif parsed is not None:
            kept[number] = parsed
    ids = dict(zip(scan.lines, scan.ids, strict=True))
    ids.update((line, c.id) for line, c in kept.items())
    lines = (
        scan.lines
        if not kept and len(ids) == len(scan.ids) == len(set(scan.ids))
        else _first_of_each_id(name, ((line, ids[line]) for line in sorted(ids)), errors)
    )
    errors.sort(key=lambda error: error.line)
    starts = pl.Series("starts", lines, dtype=pl.Int64)
    outline = scan.outline.with_columns(pl.col("number").cast(pl.Int64))
    if len(lines) != len(scan.lines) + len(kept):
        outline = outline.filter(pl.col("number").is_in(starts.implode()))
    outline = outline.select(
        position=starts.search_sorted(outline.get_column("number")).cast(pl.UInt32), role="role", blank="blank"
    )

    def read(position: int) -> Conversation:
        number = lines[position]
        if number in kept:
            return kept[number]
        parsed = parse_line(scan.read(number), name, number)
        if not isinstance(parsed, Conversation):
            raise RuntimeError(f"{name}:{number}: the bulk path took for valid a line the exact parser rejects")
        return parsed

    return LogIndex(name, lines, [ids[line] for line in lines], read, outline), errors
