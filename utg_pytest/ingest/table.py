"""Flat tables of messages, one per row (CSV, TSV, Parquet, or JSON Lines), read with polars.

A row names its conversation, the speaker's role, the text and, optionally, its place in the conversation (an index or
a timestamp) and a timestamp; the columns are found by name (CANDIDATES, or a mapping) and role values are mapped
(ROLE_VALUES, extended by a mapping). Rows are grouped by conversation, in order of first appearance, and ordered by the
order column (by file position without one). Validation runs in polars over whole columns; only conversations are
assembled in Python.

A malformed row (no conversation, an unmapped role, no text where a user, system or tool message needs one, an order
value that is neither a number nor a timestamp) is reported with its row and column, and its conversation is left out:
one missing message would change every later turn's context. So is a conversation whose order is ambiguous (two rows
with one order value, as batch inserts give timestamps). An empty cell is null: an assistant row without text is a
reply that failed or only called tools.

Rows are numbered as a spreadsheet shows them (the header is row 1) in CSV, from 1 in Parquet; JSON Lines tables give
line numbers. A CSV file polars cannot parse (an unclosed quote, a ragged row) is read again by Python's csv module,
which names the row at fault, and its other rows still count.
"""

from __future__ import annotations

import csv
import io
import json
import mmap
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from utg_pytest.ingest.bulk import NUMBER, STRING, W, key_except
from utg_pytest.ingest.formats import Document, RecordError, kind, line_error, read_head
from utg_pytest.ingest.jsonl import gzip_damage
from utg_pytest.ingest.rebuild import content_of, text_of
from utg_pytest.model import Conversation, Location, LogError, LogIndex, Message

CANDIDATES = {
    "conversation": ("conversation_id", "session_id", "thread_id", "conversation_hash", "chat_id", "dialog_id"),
    "role": ("role", "from", "speaker", "sender", "author"),
    "content": ("content", "text", "message", "value", "utterance"),
    "order": (
        "turn_index",
        "message_index",
        "seq",
        "position",
        "id",
        "created_at",
        "timestamp",
        "ts",
        "time",
        "created_date",
    ),
    "timestamp": ("created_at", "timestamp", "ts", "time", "created_date"),
}
"""Column names tried for each part of a row, in order, when no mapping names its column."""
REQUIRED = ("conversation", "role", "content")
ROLE_VALUES = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "human": "user",
    "customer": "user",
    "prompter": "user",
    "visitor": "user",
    "client": "user",
    "me": "user",
    "assistant": "assistant",
    "bot": "assistant",
    "agent": "assistant",
    "ai": "assistant",
    "gpt": "assistant",
    "model": "assistant",
    "tool": "tool",
    "function": "tool",
}
"""Role values (compared trimmed and lower-cased) and the native role each becomes. A support export's `agent`, bot or
human, is the side that answers the customer."""
NATIVE_ROLES = frozenset(("system", "user", "assistant", "tool"))
CODES = {"user": "r", "assistant": "t", "system": "m", "tool": "l"}
"""Roles as a LogIndex outline codes them (see ingest.bulk)."""
BLANK = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
"""The characters str.strip() removes, as a regular-expression class: an outline's blank is probes.py's."""
_TIME_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M%#z")
_NAIVE_FORMATS = ("%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d")


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return next((s for s in (".csv", ".tsv", ".parquet", ".jsonl", ".jsonl.gz") if name.endswith(s)), "")


@dataclass(frozen=True)
class _Table:
    """A file's rows (`row`: their number) with the columns the table format uses, as text (Parquet keeps its
    types), and the errors met while reading it."""

    frame: Any
    unit: str
    errors: list[LogError]
    rejected: list[str] = field(default_factory=list)
    """Conversations with a row that could not be read."""


def _not_loaded(conversation: Any) -> str:
    return f"; conversation {conversation!r} is not loaded" if conversation else ""


