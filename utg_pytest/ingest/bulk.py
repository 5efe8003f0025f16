"""The bulk path for large logs: polars splits a file into lines and, in Rust over all lines at once, recognises the
lines that are *plainly* valid conversations and reads their id, roles and which contents are blank. Everything else
(the line-exact errors included) goes through the exact parser one line at a time, so the two paths agree line for
line.

"Plainly valid" is a regular language, a strict subset of what the schema accepts, chosen so that a plain line's
probes follow from its roles and from which contents are blank:

- `{"id": <string>, "messages": [...]}`, in that order, then any number of `"timestamp"`, `"metadata"` and other keys;
  the id is non-empty and has no escapes;
- each message has one `"role"` (one of the four) and one `"content"` (a string or null), in either order; keys
  before and between them hold strings (`"name"`, `"tool_call_id"`) or scalars, keys after both may hold anything
  below, `"tool_calls"` (objects) included; no content parts. (Arrays and objects only after role and content keep the
  automaton small: allowing them anywhere made the check 16 times slower.)
- other values are scalars, or arrays or objects of scalars (metadata and tool calls one level deeper), and no key
  other than a message's is `role` or `content`, nor anywhere `utg` (per-probe thresholds take the exact path);
- strings hold only what JSON allows (no raw control characters, only JSON's escapes); whitespace is JSON's.

Anything outside that, however valid, is simply not plain. Polars' JSON decoder cannot serve here: it turns numbers
and booleans into strings without a word, which validation must not do.
"""

from __future__ import annotations

import gzip
import io
import mmap
import re
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from utg_pytest.ingest.jsonl import GZIP_DAMAGE, MAX_LINE_BYTES, gzip_damage

W = r"[ \t\r\n]*"
_KEY_CHAR = r'[^"\\\x00-\x1f]'
_ESCAPE = r'\\(?:["\\/bfnrt]|u(?:[0-9a-cA-CefEF][0-9a-fA-F]{3}|[dD][0-7][0-9a-fA-F]{2}))'
"""JSON's escapes, less the UTF-16 surrogates: a line holding one takes the exact parser, which rejects lone ones."""
_CHAR = rf"(?:{_KEY_CHAR}|{_ESCAPE})"
STRING = rf'"{_CHAR}*"'
_RAW_SPACE = " \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
_ESCAPED_SPACE = r"\\[tnrf]|\\u(?:000[9a-dA-D]|001[c-fC-F]|0020|0085|00[aA]0|1680|200[0-9aA]|202[89fF]|205[fF]|3000)"
BLANK = f'"(?:[{_RAW_SPACE}]|{_ESCAPED_SPACE})*"'
"""A string that str.strip() empties: only whitespace, raw (where JSON allows it raw) or escaped."""
NUMBER = r"-?(?:0|[1-9][0-9]{0,99})(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
"""A JSON number whose integer part Python converts without its 4,300-digit limit; a longer one takes the exact path."""
ROLES = ("system", "user", "assistant", "tool")
ROLE = r'"role"' + W + ":" + W + '"(?:' + "|".join(ROLES) + ')"'
CONTENT = r'"content"' + W + ":" + W + f'(?:null|{BLANK}|")'
"""A message's content, matched far enough to tell: `null`, a whole blank string, or only the opening quote of any
other string (alternatives are tried in order)."""


def key_except(words: Iterable[str]) -> str:
    """A JSON object key without escapes that is none of `words`, as a regular expression."""
    trie: dict[str, Any] = {}
    for word in words:
        node = trie
        for char in word:
            node = node.setdefault(char, {})
        node[""] = {}

    def pattern(node: dict[str, Any]) -> str:
        nexts = sorted(c for c in node if c)
        options = [] if "" in node else [""]
        other = f'[^"\\\\\\x00-\\x1f{re.escape("".join(nexts))}]' if nexts else _KEY_CHAR
        options.append(f"{other}{_KEY_CHAR}*")
        options += [re.escape(c) + pattern(node[c]) for c in nexts]
        return "(?:" + "|".join(options) + ")"

    return '"' + pattern(trie) + '"'


