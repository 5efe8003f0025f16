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

from utg_pytest.ingest.formats import IndexedFormat, LogFormat
from utg_pytest.ingest.jsonl import MAX_LINE_BYTES, array_error, opens_array, oversized, parse_line, read_jsonl
from utg_pytest.model import Conversation, LogError, LogIndex

LOG_SUFFIXES = (".jsonl", ".jsonl.gz")
ANY_FORMAT_SUFFIXES = (*LOG_SUFFIXES, ".json", ".json.gz", ".csv", ".tsv", ".parquet")
"""What a directory or glob takes when the format is recognised per file (--utg-format auto) or is not the native
one."""
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


def is_log_file(path: Path, suffixes: tuple[str, ...] = LOG_SUFFIXES) -> bool:
    return path.is_file() and path.name.endswith(suffixes)


def walk(directory: Path) -> Iterator[Path]:
    """Every file under a directory, following symlinked directories (a log folder is often assembled from links)
    but entering each real directory once, so a link back up the tree does not loop."""
    import os

    seen: set[str] = set()
    for root, dirs, files in os.walk(directory, followlinks=True):
        real = os.path.realpath(root)
        if real in seen:
            dirs.clear()
            continue
        seen.add(real)
        dirs.sort()
        yield from (Path(root) / name for name in files)


def resolve_paths(specs: Iterable[str], suffixes: tuple[str, ...] = LOG_SUFFIXES) -> list[Path]:
    """Expand each spec to log files, in a stable order, each file once. A directory or glob takes the files whose
    names end in one of `suffixes`; a file named outright is taken whatever its name."""
    found: dict[Path, None] = {}
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            matches = sorted(p for p in walk(path) if is_log_file(p, suffixes))
        elif path.is_file():
            matches = [path]
        else:
            matches = sorted(p for p in map(Path, glob.glob(spec, recursive=True)) if is_log_file(p, suffixes))
        if not matches:
            raise LogPathError(f"--utg-logs {spec}: no log file ({', '.join(suffixes)}) found there")
        for match in matches:
            found.setdefault(match.resolve(), None)
    return list(found)


def load(
    files: Iterable[Path],
    display: dict[Path, str] | None = None,
    bulk_from: int = BULK_FROM_BYTES,
    log_format: str = "openai",
    formats: Sequence[LogFormat] | None = None,
    max_line_bytes: int = MAX_LINE_BYTES,
) -> LoadedLogs:
    """Read every file; `display` maps a file to the name used in node ids and messages (default: its path).
    `log_format` names the format of every file, or is "auto" to recognise each file's from its first records
    among `formats` (default: the built-in ones). The native format keeps its exact and bulk paths."""
    logs: list[LogIndex] = []
    errors: list[LogError] = []
    paths = list(files)
    with no_cycle_collection():
        for path in paths:
            name = (display or {}).get(path, str(path))
            chosen = _format_of(path, name, log_format, formats, errors)
            if chosen is None:
                logs.append(index_conversations(name, []))
                continue
            if chosen.name == "openai":
                reader = _load_bulk if path.stat().st_size >= bulk_from else _load_exact
                log, found = reader(path, name, max_line_bytes)
                if found and opens_array(path):
                    log, found = index_conversations(name, []), [array_error(name, found)]
            elif isinstance(chosen, IndexedFormat):
                log, found = chosen.index(path, name)
            else:
                log, found = _load_adapted(chosen, path, name)
            logs.append(log)
            errors.extend(found)
    return LoadedLogs(tuple(logs), tuple(errors), tuple(paths))


def _format_of(
    path: Path, name: str, log_format: str, formats: Sequence[LogFormat] | None, errors: list[LogError]
) -> LogFormat | None:
    """The format to read a file with; None (and one error for the file) when no format recognises it."""
    from utg_pytest.ingest.formats import UnknownFormatError
    from utg_pytest.ingest.registry import builtin_formats, detect, get

    known = formats if formats is not None else builtin_formats()
    try:
        return detect(path, known) if log_format == "auto" else get(log_format, known)
    except UnknownFormatError as exc:
        if log_format == "auto" and path.name.endswith(LOG_SUFFIXES):
            # A native log whose first lines are broken is still read line by line: every bad line gets its error.
            return get("openai", known)
        errors.append(LogError(name, 1, "", str(exc).replace(str(path), name, 1)))
        return None


def _load_adapted(chosen: LogFormat, path: Path, name: str) -> tuple[LogIndex, list[LogError]]:
    """Conversations an adapter rebuilt, several of which may start on one line (an export batch, a whole-file
    document): kept in order, the later of two with one id reported and dropped."""
    kept: list[Conversation] = []
    errors: list[LogError] = []
    seen: dict[str, Conversation] = {}
    for item in chosen.read(path, name):
        if isinstance(item, LogError):
            errors.append(item)
        elif item.id in seen:
            first = seen[item.id].location.describe()
            reason = f"duplicate conversation id {item.id!r} (first at {first})"
            errors.append(LogError(name, item.line, "/id", reason, item.location.record, item.location.unit))
        else:
            seen[item.id] = item
            kept.append(item)
    errors.sort(key=lambda error: error.line)
    return index_conversations(name, kept), errors


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


def _load_exact(path: Path, name: str, max_line_bytes: int) -> tuple[LogIndex, list[LogError]]:
    by_line: dict[int, Conversation] = {}
    errors: list[LogError] = []
    for item in read_jsonl(path, name, max_line_bytes):
        if isinstance(item, LogError):
            errors.append(item)
        else:
            by_line[item.line] = item
    kept = _first_of_each_id(name, ((line, c.id) for line, c in by_line.items()), errors)
    errors.sort(key=lambda error: error.line)
    return index_conversations(name, [by_line[line] for line in kept]), errors


def _load_bulk(path: Path, name: str, max_line_bytes: int) -> tuple[LogIndex, list[LogError]]:
    """Plain lines are outlined by the bulk scan; the others are parsed exactly now (their errors are reported) and
    kept. Of two lines with one id, the later is reported and dropped."""
    import polars as pl

    from utg_pytest.ingest import bulk

    scan = bulk.scan(path, max_line_bytes)
    kept: dict[int, Conversation] = {}
    errors: list[LogError] = []
    if scan.damage is not None:
        errors.append(LogError(name, scan.damage[0], "", scan.damage[1]))
    for number in scan.others:
        raw = scan.read(number)
        size = len(raw.rstrip(b"\n"))
        parsed = (
            parse_line(raw, name, number) if size <= max_line_bytes else oversized(name, number, size, max_line_bytes)
        )
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
