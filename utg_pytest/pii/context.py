"""What finders search, and the neighbourhood that decides what a checksum cannot: the normalised text with
placeholders and values already found masked, and the keywords and labels around a span."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cached_property

from utg_pytest.pii.lazy import Lazy

Candidate = tuple[int, int, str, str]
"""What a finder yields: (start, end, kind, rule) in the normalised text."""


_NULS = Lazy("\0+")
_PLACEHOLDER_BODY = r"[A-Z]+(?:_[A-Z]+)*(?:_[0-9]+)?"
_PLACEHOLDER = Lazy(
    rf"<{_PLACEHOLDER_BODY}>|\[(?!(?:AT|DOT)\]){_PLACEHOLDER_BODY}\]|%{_PLACEHOLDER_BODY}%"
    r"|\{\{\s*[\w.-]+\s*\}\}|\$\{[\w.-]+\}"
)


def mask(text: str, spans: Iterable[Candidate]) -> str:
    """`text` with the (sorted, disjoint) spans turned into NULs."""
    pieces, pos = [], 0
    for start, end, _, _ in spans:
        pieces += [text[pos:start], "\0" * (end - start)]
        pos = end
    return "".join(pieces) + text[pos:]


def mask_placeholders(text: str) -> str:
    """Placeholders become NULs (same length, so offsets hold): nothing can match them or run into them."""
    return _PLACEHOLDER.sub(lambda m: "\0" * len(m.group()), text)


@dataclass(frozen=True)
class Text:
    """A normalised text with placeholders and values already found masked as NULs, and the keywords its
    neighbourhood lends. Keyword windows count a masked run as one character, so that a window reaches as far
    whether a value next to it is masked at its own length or was replaced by a shorter placeholder."""

    s: str
    context: str

    @cached_property
    def _squeezed(self) -> tuple[str, list[int]] | None:
        """The text with each run of NULs as one NUL, and for each position of the text (its end included) where it
        lands in that; None when nothing is masked."""
        if "\0" not in self.s:
            return None
        pieces: list[str] = []
        where: list[int] = []
        pos = n = 0
        for run in _NULS.finditer(self.s):
            a, b = run.span()
            pieces += [self.s[pos:a], "\0"]
            where += [*range(n, n + a - pos), *[n + a - pos] * (b - a)]
            n, pos = n + a - pos + 1, b
        pieces.append(self.s[pos:])
        where += range(n, n + len(self.s) - pos + 1)
        return "".join(pieces), where

    def _window(self, start: int, end: int) -> tuple[str, int, int]:
        if self._squeezed is None:
            return self.s, start, end
        text, where = self._squeezed
        return text, where[start], where[end]

    def near(self, words: Lazy, start: int, end: int, before: int = 48, after: int = 32) -> bool:
        s, a, b = self._window(start, end)
        return bool(
            words.search(s, max(0, a - before), a) or words.search(s, b, b + after) or words.search(self.context)
        )

    def labelled(self, start: int) -> bool:
        """Whether the text right before `start` labels it as something else: "order 4789...", "IMEI: 35...",
        `"order_id": "9579..."`."""
        s, a, _ = self._window(start, start)
        return bool(_NOT_PII_LABEL.search(s, max(0, a - 40), a))

    def last_end(self, words: Lazy, start: int, window: int = 40) -> int:
        """Where the last of `words` in the `window` characters before `start` ends, or -1."""
        s, a, _ = self._window(start, start)
        return max((m.end() for m in words.finditer(s, max(0, a - window), a)), default=-1)

    def glued(self, start: int, end: int) -> bool:
        """Whether [start, end) is part of a longer identifier: letters right against it, or joined to letters by
        `-`, `.`, `/` or `#` (ORD-2026-004817, v2.0.19, 05552406-EE32)."""
        s = self.s
        if start and (s[start - 1].isalnum() or s[start - 1] == "_"):
            return True
        if start >= 2 and s[start - 1] in "-./#" and s[start - 2].isalnum():
            return True
        if end < len(s) and (s[end].isalnum() or s[end] == "_"):
            return True
        return end + 1 < len(s) and s[end] in "-./:#" and s[end + 1].isalnum()


_NOT_PII_LABEL = Lazy(
    r"\b(?:order|invoice|imei|isbn|issn|tracking|shipment|parcel|sku|ean|upc|gtin|barcode|serial|ticket|ref"
    r"|reference|booking|confirmation|receipt|transaction|txn)s?"
    r"(?:[ _-]?(?:id|no|nr|num|number|code))?\.?[\"']?\s*(?:is|was|:|=|#|-)?\s*[\"']?\s*$",
    re.I,
)
