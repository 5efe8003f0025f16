"""detect(): the finders in tiers, from the most to the least specific, on the normalised text, and their hits
mapped back to the original."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from functools import lru_cache

from utg_pytest.pii.contact import emails, phones
from utg_pytest.pii.context import Candidate, Text, mask, mask_placeholders
from utg_pytest.pii.credentials import secrets
from utg_pytest.pii.hits import Hit
from utg_pytest.pii.identifiers import alnum_ids, cards, digit_ids, ibans
from utg_pytest.pii.network import ips
from utg_pytest.pii.normalization import normalize

_PRECEDENCE = {
    kind: rank
    for rank, kind in enumerate(
        ("phone", "ip_address", "national_id", "us_ssn", "payment_card", "iban", "email", "secret")
    )
}
"""Which kind names a union of overlapping hits: a secret URL holding an e-mail stays a secret."""

_TIERS: tuple[tuple[Callable[[Text], Iterator[Candidate]], ...], ...] = (
    (secrets,),
    (emails, ibans, cards),
    (digit_ids, alnum_ids, ips),
    (phones,),
)
"""Finders from the most to the least specific. Each tier runs on the text with the hits of the tiers before it
masked, so that a vaguer shape (a phone number, a bare id) never absorbs the digits of a card or an SSN beside it,
and again on its own hits masked until it finds nothing new: what is found never depends on whether a neighbouring
value was already redacted, so redacting twice changes nothing."""


def merge(candidates: Iterable[Candidate]) -> list[Candidate]:
    """Overlapping (start, end, kind, detail) spans become their union, named after the highest-precedence kind
    among them: whatever any finder flagged stays covered."""
    merged: list[Candidate] = []
    for start, end, kind, rule in sorted(candidates):
        if merged and start < merged[-1][1]:
            prev = merged[-1]
            top = (kind, rule) if _PRECEDENCE[kind] > _PRECEDENCE[prev[2]] else (prev[2], prev[3])
            merged[-1] = (prev[0], max(end, prev[1]), *top)
        else:
            merged.append((start, end, kind, rule))
    return merged


def detect(text: str, *, context: str = "") -> list[Hit]:
    """Every value in `text`, as sorted, non-overlapping spans of the original text. `context` is text from around
    it (the previous message, say) that is only searched for keywords, such as "SSN" before a bare 9-digit number."""
    return list(_detect(text, context))


@lru_cache(maxsize=8192)
def _detect(text: str, context: str) -> tuple[Hit, ...]:
    """Remembered: every probe of a conversation repeats the messages of the probe before it, so a guard scanning
    probe by probe would otherwise scan a long conversation's first message once per probe."""
    norm, starts, ends = normalize(text)
    # NUL marks what is masked, so a NUL in the log itself becomes a space
    t = Text(mask_placeholders(norm.replace("\0", " ")), mask_placeholders(normalize(context)[0]) if context else "")
    found: list[Candidate] = []
    for tier in _TIERS:
        while tier_found := merge(c for finder in tier for c in finder(t)):
            found += tier_found
            t = Text(mask(t.s, tier_found), t.context)
    if starts is None or ends is None:
        return tuple(Hit(kind, start, end, rule) for start, end, kind, rule in sorted(found))
    return tuple(Hit(kind, starts[start], ends[end - 1], rule) for start, end, kind, rule in sorted(found))