def _csv_fallback(path: Path, name: str, wanted: Sequence[str], key: str, separator: str) -> _Table:
    """Python's csv module over a CSV polars cannot read: each ragged row and an unclosed quote become errors, the
    other rows still count."""
    import polars as pl

    errors: list[LogError] = []
    rejected: list[str] = []
    rows: list[list[str | None]] = []
    numbers: list[int] = []
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle, delimiter=separator, strict=True)
        header = next(reader, [])
        places = [header.index(column) for column in wanted]
        number = 1
        try:
            for fields in reader:
                number += 1
                if fields and len(fields) != len(header):
                    missing = header[len(fields)] if len(fields) < len(header) else ""
                    conversation = fields[header.index(key)] if header.index(key) < len(fields) else ""
                    reason = f"the row has {len(fields)} fields, the header {len(header)}{_not_loaded(conversation)}"
                    errors.append(LogError(name, number, f"/{missing}" if missing else "", reason, unit="row"))
                    rejected.append(conversation)
                    continue
                numbers.append(number)
                rows.append([(fields[p] or None) if fields else None for p in places])
        except csv.Error as exc:
            unclosed = "unexpected end of data" in str(exc)
            reason = "unclosed quote: the field runs to the end of the file" if unclosed else f"not valid CSV: {exc}"
            errors.append(LogError(name, number + 1, "", reason, unit="row"))
    data = {column: [row[i] for row in rows] for i, column in enumerate(wanted)}
    frame = pl.DataFrame({"row": numbers, **data}, schema={"row": pl.Int64, **{c: pl.String for c in wanted}})
    return _Table(frame, "row", errors, rejected)


_SCALAR = f"(?:{STRING}|{NUMBER}|true|false|null)"
_TEXT_PARTS = ("conversation", "role", "content")


def _plain_row(found: dict[str, str]) -> str:
    """A regular expression for the rows polars reads as json.loads would: a JSON object of scalars, its keys without
    escapes, whose wanted keys hold a string (a number too for order and timestamp, nothing null). polars would
    read a wanted number as text without a word; a key given twice is `_jsonl_rows`'s to count."""
    wanted = sorted(set(found.values()))
    pairs = []
    for column in wanted:
        text = any(part in _TEXT_PARTS for part, used in found.items() if used == column)
        pairs.append(f'"{re.escape(column)}"{W}:{W}' + (STRING if text else f"(?:{STRING}|{NUMBER})"))
    pair = "(?:" + "|".join([*pairs, f"{key_except(wanted)}{W}:{W}{_SCALAR}"]) + ")"
    return "^" + W + r"\{" + W + f"(?:{pair}(?:{W},{W}{pair})*)?" + W + r"\}" + W + "$"


def _jsonl_rows(path: Path, name: str, found: dict[str, str]) -> _Table:
    """JSON Lines rows. Plain ones (`_plain_row`, no wanted key twice) are decoded by polars all at once, by its JSON
    Lines reader when every line is plain; the others one by one, which names what is wrong with them. Values become
    text either way, so that order values parse as in CSV."""
    import polars as pl

    from utg_pytest.ingest import bulk

    data, damage = bulk._contents(path)
    wanted = sorted(set(found.values()))
    line = pl.col("line")
    keys = "[{,]" + W + '"(?:' + "|".join(map(re.escape, wanted)) + ')"' + W + ":"
    marked = (
        pl.DataFrame({"line": bulk._split(path, data)})
        .with_row_index("row", offset=1)
        .select(
            pl.col("row").cast(pl.Int64),
            _plain=line.str.contains(_plain_row(found)).fill_null(False),
            _keys=line.str.count_matches(keys),
            line=line,
        )
    )
    schema = {column: pl.String for column in wanted}
    if marked.get_column("_plain").all():
        source = path if isinstance(data, mmap.mmap) else io.BytesIO(data)
        decoded = pl.read_ndjson(source, schema=schema).select(*wanted)
    else:
        decoded = marked.filter("_plain").select(line.str.json_decode(pl.Struct(schema)).struct.unnest())
    plain = marked.filter("_plain").select("row", "_keys").hstack(decoded)
    twice = pl.col("_keys") > pl.sum_horizontal(pl.col(column).is_not_null() for column in wanted)
    others = pl.concat([marked.filter(~pl.col("_plain")).get_column("row"), plain.filter(twice).get_column("row")])
    exact = _exact_rows(others.sort().to_list(), bulk._reader(data), name, wanted, found["conversation"])
    errors = exact.errors
    if damage is not None:
        errors = [*errors, LogError(name, marked.height + 1, "", gzip_damage(damage, marked.height))]
    return _Table(pl.concat([plain.filter(~twice).drop("_keys"), exact.frame]), "line", errors, exact.rejected)