def _seq(*tokens: str) -> str:
    """Tokens in sequence, JSON whitespace allowed between them."""
    return W.join(tokens)


def _any(*options: str) -> str:
    return "(?:" + "|".join(options) + ")"


def _pair(key: str, value: str) -> str:
    return _seq(key, ":", value)


def _more(item: str) -> str:
    """Zero or more further comma-separated items."""
    return "(?:" + _seq("", ",", item) + ")*"


def _object(pair: str) -> str:
    return _seq(r"\{", f"(?:{pair}{_more(pair)})?", r"\}")


def _array(item: str) -> str:
    return _seq(r"\[", f"(?:{item}{_more(item)})?", r"\]")


def _plain_line() -> str:
    scalar = _any(STRING, NUMBER, "true", "false", "null")
    inner_key = key_except(("role", "content", "utg"))
    value = _any(scalar, _array(scalar), _object(_pair(inner_key, scalar)))
    deep = _object(_pair(inner_key, value))
    extra = _any(
        _pair('"timestamp"', STRING),
        _pair('"metadata"', deep),
        _pair(key_except(("id", "messages", "timestamp", "metadata", "role", "content", "utg")), value),
    )
    named = _pair('"(?:name|tool_call_id)"', STRING)
    message_key = key_except(("role", "content", "name", "tool_call_id", "tool_calls", "utg"))
    light = _any(named, _pair(message_key, scalar))
    full = _any(named, _pair(message_key, value), _pair('"tool_calls"', _array(deep)))
    content = _pair('"content"', _any(STRING, "null"))
    before = f"(?:{_seq(light, ',', '')})*"
    pairs = _any(_seq(ROLE, ",", before + content), _seq(content, ",", before + ROLE))
    message = _seq(r"\{", before + pairs + _more(full), r"\}")
    head = _seq(_pair('"id"', f'"{_KEY_CHAR}+"'), ",", _pair('"messages"', _array(message)))
    return "^" + _seq("", r"\{", head + _more(extra), r"\}", "") + "$"


PLAIN = _plain_line()
ID = "^" + _seq("", r"\{", '"id"', ":", f'"({_KEY_CHAR}+)"')


@dataclass(frozen=True)
class Scan:
    lines: list[int]
    """1-based line numbers of the plain lines."""
    ids: list[str]
    """Their conversation ids."""
    outline: Any
    """A polars DataFrame, one row per message of the plain lines in order: `number` (its line), `role` (its code)
    and `blank` (whether its content is blank)."""
    others: list[int]
    """Line numbers of every other line, blank ones included, for the exact parser."""
    read: Callable[[int], bytes]
    """The bytes of a line by its number."""
    damage: tuple[int, str] | None = None
    """Where a damaged gzip stream ended the file, and why."""


def _gunzip(compressed: bytes) -> tuple[bytes, BaseException | None]:
    """Every member of a gzip stream, decompressed; on damage, what came before it (cut after its last complete line)
    and the error."""
    out: list[bytes] = []
    rest = compressed
    try:
        while rest:
            if not rest.strip(b"\x00") and out:
                break
            if rest[:2] != b"\x1f\x8b":
                raise gzip.BadGzipFile(f"Not a gzipped file ({rest[:2]!r})")
            member = zlib.decompressobj(16 + zlib.MAX_WBITS)
            out.append(member.decompress(rest))
            if not member.eof:
                raise EOFError("Compressed file ended before the end-of-stream marker was reached")
            rest = member.unused_data
    except GZIP_DAMAGE as exc:
        data = b"".join(out)
        return data[: data.rfind(b"\n") + 1], exc
    return b"".join(out), None


