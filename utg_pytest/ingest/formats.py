"""Log formats: the one door through which every log shape utg reads becomes Conversations and LogErrors.

A format recognises its own files (`sniff`) and reads one (`read`). The native shape, one conversation per line, is
ingest/jsonl.py's; the adapters for other shapes (call-per-record logs: OTLP traces, chat-completion proxies, Langfuse,
LangSmith; conversation datasets; flat tables) rebuild native documents (schemas/conversation.schema.json) and pass
them through the native validation, so every conversation the pipeline sees has passed the same check.

Besides real errors, an adapter reports what it leaves out on purpose (embedding calls, failed calls, spans that are no
model call, calls that join no conversation) as `Skipped` notices, one per kind and file: nothing vanishes silently,
and nothing legitimate is mistaken for a broken record.
"""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import IO, Any, Protocol, cast, runtime_checkable

from utg_pytest.ingest.jsonl import GZIP_DAMAGE, read_jsonl
from utg_pytest.ingest.schema import to_conversation
from utg_pytest.model import Conversation, Location, LogError, LogIndex

HEAD_RECORDS = 5
"""Records `detect` shows each format."""
HEAD_BYTES = 2**20
"""How much of a .json file `detect` decodes: a dataset of one big array need not be parsed whole to be recognised."""


class LogFormat(Protocol):
    """A log shape utg can read.

    `sniff(path, head)` says whether a file is in this shape from its `head`, the first few parsed records
    (`read_head`; empty for CSV and Parquet files, which a format recognises by their suffix). `read(path, name)`
    yields every conversation of the file and an error for each record that could not become (part of) one, `name`
    being the file's display name, used in every Location and LogError; a malformed record never stops the rest of
    the file, and records left out on purpose come as `Skipped` notices.
    """

    @property
    def name(self) -> str:
        """What --utg-format calls it."""
        ...

    def sniff(self, path: Path, head: Sequence[Any]) -> bool: ...

    def read(self, path: Path, name: str) -> Iterator[Conversation | LogError]: ...


@runtime_checkable
class IndexedFormat(LogFormat, Protocol):
    """A format that can also index a file the way the loader's bulk path indexes a large native log: conversations
    built only when read, probes found from an outline (see model.LogIndex). Readers of large tables want this."""

    def index(self, path: Path, name: str) -> tuple[LogIndex, list[LogError]]: ...


@dataclass(frozen=True)
class Skipped(LogError):
    """Records an adapter leaves out on purpose (not model calls, failed calls, calls no conversation takes): not
    errors, but counted and shown. One notice stands for `count` records of one kind in a file, the first at `line`."""

    count: int = 1


@dataclass(frozen=True)
class Document:
    """A conversation rebuilt in the native shape, before validation, with where it comes from."""

    data: dict[str, Any]
    location: Location


@dataclass(frozen=True)
class Record:
    """One parsed JSON record of a file: its line, its value, and the JSON pointer of the value within its document
    ("" for a line of JSON Lines, "/3" for the fourth item of a top-level array)."""

    line: int
    value: Any
    pointer: str = ""


class RecordError(Exception):
    """What is wrong with one record: the JSON pointer (or column) of the field, and why."""

    def __init__(self, pointer: str, reason: str) -> None:
        super().__init__(f"{pointer}: {reason}")
        self.pointer = pointer
        self.reason = reason


class UnknownFormatError(ValueError):
    """A log file no known format recognises, or a format name that is not known."""


