"""scan(): detection per message, each lending its end to the next as keyword context, plus values split over two
messages of the same role."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from utg_pytest.model import Message
from utg_pytest.pii.context import Candidate
from utg_pytest.pii.detection import detect, merge
from utg_pytest.pii.hits import Finding
from utg_pytest.pii.lazy import Lazy

_CONTEXT_CHARS = 200
"""How much of the previous message lends keywords to the next one."""
_SPLIT_WINDOW = 120
"""How much of the end of one message and the start of the next is searched for a value split between them."""


def _pairs(messages: Sequence[Message]) -> Iterator[tuple[int, int]]:
    """Messages that may continue each other: the next message of the same role, at most one message later (a user
    who hit enter too early, with or without an assistant reply between)."""
    for i, message in enumerate(messages):
        for j in range(i + 1, min(i + 3, len(messages))):
            if messages[j].role == message.role:
                if message.text.strip() and messages[j].text.strip():
                    yield i, j
                break


_PLAIN_WORD = Lazy(r"[^\W\d_]{1,15}[.,!?;:'\")\]]*")


_Part = tuple[int, Candidate]
"""A message index and a span in it."""


def _split_values(messages: Sequence[Message], i: int, j: int) -> Iterator[tuple[_Part, _Part]]:
    """Values that run from the end of message i into the start of message j, as their two parts. The two are
    searched joined directly (unless that would fuse a word with what follows) and, where neither side has a space
    at the join, with a space between; not at all when either side of the join is an ordinary word, which no value
    can continue."""
    first, second = messages[i].text, messages[j].text
    tail, head = first[-_SPLIT_WINDOW:], second[:_SPLIT_WINDOW]
    before, after = tail.split(), head.split()
    if not before or not after or _PLAIN_WORD.fullmatch(before[-1]) or _PLAIN_WORD.fullmatch(after[0]):
        return
    offset = len(first) - len(tail)
    last, first_char = tail[-1:], head[:1]
    if last.isspace() or first_char.isspace():
        joiners: tuple[str, ...] = ("",)
    elif last.isalnum() and first_char.isalnum() and not (last.isdigit() and first_char.isdigit()):
        joiners = (" ",)
    else:
        joiners = ("", " ")
    context = messages[i - 1].text[-_CONTEXT_CHARS:] if i else ""
    for joiner in joiners:
        cut = len(tail) + len(joiner)
        for hit in detect(tail + joiner + head, context=context):
            if hit.start < len(tail) and hit.end > cut:
                yield (
                    (i, (offset + hit.start, len(first), hit.kind, hit.rule)),
                    (j, (0, hit.end - cut, hit.kind, hit.rule)),
                )


def scan_with_partners(messages: Sequence[Message]) -> tuple[list[Finding], dict[Finding, Finding]]:
    """The findings, and for each part of a split value the other part. Within a message, overlapping hits and parts
    of split values are merged as detect() merges hits."""
    spans: dict[int, list[Candidate]] = {}
    for i, message in enumerate(messages):
        context = messages[i - 1].text[-_CONTEXT_CHARS:] if i else ""
        spans[i] = [(h.start, h.end, h.kind, h.rule) for h in detect(message.text, context=context)]

    def covered(part: _Part) -> bool:
        index, (start, end, _, _) = part
        return any(a <= start and end <= b for a, b, _, _ in spans[index])

    splits: list[tuple[_Part, _Part]] = []
    for i, j in _pairs(messages):
        for first, second in _split_values(messages, i, j):
            complete = covered(first) and (covered(second) or first[1][2] == "secret")
            if not complete and all(first != seen for seen, _ in splits):
                splits.append((first, second))
    for first, second in splits:
        spans[first[0]].append(first[1])
        spans[second[0]].append(second[1])
    merged = {i: merge(found) for i, found in spans.items()}

    def containing(part: _Part) -> tuple[int, int]:
        index, (start, _, _, _) = part
        return index, next(k for k, (a, b, _, _) in enumerate(merged[index]) if a <= start < b)

    joined: dict[tuple[int, int], tuple[int, int]] = {}
    for first, second in splits:
        joined[containing(first)], joined[containing(second)] = containing(second), containing(first)
    findings = {
        (i, k): Finding(i, kind, start, end, rule, joined[(i, k)][0] if (i, k) in joined else None)
        for i, found in merged.items()
        for k, (start, end, kind, rule) in enumerate(found)
    }
    return list(findings.values()), {findings[x]: findings[y] for x, y in joined.items()}


def scan(messages: Sequence[Message]) -> list[Finding]:
    """Every value in a conversation: for each message, in order, its findings sorted and not overlapping. Each
    message lends its end to the next as keyword context. A value split over two messages of the same role is a
    finding in each, naming the other message in `joined`; it is left out when both parts are covered by hits
    within their messages already, and a secret complete in the first message is not extended into the second."""
    return scan_with_partners(messages)[0]
