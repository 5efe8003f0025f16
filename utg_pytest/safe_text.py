"""Log text made safe for where it is shown: terminals, JUnit XML and pytest node ids.

Log text is untrusted: an ANSI or OSC escape in a conversation can clear a CI screen or print a fake green PASSED, a
carriage return overwrites the line before it, NUL or ESC makes JUnit XML malformed, and `::` in a conversation id
splits its node id in two. Every such character is shown as a visible escape instead, so nothing is hidden and the
text still reads as it was logged.
"""

from __future__ import annotations

import hashlib
import unicodedata

_UNSAFE_CATEGORIES = frozenset(("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"))
"""Controls, format characters (bidi overrides, zero-width), surrogates, private use, unassigned, and line or
paragraph separators: none of them is meant to be seen, and each can change what a terminal shows."""

NODE_PART_LIMIT = 120
"""Characters of a conversation id kept in a node id: a 5 kB id would make every line of the report that long."""


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def _unsafe(char: str) -> bool:
    return unicodedata.category(char) in _UNSAFE_CATEGORIES


def printable(text: str, newlines: bool = True) -> str:
    """Text with every invisible or terminal-controlling character escaped; newlines and tabs kept where the text is
    shown as a block (`newlines`), escaped where it must stay on one line."""
    if text.isprintable() and (newlines or "\n" not in text):
        return text
    kept = "\n\t" if newlines else ""
    return "".join(_escape(c) if c not in kept and _unsafe(c) else c for c in text)


def clip(text: str, limit: int = 200) -> str:
    """At most about `limit` characters, saying how long the whole was: an error about a 10 MB value must not quote
    it whole."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text):,} characters)"


def node_part(text: str) -> str:
    """A log file name or conversation id as one part of a pytest node id, one to one for the ids logs really use:
    an id that is printable and holds no `::` or backslash is kept as it is. Otherwise backslashes are doubled, a colon
    next to another colon and every unsafe character become escapes, and an id longer than NODE_PART_LIMIT is cut and
    ends in a hash of the whole, so two long ids that share a beginning stay apart."""
    if text.isprintable() and "::" not in text and "\\" not in text and len(text) <= NODE_PART_LIMIT:
        return text
    out = []
    for index, char in enumerate(text):
        if char == "\\":
            out.append("\\\\")
        elif char == ":" and (text[index - 1 : index] == ":" or text[index + 1 : index + 2] == ":"):
            out.append("\\x3a")
        elif _unsafe(char):
            out.append(_escape(char))
        else:
            out.append(char)
    escaped = "".join(out)
    if len(escaped) <= NODE_PART_LIMIT:
        return escaped
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:12]
    return f"{escaped[: NODE_PART_LIMIT - 16]}...{digest}"