def _exact_rows(numbers: list[int], read: Any, name: str, wanted: Sequence[str], key: str) -> _Table:
    """Lines parsed one by one, each bad one an error that names its field."""
    import polars as pl

    errors: list[LogError] = []
    rejected: list[str] = []
    kept: list[int] = []
    columns: dict[str, list[str | None]] = {column: [] for column in wanted}
    for number in numbers:
        raw = read(number)
        if not raw.strip():
            continue
        try:
            value = json.loads(raw)
        except ValueError as exc:
            errors.append(line_error(name, number, exc))
            continue
        try:
            if not isinstance(value, dict):
                raise RecordError("", f"{kind(value)}, not a row")
            values = [_cell(value.get(column), f"/{column}") for column in wanted]
        except RecordError as exc:
            conversation = value.get(key) if isinstance(value, dict) else None
            conversation = str(conversation) if isinstance(conversation, (str, int)) else ""
            errors.append(LogError(name, number, exc.pointer, exc.reason + _not_loaded(conversation)))
            rejected.append(conversation)
            continue
        kept.append(number)
        for column, cell in zip(wanted, values, strict=True):
            columns[column].append(cell)
    frame = pl.DataFrame({"row": kept, **columns}, schema={"row": pl.Int64, **{c: pl.String for c in wanted}})
    return _Table(frame, "line", errors, rejected)


