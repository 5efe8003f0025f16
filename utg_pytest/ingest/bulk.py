"""The bulk path for large logs: polars splits a file into lines and, in Rust over all lines at once, recognises the
lines that are *plainly* valid conversations and reads their id and role sequence. Everything else (the line-exact
errors included) goes through the exact parser one line at a time, so the two paths agree line for line.

"Plainly valid" is a regular language, a strict subset of what the schema accepts, chosen so that a plain line's
probes follow from its roles alone:

- `{"id": <string>, "messages": [...]}`, either key first, then any number of `"timestamp"`, `"metadata"` and other
  keys; the id is non-empty and has no escapes;
- each message has a `"role"` (one of the four) and a `"content"` string with a non-whitespace character, and may
  have `"name"` and `"tool_call_id"` strings and other keys (not `tool_calls` or `id`) holding the values below: no
  null or list content, no tool calls, nothing blank;
- other values (metadata included) are scalars, or arrays or objects of scalars, and no key other than a message's is
  `role` or `utg` (per-probe thresholds take the exact path);
- strings hold only what JSON allows (no raw control characters, only JSON's escapes); whitespace is JSON's.

Anything outside that, however valid, is simply not plain. Polars' JSON decoder cannot serve here: it turns numbers
and booleans into strings without a word, which validation must not do.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

W = r"[ \t\r\n]*"
_KEY_CHAR = r'[^"\\\x00-\x1f]'
_ESCAPE = r'\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})'
_CHAR = rf"(?:{_KEY_CHAR}|{_ESCAPE})"
STRING = rf'"{_CHAR}*"'
PYTHON_SPACE = "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
"""What str.strip() strips (str.isspace), as the inside of a regex character class."""
_SIGNIFICANT = (
    rf'(?:[^"\\\x00-\x1f{PYTHON_SPACE}]'
    r'|\\["\\/]|\\u(?:[4-9a-fA-F][0-9a-fA-F]{3}|0[1-9a-fA-F][0-9a-fA-F]{2}|00[c-fC-F][0-9a-fA-F]))'
)
"""A character, raw or escaped, that Python's str.strip() keeps (every whitespace code point is below U+3001 and none
lies in U+0100..U+0FFF or U+00C0..U+00FF)."""
TEXT = rf'"{_CHAR}*{_SIGNIFICANT}{_CHAR}*"'
"""A string that is not blank once stripped."""
NUMBER = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?"
ROLES = ("system", "user", "assistant", "tool")
ROLE = r'"role"' + W + ":" + W + '"(?:' + "|".join(ROLES) + ')"'


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
    inner_key = key_except(("role", "utg"))
    value = _any(scalar, _array(scalar), _object(_pair(inner_key, scalar)))
    extra = _any(
        _pair('"timestamp"', STRING),
        _pair('"metadata"', _object(_pair(inner_key, value))),
        _pair(key_except(("id", "messages", "timestamp", "metadata", "role", "utg")), value),
    )
    content = _pair('"content"', TEXT)
    other = _any(
        _pair('"(?:name|tool_call_id)"', STRING),
        _pair(key_except(("role", "content", "name", "tool_call_id", "tool_calls", "id", "utg")), value),
    )
    before = f"(?:{_seq(other, ',', '')})*"
    message = _seq(
        r"\{", before + _any(_seq(ROLE, ",", before + content), _seq(content, ",", before + ROLE)) + _more(other), r"\}"
    )
    identity = _pair('"id"', f'"{_KEY_CHAR}+"')
    messages = _pair('"messages"', _array(message))
    head = _any(_seq(identity, ",", messages), _seq(messages, ",", identity))
    return "^" + _seq("", r"\{", head + _more(extra), r"\}", "") + "$"


PLAIN = _plain_line()
ID = r'"id"' + W + ":" + W + f'"({_KEY_CHAR}+)"'
"""On a plain line, the first match is the conversation's id: neither messages nor content strings can hold an
unescaped quote followed by a colon, and other keys come after both."""


@dataclass(frozen=True)
class Scan:
    lines: list[int]
    """1-based line numbers of the plain lines."""
    ids: list[str]
    """Their conversation ids."""
    probe_lines: list[int]
    probe_turns: list[int]
    """Each probe of the plain lines, in log order: its line and user turn (counted as probes.conversation_probes
    counts them)."""
    others: list[int]
    """Line numbers of every other line, blank ones included, for the exact parser."""
    read: Callable[[int], bytes]
    """The bytes of a line by its number."""


def _split(data: bytes) -> Any:
    """Lines as a polars String column, null where blank or not UTF-8.

    polars' CSV reader splits in parallel; it is only trusted when no byte could confuse it (its separator, a NUL, a
    byte-order mark, malformed UTF-8) and it returns one row per line. Otherwise the lines are split here."""
    import polars as pl

    if data and b"\x1f" not in data and b"\x00" not in data and not data.startswith(b"\xef\xbb\xbf"):
        try:
            column = pl.read_csv(
                io.BytesIO(data), has_header=False, separator="\x1f", quote_char=None, schema={"line": pl.String}
            ).get_column("line")
        except pl.exceptions.PolarsError:
            column = None
        if column is not None and _accounts_for(column, data):
            return column
    raw = data.split(b"\n")
    if raw and raw[-1] == b"":
        raw.pop()
    return pl.Series("line", [_utf8(line) for line in raw], dtype=pl.String)


def _accounts_for(column: Any, data: bytes) -> bool:
    """Whether the rows are the file's lines, no more, no fewer: their bytes plus one newline each (the reader drops
    the carriage return of a CRLF) make up the file."""
    size = int(column.str.len_bytes().fill_null(0).sum()) + column.len() - (not data.endswith(b"\n"))
    return bool(size == len(data) or size + data.count(b"\r\n") == len(data))


def _utf8(raw: bytes) -> str | None:
    """None for a line that is not UTF-8: it is not plain, and the exact parser names the bad byte."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _reader(data: bytes) -> Callable[[int], bytes]:
    """A line's bytes, newline included, exactly as a line-by-line reader sees them (error columns count from them)."""
    starts: list[int] = []

    def read(number: int) -> bytes:
        if not starts:
            starts.extend([0, *(match.end() for match in re.finditer(b"\n", data))])
        return data[starts[number - 1] : starts[number] if number < len(starts) else len(data)]

    return read