def kind(value: Any) -> str:
    """What a JSON value is, for error messages ("a number, not a string")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"


def _open(path: Path) -> IO[bytes]:
    return cast(IO[bytes], gzip.open(path, "rb")) if path.name.endswith(".gz") else path.open("rb")


def _is_json_document(path: Path) -> bool:
    return path.name.endswith((".json", ".json.gz"))


_SPACE = re.compile(r"[ \t\n\r]*")


def _skip_space(text: str, position: int) -> int:
    match = _SPACE.match(text, position)
    return match.end() if match else position


def _array_items(text: str) -> Iterator[tuple[int, Any]]:
    """(offset, item) of each item of the JSON array `text`, decoded one at a time so that each item's position is
    known; raises JSONDecodeError where the text stops being one array."""
    decoder = json.JSONDecoder()
    position = _skip_space(text, 0)
    if text[position : position + 1] != "[":
        raise json.JSONDecodeError("Expecting '['", text, position)
    position = _skip_space(text, position + 1)
    if text[position : position + 1] != "]":
        while True:
            item, end = decoder.raw_decode(text, position)
            yield position, item
            position = _skip_space(text, end)
            if text[position : position + 1] != ",":
                break
            position = _skip_space(text, position + 1)
        if text[position : position + 1] != "]":
            raise json.JSONDecodeError("Expecting ',' delimiter", text, position)
    end = _skip_space(text, position + 1)
    if end != len(text):
        raise json.JSONDecodeError("Extra data", text, end)


def line_error(name: str, number: int, exc: ValueError) -> LogError:
    """The error for a line that does not parse, worded as the native reader words it."""
    if isinstance(exc, UnicodeDecodeError):
        return LogError(name, number, "", f"not UTF-8: {exc.reason} at byte {exc.start}")
    if isinstance(exc, json.JSONDecodeError):
        return LogError(name, number, "", f"not valid JSON: {exc.msg} at column {exc.colno}")
    return LogError(name, number, "", f"not valid JSON: {exc}")


def read_records(path: Path, name: str, items: bool = False) -> Iterator[Record | LogError]:
    """The JSON records of a file. JSON Lines (anything but .json): one per non-blank line, and a line that is not
    JSON is an error of its own. A .json file is one document: with `items`, each item of a top-level array is a record
    at the line where it starts, otherwise the document is one record at line 1; a .json file that does not parse is
    one error, and nothing in it is read (a cut-off export may have lost any part of any record)."""
    if not _is_json_document(path):
        with _open(path) as handle:
            for number, raw in enumerate(handle, start=1):
                if raw.strip():
                    try:
                        yield Record(number, json.loads(raw))
                    except ValueError as exc:
                        yield line_error(name, number, exc)
        return
    with _open(path) as handle:
        try:
            text = handle.read().decode("utf-8")
            if not (items and text.lstrip().startswith("[")):
                yield Record(1, json.loads(text))
                return
            found = list(_array_items(text))
        except json.JSONDecodeError as exc:
            yield LogError(
                name,
                exc.lineno,
                "",
                f"not valid JSON: {exc.msg} at column {exc.colno}; the file is one document, so nothing in it was read",
            )
            return
        except UnicodeDecodeError as exc:
            yield LogError(name, 1, "", f"not UTF-8: {exc.reason} at byte {exc.start}")
            return
    line, seen = 1, 0
    for index, (offset, item) in enumerate(found):
        line += text.count("\n", seen, offset)
        seen = offset
        yield Record(line, item, f"/{index}")


def read_head(path: Path, count: int = HEAD_RECORDS) -> list[Any]:
    """The first `count` records of a file, as `sniff` sees them: parsed lines of JSON Lines (unparsable ones passed
    over), the first items of a .json array or its one document, nothing for CSV and Parquet. A damaged gzip stream
    ends the head where it breaks; the reader reports the damage."""
    if path.name.endswith((".csv", ".tsv", ".parquet")):
        return []
    try:
        return _head(path, count)
    except GZIP_DAMAGE:
        return []


def _head(path: Path, count: int) -> list[Any]:
    if not _is_json_document(path):
        found: list[Any] = []
        with _open(path) as handle:
            for number, raw in enumerate(handle):
                if len(found) == count or number >= 100 * count:
                    break
                try:
                    found.append(json.loads(raw))
                except (ValueError, RecursionError):
                    continue
        return found
    with _open(path) as handle:
        prefix = handle.read(HEAD_BYTES)
        whole = len(prefix) < HEAD_BYTES
    text = prefix.decode("utf-8", errors="replace")
    if text.lstrip().startswith("["):
        items: list[Any] = []
        try:
            for _, item in _array_items(text):
                items.append(item)
                if len(items) == count:
                    break
        except json.JSONDecodeError:
            pass
        if items or whole:
            return items
    with _open(path) as handle:
        try:
            document = json.loads(handle.read())
        except (ValueError, RecursionError):
            return []
    return document[:count] if isinstance(document, list) else [document]


def convert(items: Iterable[Document | LogError]) -> Iterator[Conversation | LogError]:
    """Documents validated into Conversations (the native reader's own validation), errors passed on, and the records
    skipped on purpose summed up at the end, one notice per reason."""
    skipped: dict[str, list[Skipped]] = {}
    for item in items:
        if isinstance(item, Skipped):
            skipped.setdefault(item.reason, []).append(item)
        elif isinstance(item, LogError):
            yield item
        else:
            where = item.location
            found = to_conversation(item.data, where.source, where.line)
            if isinstance(found, Conversation):
                yield replace(found, location=where)
            else:
                yield replace(found, record=where.record, unit=where.unit)
    for reason, group in skipped.items():
        yield _summary(reason, group)


def _summary(reason: str, group: list[Skipped]) -> Skipped:
    first = group[0]
    count = sum(s.count for s in group)
    unit = "rows" if first.unit == "row" else "lines"
    shown = ", ".join(str(s.line) for s in group[:5]) + (f" and {len(group) - 5} more" if len(group) > 5 else "")
    plural = "record" if count == 1 else "records"
    return Skipped(
        first.source,
        first.line,
        "",
        f"{reason}: {count} {plural} skipped ({unit} {shown})",
        first.record,
        first.unit,
        count,
    )


@dataclass(frozen=True)
class OpenAIFormat:
    """The native format (ingest/jsonl.py): one conversation per line in the OpenAI chat `messages` shape."""

    name = "openai"

    def sniff(self, path: Path, head: Sequence[Any]) -> bool:
        return any(
            isinstance(record, dict) and isinstance(record.get("id"), str) and isinstance(record.get("messages"), list)
            for record in head
        )

    def read(self, path: Path, name: str) -> Iterator[Conversation | LogError]:
        return read_jsonl(path, name)


class DocumentFormat:
    """The adapters that turn a file into native documents first (conversation dicts, validated as native lines
    are): a file is theirs when one of its first records is, and reading it is converting its documents."""

    name: str

    def recognises(self, record: Any) -> bool:
        raise NotImplementedError

    def documents(self, path: Path, name: str) -> Iterator[Document | LogError]:
        raise NotImplementedError

    def sniff(self, path: Path, head: Sequence[Any]) -> bool:
        return any(map(self.recognises, head))

    def read(self, path: Path, name: str) -> Iterator[Conversation | LogError]:
        return convert(self.documents(path, name))
