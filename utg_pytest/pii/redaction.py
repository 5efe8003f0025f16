"""redact(): typed placeholders numbered per conversation, applied until a scan of the result finds nothing."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

from utg_pytest.model import Message
from utg_pytest.pii.contact import EXTENSION, OBFUSCATED_DOT
from utg_pytest.pii.conversation import scan_with_partners
from utg_pytest.pii.hits import KINDS, TAGS, Finding, Redacted, counts
from utg_pytest.pii.lazy import Lazy
from utg_pytest.pii.normalization import normalize

_OBFUSCATED_AT = Lazy(r"\s*[\[({<]\s*at\s*[\])}>]\s*|\s+at\s+|%40", re.I)
_OBFUSCATED_DOT_RE = Lazy(OBFUSCATED_DOT, re.I)
_EXISTING_PLACEHOLDER = Lazy(r"<([A-Z]+)_([0-9]+)>")


def _canonical(kind: str, value: str) -> str:
    """The form under which two mentions are the same value: "+44 20 7946 0958" and "020 7946 0958" share their last
    nine digits, "A [at] B [dot] com" is a@b.com."""
    value = normalize(value)[0]
    if kind == "email":
        return _OBFUSCATED_DOT_RE.sub(".", _OBFUSCATED_AT.sub("@", value)).lower().replace(" ", "")
    if kind == "phone":
        return "".join(c for c in EXTENSION.sub("", value) if c.isdigit())[-9:]
    if kind == "secret":
        return value.strip()
    return "".join(c for c in value if c.isalnum()).upper()


class _Placeholders:
    """Placeholders for one conversation: the same value keeps its number, a new one takes the next number of its
    tag, counting from above any placeholder of that tag already in the log."""

    def __init__(self, messages: Sequence[Message]) -> None:
        self.issued = Counter[str]()
        self.numbers: dict[tuple[str, str], int] = {}
        for message in messages:
            for tag, n in _EXISTING_PLACEHOLDER.findall(message.text):
                self.issued[tag] = max(self.issued[tag], int(n))

    def __call__(self, kind: str, value: str) -> str:
        key = (TAGS[kind], value)
        if key not in self.numbers:
            self.issued[key[0]] += 1
            self.numbers[key] = self.issued[key[0]]
        return f"<{key[0]}_{self.numbers[key]}>"


def _replace(
    messages: tuple[Message, ...], findings: list[Finding], partner: dict[Finding, Finding], name: _Placeholders
) -> tuple[Message, ...]:
    def value(f: Finding) -> str:
        parts = sorted((f, partner[f]), key=lambda g: g.message) if f in partner else [f]
        return _canonical(f.kind, "".join(messages[g.message].text[g.start : g.end] for g in parts))

    by_message: dict[int, list[Finding]] = {}
    for f in findings:
        by_message.setdefault(f.message, []).append(f)
    redacted = []
    for index, message in enumerate(messages):
        pieces, pos = [], 0
        for f in sorted(by_message.get(index, []), key=lambda f: f.start):
            pieces += [message.text[pos : f.start], name(f.kind, value(f))]
            pos = f.end
        pieces.append(message.text[pos:])
        redacted.append(Message(message.role, "".join(pieces), message.has_tool_calls))
    return tuple(redacted)


def redact(messages: Sequence[Message]) -> Redacted:
    """The conversation with every finding replaced by `<TAG_n>`, n counting the distinct values of that tag in
    order of first mention, from above any such placeholder already in the log (so that a logged `<EMAIL_1>` and a
    new one are never confused). Both parts of a split value get the value's placeholder.

    The result is scanned again, and redacted again, until nothing is found: a rare value only shows once what it
    was glued to is replaced. `findings` are those in the messages given; `counts` counts every round."""
    name = _Placeholders(messages)
    findings, partner = scan_with_partners(messages)
    current, found, pairs = tuple(messages), findings, partner
    tally = Counter[str]()
    while found:
        tally.update(counts(found))
        current = _replace(current, found, pairs, name)
        found, pairs = scan_with_partners(current)
    return Redacted(current, tuple(findings), {kind: tally[kind] for kind in KINDS if tally[kind]})