def scan(data: bytes) -> Scan:
    """Classify every line of a log and outline the probes of its plain lines.

    A role is coded by the second-to-last character of its `"role": "..."` match (`r` user, `t` assistant, `m` system,
    `l` tool). On a plain line every message but a tool message is dialogue, so after dropping those a probe is a user
    message right after an assistant one, and its turn is the count of user messages so far on its line."""
    import polars as pl

    column = _split(data)
    line = pl.col("line")
    found = (
        pl.DataFrame({"line": column})
        .lazy()
        .with_row_index("number", offset=1)
        .select(
            "number",
            plain=line.str.contains(PLAIN).fill_null(False),
            id=line.str.extract(ID, 1),
            roles=line.str.extract_all(ROLE),
        )
        .collect()
    )
    plain = found.filter("plain")
    number, code, user = pl.col("number"), pl.col("roles").str.slice(-2, 1), pl.col("user")
    first = (number != number.shift(1)).fill_null(True)
    probes = (
        plain.lazy()
        .select("number", "roles")
        .explode("roles")
        .filter(code != "l")
        .select(number, user=code == "r", after_assistant=(code.shift(1) == "t") & ~first, first=first)
        .with_columns(seen=user.cum_sum())
        .with_columns(turn=pl.col("seen") - pl.when("first").then(pl.col("seen") - user.cast(pl.UInt32)).forward_fill())
        .filter(user & pl.col("after_assistant"))
        .collect()
    )
    return Scan(
        plain.get_column("number").to_list(),
        plain.get_column("id").to_list(),
        probes.get_column("number").to_list(),
        probes.get_column("turn").to_list(),
        found.filter(~pl.col("plain")).get_column("number").to_list(),
        _reader(data),
    )