def _cell(value: Any, at: str) -> str | None:
    """A JSON row's value as a table cell: text, a number written out, or content parts flattened to their text."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, list):
        return text_of(content_of(value, at))
    raise RecordError(at, f"{kind(value)}, not a string, a number or content parts")


@dataclass(frozen=True)
class TableFormat:
    """One message per row. `columns` maps parts of a row (conversation, role, content, order, timestamp) to column
    names, e.g. `{"conversation": "session_id", "role": "speaker", "content": "text", "order": "ts"}`; `roles` maps
    role values to roles, e.g. `{"agent": "assistant", "customer": "user"}` (both extend the defaults)."""

    columns: Mapping[str, str] = field(default_factory=dict)
    roles: Mapping[str, str] = field(default_factory=dict)
    name = "table"

    def __post_init__(self) -> None:
        unknown = set(self.columns) - set(CANDIDATES)
        if unknown:
            raise ValueError(f"unknown table columns {sorted(unknown)}: known are {', '.join(CANDIDATES)}")
        wrong = {value: role for value, role in self.roles.items() if role not in NATIVE_ROLES}
        if wrong:
            raise ValueError(f"role mapping {wrong} names roles other than {', '.join(sorted(NATIVE_ROLES))}")

    def _resolve(self, names: Sequence[str]) -> dict[str, str]:
        """The column of each part of a row, from the mapping or the first candidate present."""
        found = {}
        for part, candidates in CANDIDATES.items():
            chosen = self.columns.get(part) or next((c for c in candidates if c in names), None)
            if chosen is not None and chosen in names:
                found[part] = chosen
            elif part in REQUIRED or part in self.columns:
                tried = f"'{chosen}'" if part in self.columns else "one of " + ", ".join(candidates)
                raise RecordError("", f"no {part} column: expected {tried}, found {', '.join(names) or 'none'}")
        if found.get("order") == found["conversation"]:
            del found["order"]
        return found

    def sniff(self, path: Path, head: Sequence[Any]) -> bool:
        if _suffix(path) in (".csv", ".tsv", ".parquet"):
            return True
        rows = [r for r in head if isinstance(r, dict)]
        if not rows or any(isinstance(v, dict) for r in rows for v in r.values()):
            return False
        try:
            self._resolve(list(rows[0]))
        except RecordError:
            return False
        return True

    def _load(self, path: Path, name: str) -> tuple[_Table, dict[str, str]]:
        import polars as pl

        suffix = _suffix(path)
        if suffix in (".csv", ".tsv"):
            separator = "\t" if suffix == ".tsv" else ","
            scan = pl.scan_csv(path, infer_schema=False, separator=separator)
            found = self._resolve(scan.collect_schema().names())
            wanted = sorted(set(found.values()))
            try:
                frame = scan.with_row_index("row", offset=2).select("row", *wanted).collect()
            except pl.exceptions.PolarsError:
                return _csv_fallback(path, name, wanted, found["conversation"], separator), found
            return _Table(frame.with_columns(pl.col("row").cast(pl.Int64)), "row", []), found
        if suffix == ".parquet":
            scan = pl.scan_parquet(path)
            found = self._resolve(scan.collect_schema().names())
            frame = scan.with_row_index("row", offset=1).select("row", *sorted(set(found.values()))).collect()
            return _Table(frame.with_columns(pl.col("row").cast(pl.Int64)), "row", []), found
        names = {key: None for row in read_head(path) if isinstance(row, dict) for key in row}
        found = self._resolve(list(names))
        return _jsonl_rows(path, name, found), found

    def _prepared(self, path: Path, name: str) -> tuple[_Ordered | None, list[LogError]]:
        """The file's valid conversations in order, and its errors in row order."""
        try:
            table, found = self._load(path, name)
        except RecordError as exc:
            unit = "line" if _suffix(path).startswith(".jsonl") else "row"
            return None, [LogError(name, 1, exc.pointer, exc.reason, unit=unit)]
        roles = {**ROLE_VALUES, **{value.strip().lower(): role for value, role in self.roles.items()}}
        valid, problems = _checked(table.frame, found, roles, table.rejected)
        errors = table.errors + [LogError(name, row, at, reason, unit=table.unit) for row, at, reason in problems]
        errors.sort(key=lambda error: error.line)
        return _order(valid, found, name, table.unit), errors

    def documents(self, path: Path, name: str) -> Iterator[Document | LogError]:
        ordered, errors = self._prepared(path, name)
        yield from errors
        if ordered is None:
            return
        roles, contents = ordered.roles.to_list(), ordered.contents.to_list()
        for position in range(len(ordered.ids)):
            begin, end = ordered.starts[position], ordered.starts[position + 1]
            texts = zip(roles[begin:end], contents[begin:end], strict=True)
            messages = [{"role": role, "content": text} for role, text in texts]
            data: dict[str, Any] = {
                "id": ordered.ids[position],
                "messages": messages,
                "metadata": ordered.metadata(position),
            }
            if ordered.stamps[position] is not None:
                data["timestamp"] = ordered.stamps[position]
            yield Document(data, ordered.location(position))

    def read(self, path: Path, name: str) -> Iterator[Conversation | LogError]:
        """What `convert(self.documents(...))` gives, without building the documents: a table's messages are plain
        text, so there is nothing for the schema to check that the table checks have not."""
        ordered, errors = self._prepared(path, name)
        yield from errors
        if ordered is not None:
            roles, contents = ordered.roles.to_list(), ordered.contents.to_list()
            yield from (ordered.conversation(p, roles, contents) for p in range(len(ordered.ids)))

    def index(self, path: Path, name: str) -> tuple[LogIndex, list[LogError]]:
        """The file as the loader indexes a large native log (ingest.bulk): an outline of each message's role and
        whether its text is blank, from which probes.py finds the probes in columns, and each conversation built only
        when it is read."""
        import polars as pl

        ordered, errors = self._prepared(path, name)
        if ordered is None:
            return LogIndex(name, [], [], [].__getitem__), errors
        outline = pl.DataFrame(
            {
                "position": ordered.positions,
                "role": ordered.roles.replace_strict(CODES, return_dtype=pl.String),
                "blank": ~ordered.contents.str.contains(f"[^{BLANK}]").fill_null(False),
            }
        )

        def read(position: int) -> Conversation:
            begin, end = ordered.starts[position], ordered.starts[position + 1]
            roles = ordered.roles.slice(begin, end - begin).to_list()
            contents = ordered.contents.slice(begin, end - begin).to_list()
            return ordered.conversation(position, roles, contents, begin)

        return LogIndex(name, ordered.rows, ordered.ids, read, outline), errors


def _text(column: str | None) -> Any:
    """A column as text, null where empty (CSV writes no difference between empty and missing)."""
    import polars as pl

    text = pl.col(column).cast(pl.String) if column is not None else pl.lit(None, pl.String)
    return pl.when(text.str.len_bytes() > 0).then(text)


