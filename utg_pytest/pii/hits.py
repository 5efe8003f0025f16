"""What the API returns: kinds and places of values, never the values, so that results can go into logs."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from utg_pytest.model import Message

KINDS = ("email", "phone", "payment_card", "iban", "ip_address", "us_ssn", "national_id", "secret")
TAGS = {
    "email": "EMAIL",
    "phone": "PHONE",
    "payment_card": "CARD",
    "iban": "IBAN",
    "ip_address": "IP",
    "us_ssn": "SSN",
    "national_id": "ID",
    "secret": "SECRET",
}


@dataclass(frozen=True)
class Hit:
    """A detected value in one text: its kind, the rule that found it (`visa`, `jwt`, `de_idnr`, `fallback`...) and
    its span [start, end) in the original text. Never the value itself."""

    kind: str
    start: int
    end: int
    rule: str


@dataclass(frozen=True)
class Finding:
    """A detected value (or part of one) in message `message` of a conversation, at [start, end) of its text.
    `joined` is the index of the other message when the value is split over two messages; both parts are findings."""

    message: int
    kind: str
    start: int
    end: int
    rule: str
    joined: int | None = None


@dataclass(frozen=True)
class Redacted:
    """What may be sent: the messages with every value replaced, and what was replaced (kinds and places only)."""

    messages: tuple[Message, ...]
    findings: tuple[Finding, ...]
    counts: dict[str, int]
    """Values replaced, by kind (a split value counts once)."""


def counts(found: Iterable[Hit | Finding]) -> dict[str, int]:
    """Values per kind, in KINDS order; the second part of a split value is not counted again."""
    tally = Counter(
        f.kind for f in found if not (isinstance(f, Finding) and f.joined is not None and f.joined < f.message)
    )
    return {kind: tally[kind] for kind in KINDS if tally[kind]}