def _contents(path: Path) -> tuple[bytes | mmap.mmap, BaseException | None]:
    """The file's bytes: decompressed in memory, or mapped (read only where needed); and the damage that ended a gzip
    stream early."""
    if path.name.endswith(".gz"):
        return _gunzip(path.read_bytes())
    with path.open("rb") as handle:
        return (mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) if path.stat().st_size else b""), None


def _split(path: Path, data: bytes | mmap.mmap) -> Any:
    """Lines as a polars String column, null where blank or not UTF-8.

    polars' CSV reader, with a separator valid JSON cannot hold, splits in parallel straight from the file. It is
    trusted only when its rows account for every byte of the file; otherwise (a byte-order mark, that separator, a NUL,
    malformed UTF-8) the lines are split here."""
    import polars as pl

    try:
        column = pl.read_csv(
            path if isinstance(data, mmap.mmap) else io.BytesIO(data),
            has_header=False,
            separator="\x1f",
            quote_char=None,
            schema={"line": pl.String},
        ).get_column("line")
    except pl.exceptions.PolarsError:
        column = None
    if column is not None and _accounts_for(column, data):
        return column
    raw = data[:].split(b"\n")
    if raw and raw[-1] == b"":
        raw.pop()
    return pl.Series("line", [_utf8(line) for line in raw], dtype=pl.String)


def _accounts_for(column: Any, data: bytes | mmap.mmap) -> bool:
    """Whether the rows are the file's lines, no more, no fewer, unchanged in length: their bytes plus one newline
    each (the reader drops the carriage return of a CRLF) make up the file."""
    if not data:
        return bool(column.len() == 0)
    size = int(column.str.len_bytes().fill_null(0).sum()) + column.len() - (data[-1:] != b"\n")
    return bool(size == len(data) or size + data[:].count(b"\r\n") == len(data))


def _utf8(raw: bytes) -> str | None:
    """None for a line that is not UTF-8: it is not plain, and the exact parser names the bad byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _reader(data: bytes | mmap.mmap) -> Callable[[int], bytes]:
    """A line's bytes, newline included, exactly as a line-by-line reader sees them (error columns count from them)."""
    starts: list[int] = []

    def read(number: int) -> bytes:
        if not starts:
            starts.extend([0, *(match.end() for match in re.finditer(b"\n", data))])
        return data[starts[number - 1] : starts[number] if number < len(starts) else len(data)]

    return read


def scan(path: Path, max_line_bytes: int = MAX_LINE_BYTES) -> Scan:
    """Classify every line of a log and outline the messages of its plain lines.

    On a plain line the n-th role and the n-th content belong to the n-th message. A role is coded by the
    second-to-last character of its match (`r` user, `t` assistant, `m` system, `l` tool); a content is blank unless
    its match is just the opening quote of a string (three quotes in all). Which messages are probes is probes.py's
    rule, applied to this outline."""
    import polars as pl

    data, damage = _contents(path)
    column = _split(path, data)
    line = pl.col("line")
    found = (
        pl.DataFrame({"line": column})
        .lazy()
        .with_row_index("number", offset=1)
        .select(
            "number",
            plain=(line.str.contains(PLAIN) & (line.str.len_bytes() <= max_line_bytes)).fill_null(False),
            id=line.str.extract(ID, 1),
            roles=line.str.extract_all(ROLE),
            contents=line.str.extract_all(CONTENT),
        )
        .collect()
    )
    plain = found.filter("plain")
    outline = (
        plain.lazy()
        .select("number", "roles", "contents")
        .explode("roles", "contents")
        .select(
            "number",
            role=pl.col("roles").str.slice(-2, 1),
            blank=pl.col("contents").str.count_matches('"', literal=True) != 3,
        )
        .collect()
    )
    return Scan(
        plain.get_column("number").to_list(),
        plain.get_column("id").to_list(),
        outline,
        found.filter(~pl.col("plain")).get_column("number").to_list(),
        _reader(data),
        None if damage is None else (len(column) + 1, gzip_damage(damage, len(column))),
    )