def _moments(values: Any) -> Any:
    """Microseconds since the epoch of timestamps: a temporal column, or ISO 8601 text (naive means UTC), null where a
    value is no timestamp. Text is tried one format at a time until none is left over: a file mostly holds one."""
    import polars as pl

    if values.dtype.is_temporal():
        return values.cast(pl.Datetime("us")).dt.epoch("us") if values.dtype == pl.Date else values.dt.epoch("us")
    found = pl.Series(values.name, [None] * len(values), dtype=pl.Int64)
    if values.dtype.is_numeric():
        return found
    text = values.cast(pl.String).str.strip_chars().str.replace(" ", "T", literal=True)
    for form, aware in [(f, True) for f in _TIME_FORMATS] + [(f, False) for f in _NAIVE_FORMATS]:
        if not (found.is_null() & text.is_not_null()).any():
            break
        parsed = text.str.to_datetime(form, strict=False, time_unit="us", time_zone="UTC" if aware else None)
        found = found.fill_null(parsed if aware else parsed.dt.replace_time_zone("UTC")).dt.epoch("us")
    return found


def _numbers(values: Any) -> Any:
    import polars as pl

    if values.dtype.is_temporal():
        return pl.Series(values.name, [None] * len(values), dtype=pl.Float64)
    return values.cast(pl.String).str.strip_chars().cast(pl.Float64, strict=False)


_PROBLEMS = ("conversation", "role", "role value", "content", "order", "order value")


def _checked(
    frame: Any, found: dict[str, str], roles: dict[str, str], rejected: list[str]
) -> tuple[Any, list[tuple[int, str, str]]]:
    """The valid rows of the conversations that load (none of `rejected`), with their role and sort key, and (row,
    column, reason) for each invalid row and each conversation whose order is ambiguous."""
    import polars as pl

    order = found.get("order")
    role = pl.col(found["role"]).cast(pl.String).str.strip_chars().str.to_lowercase()
    frame = frame.with_columns(
        _conversation=_text(found["conversation"]),
        _role_raw=_text(found["role"]),
        _role=role.replace_strict(roles, default=None, return_dtype=pl.String),
        _content=_text(found["content"]),
        _order_raw=_text(order),
    )
    blank = pl.all_horizontal(pl.col(c).is_null() for c in ("_conversation", "_role_raw", "_content", "_order_raw"))
    frame = frame.filter(~blank)
    if order is None:
        frame = frame.with_columns(_number=pl.col("row").cast(pl.Float64), _moment=pl.lit(None, pl.Int64))
    else:
        numbers = _numbers(frame.get_column(order))
        times = (frame.get_column("_order_raw").is_not_null() & numbers.is_null()).any()
        moments = _moments(frame.get_column(order)) if times else pl.Series([None] * len(numbers), dtype=pl.Int64)
        frame = frame.with_columns(_number=numbers, _moment=moments)
    conditions = (
        pl.col("_conversation").is_null(),
        pl.col("_role_raw").is_null(),
        pl.col("_role").is_null(),
        pl.col("_content").is_null() & (pl.col("_role") != "assistant"),
        pl.lit(order is not None) & pl.col("_order_raw").is_null(),
        pl.col("_number").is_null() & pl.col("_moment").is_null(),
    )
    problem: Any = pl.lit(None, pl.String)
    for condition, name in reversed(list(zip(conditions, _PROBLEMS, strict=True))):
        problem = pl.when(condition).then(pl.lit(name)).otherwise(problem)
    frame = frame.with_columns(_problem=problem)
    invalid = frame.filter(pl.col("_problem").is_not_null())
    errors = [_row_reason(row, found) for row in invalid.iter_rows(named=True)]
    rejected = rejected + invalid.get_column("_conversation").drop_nulls().to_list()
    valid = frame.filter(pl.col("_problem").is_null()).with_columns(
        _key=pl.coalesce(pl.col("_number"), pl.col("_moment").cast(pl.Float64))
    )
    if order is not None:
        for conversation, rows, value in _ambiguous(valid):
            shown = ", ".join(map(str, rows))
            reason = (
                f"rows {shown} of conversation {conversation!r} have {value}, so their order is ambiguous; the "
                "conversation is not loaded"
            )
            errors.append((rows[0], f"/{order}", reason))
            rejected.append(conversation)
    if rejected:
        valid = valid.filter(~pl.col("_conversation").is_in(pl.Series(rejected, dtype=pl.String).implode()))
    return valid, sorted(errors)


