"""The form of a text that detection runs on, and the map from its offsets back to the original text, so that
look-alike characters and invisible controls cannot hide a value."""

from __future__ import annotations

import unicodedata

from utg_pytest.pii.lazy import Lazy

_INVISIBLE = Lazy("[\u00ad\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff]")
_NON_ASCII = Lazy(r"[^\x00-\x7f]+")
_OTHER_DIGIT = Lazy(r"(?![0-9])\d")


def normalize(text: str) -> tuple[str, list[int] | None, list[int] | None]:
    """The text detection runs on (NFKC, zero-width and bidi controls removed, decimal digits of every script as
    ASCII), and for each of its characters the start and end of the original characters it came from (None, None
    when it is the text itself). NFKC is applied per base character with its combining marks, so that every output
    character maps to a span of input."""
    if text.isascii() or (
        not _INVISIBLE.search(text) and not _OTHER_DIGIT.search(text) and unicodedata.is_normalized("NFKC", text)
    ):
        return text, None, None
    out: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    pos = 0
    for match in _NON_ASCII.finditer(text):
        a, b = match.span()
        if a > pos and unicodedata.combining(text[a]):
            a -= 1
        out.append(text[pos:a])
        starts.extend(range(pos, a))
        ends.extend(range(pos + 1, a + 1))
        i = a
        while i < b:
            j = i + 1
            while j < b and unicodedata.combining(text[j]):
                j += 1
            piece = unicodedata.normalize("NFKC", _INVISIBLE.sub("", text[i:j]))
            piece = "".join(str(unicodedata.decimal(c)) if not c.isascii() and c.isdecimal() else c for c in piece)
            out.append(piece)
            starts.extend([i] * len(piece))
            ends.extend([j] * len(piece))
            i = j
        pos = b
    out.append(text[pos:])
    starts.extend(range(pos, len(text)))
    ends.extend(range(pos + 1, len(text) + 1))
    return "".join(out), starts, ends
