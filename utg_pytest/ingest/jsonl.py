"""JSONL (optionally gzipped) logs in the OpenAI chat `messages` shape: one conversation per line.

Every line is read on its own and can only fail on its own: whatever a line holds (JSON nested a thousand deep, a
number of ten thousand digits, a lone UTF-16 surrogate, a gigabyte of text), it becomes a LogError naming file, line
and field, and the lines around it are still read. A damaged gzip stream ends the file with an error at the line
where the damage was met, keeping every line before it.
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast

from utg_pytest.ingest.schema import pointer, to_conversation
from utg_pytest.model import Conversation, LogError
from utg_pytest.safe_text import clip

MAX_LINE_BYTES = 16 * 2**20
"""Default cap on one line (--utg-max-line-bytes): a longer line is reported, never held in memory whole."""
MAX_DEPTH = 64
"""Nesting of arrays and objects a line may have; chat logs need a handful of levels."""

_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_READ_CHUNK = 1 << 20
GZIP_DAMAGE = (EOFError, gzip.BadGzipFile, zlib.error)
"""What reading a truncated, corrupt or non-gzip `.gz` file raises."""


def _open(path: Path) -> BinaryIO:
    return cast(BinaryIO, gzip.open(path, "rb")) if path.name.endswith(".gz") else path.open("rb")


def _too_deep(document: Any) -> bool:
    stack = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def _bad_string(document: Any) -> str | None:
    """The JSON pointer of the first string (key or value) that is not valid Unicode (a lone surrogate)."""
    stack: list[tuple[Any, tuple[Any, ...]]] = [(document, ())]
    while stack:
        node, path = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            where = (*path, key)
            for text in (key, value):
                if isinstance(text, str):
                    try:
                        text.encode("utf-8")
                    except UnicodeEncodeError:
                        return pointer(where)
            if isinstance(value, (dict, list)):
                stack.append((value, where))
    return None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def parse_line(raw: str | bytes, name: str, number: int) -> Conversation | LogError | None:
    """The exact parse of one line: a Conversation, the LogError naming what is wrong, or None for a blank line."""
    if not raw.strip():
        return None
    try:
        document: Any = json.loads(raw, parse_constant=_reject_constant)
    except UnicodeDecodeError as exc:
        return LogError(name, number, "", f"not UTF-8: {exc.reason} at byte {exc.start}")
    except json.JSONDecodeError as exc:
        return LogError(name, number, "", f"not valid JSON: {exc.msg} at column {exc.pos + 1}")
    except RecursionError:
        return LogError(name, number, "", f"nested deeper than {MAX_DEPTH} levels")
    except ValueError as exc:
        # Integers of more than 4,300 digits, NaN and Infinity: Python's own limits and extensions, not JSON errors.
        return LogError(name, number, "", f"not valid JSON: {clip(str(exc), 120)}")
    encoded = raw if isinstance(raw, bytes) else raw.encode("utf-8", "surrogatepass")
    if (encoded.count(b"[") + encoded.count(b"{") > MAX_DEPTH) and _too_deep(document):
        return LogError(name, number, "", f"nested deeper than {MAX_DEPTH} levels")
    if _SURROGATE_ESCAPE.search(encoded):
        field = _bad_string(document)
        if field is not None:
            return LogError(name, number, clip(field, 80), "a lone UTF-16 surrogate escape: not valid Unicode")
    return to_conversation(document, name, number)


def oversized(name: str, number: int, size: int, limit: int) -> LogError:
    return LogError(
        name, number, "", f"line of {size:,} bytes is over the limit of {limit:,} (--utg-max-line-bytes): not read"
    )


def bounded_lines(handle: BinaryIO, limit: int) -> Iterator[tuple[bytes | None, int]]:
    """(line, size) for every line; a line of more than `limit` bytes before its newline is skipped in chunks and
    comes as (None, that size), so no more than `limit` bytes of one line are ever held."""
    while True:
        line = handle.readline(limit + 1)
        if not line:
            return
        if len(line) <= limit or line.endswith(b"\n"):
            yield line, len(line)
            continue
        size = len(line)
        while not line.endswith(b"\n"):
            line = handle.readline(_READ_CHUNK)
            if not line:
                break
            size += len(line)
        yield None, size - line.endswith(b"\n")


def read_jsonl(path: Path, name: str, max_line_bytes: int = MAX_LINE_BYTES) -> Iterator[Conversation | LogError]:
    """Yield one Conversation or LogError per non-blank line; line numbers are 1-based and count blank lines."""
    number = 0
    with _open(path) as handle:
        lines = bounded_lines(handle, max_line_bytes)
        while True:
            try:
                raw, size = next(lines)
            except StopIteration:
                return
            except GZIP_DAMAGE as exc:
                yield LogError(name, number + 1, "", gzip_damage(exc, number))
                return
            number += 1
            parsed = parse_line(raw, name, number) if raw is not None else oversized(name, number, size, max_line_bytes)
            if parsed is not None:
                yield parsed


def gzip_damage(exc: BaseException, lines_read: int) -> str:
    cause = f"{type(exc).__name__}: {clip(str(exc), 120)}"
    return f"the gzip data is damaged after line {lines_read} ({cause}); lines after it are not read"


def opens_array(path: Path) -> bool:
    """Whether the file's first non-blank character opens a JSON array: a JSON document where JSON Lines belong."""
    try:
        with _open(path) as handle:
            start = handle.read(4096).lstrip(b"\xef\xbb\xbf \t\r\n")
    except GZIP_DAMAGE:
        return False
    return start.startswith(b"[")


def array_error(name: str, errors: list[LogError]) -> LogError:
    """One error for a file that is a JSON array, instead of one per physical line that says nothing of why."""
    return LogError(
        name,
        errors[0].line,
        "",
        f"the file is one JSON array, not JSON Lines (one conversation object per line), so none of it was read "
        f"({len(errors):,} of its lines are not conversations). Convert it with `jq -c '.[]'`, or name its format "
        "with --utg-format (a ShareGPT export is read as sharegpt)",
    )