def _ambiguous(valid: Any) -> list[tuple[str, list[int], str]]:
    """(conversation, rows, what they share) where rows of a conversation share an order value, or where its order
    values mix numbers and timestamps, which do not compare."""
    import polars as pl

    tied = valid.filter(pl.struct("_conversation", "_key").is_duplicated())
    numbers = valid.height - valid.get_column("_number").null_count()
    mixed = (
        valid.filter(pl.col("_number").is_null().n_unique().over("_conversation") > 1)
        if 0 < numbers < valid.height
        else valid.clear()
    )
    found: dict[str, tuple[list[int], str]] = {}
    for conversation, row in mixed.select("_conversation", "row").sort("row").iter_rows():
        found.setdefault(conversation, ([], "order values that mix numbers and timestamps"))[0].append(row)
    shared: dict[tuple[str, float], list[int]] = {}
    for conversation, key, row, value in (
        tied.select("_conversation", "_key", "row", "_order_raw").sort("row").iter_rows()
    ):
        shared.setdefault((conversation, key), []).append(row)
        if conversation not in found:
            found[conversation] = (shared[conversation, key], f"the same order value {value!r}")
    return [(conversation, rows, value) for conversation, (rows, value) in found.items()]


def _row_reason(row: dict[str, Any], found: dict[str, str]) -> tuple[int, str, str]:
    problem = row["_problem"]
    left_out = _not_loaded(row["_conversation"])
    if problem == "conversation":
        return row["row"], f"/{found['conversation']}", "missing: the row belongs to no conversation"
    if problem in ("role", "role value"):
        value = row["_role_raw"]
        reason = "missing" if value is None else f"{value!r} is not a mapped role (map it with a role mapping)"
        return row["row"], f"/{found['role']}", reason + left_out
    if problem == "content":
        return row["row"], f"/{found['content']}", f"missing: a {row['_role']} message needs text{left_out}"
    if problem == "order":
        return row["row"], f"/{found['order']}", f"missing: the row has no place in its conversation{left_out}"
    return row["row"], f"/{found['order']}", f"{row['_order_raw']!r} is neither a number nor a timestamp{left_out}"


@dataclass(frozen=True)
class _Ordered:
    """A file's valid rows in conversation order (polars Series), where each conversation starts in them (and where
    the last ends), and each conversation's id, first row in the file and timestamp."""

    roles: Any
    contents: Any
    positions: Any
    starts: list[int]
    ids: list[str]
    rows: list[int]
    stamps: list[str | None]
    id_field: str
    source: str
    unit: str

    def metadata(self, position: int) -> dict[str, Any]:
        origin = {"format": "table", "file": self.source, "id_field": self.id_field, "id": self.ids[position]}
        return {"source": origin}

    def location(self, position: int) -> Location:
        return Location(self.source, self.rows[position], None, self.unit)

    def conversation(self, position: int, roles: list[str], contents: list[str | None], base: int = 0) -> Conversation:
        """The conversation at `position`, from lists that hold the rows from `base` on."""
        begin, end = self.starts[position] - base, self.starts[position + 1] - base
        texts = zip(roles[begin:end], contents[begin:end], strict=True)
        messages = tuple(Message(role, text or "") for role, text in texts)
        return Conversation(self.ids[position], messages, self.metadata(position), self.location(position))


def _order(valid: Any, found: dict[str, str], source: str, unit: str) -> _Ordered:
    """Conversations in order of first appearance, their rows by order value (unique by now: `_checked` leaves out
    conversations with ties); a conversation's timestamp is its first row's (timestamp column, else order column)."""
    import polars as pl

    conversation = pl.col("_conversation")
    ordered = (
        valid.with_columns(_first=pl.col("row").min().over("_conversation"))
        .sort("_first", "_key")
        .with_columns(_start=(conversation != conversation.shift(1)).fill_null(True))
    )
    starts = ordered.with_row_index("_offset").filter("_start")
    stamp = found.get("timestamp") or found.get("order")
    moments = _moments(starts.get_column(stamp)) if stamp else pl.Series([None] * starts.height, dtype=pl.Int64)
    return _Ordered(
        ordered.get_column("_role"),
        ordered.get_column("_content"),
        (ordered.get_column("_start").cum_sum() - 1).cast(pl.UInt32),
        [*starts.get_column("_offset").to_list(), ordered.height],
        starts.get_column("_conversation").to_list(),
        starts.get_column("_first").to_list(),
        pl.from_epoch(moments, time_unit="us").dt.strftime("%Y-%m-%dT%H:%M:%SZ").to_list(),
        found["conversation"],
        source,
        unit,
    )
