"""What leaves the machine: the PII guard over every probe before a request is built from it.

A probe's context goes to the model under test (and, labelled against, to an LLM judge). With the guard on, each
context is scanned for personal data (utg_pytest.pii) and, in `block` mode, a probe whose context holds any is not
sent: it becomes an error naming where (file, line, message index) and what kind, never the value. In `redact` mode
every value is replaced by a typed placeholder, the same for the same value within the conversation, so the model
still sees a coherent conversation. The guard fails closed: if scanning raises, nothing is sent.

Scanning is most of what a cached re-run costs after pytest itself, so a run with a cache remembers the digest of
each message sequence the scanner found nothing in, under the scanner's own identity, and does not scan it again.
Only clean sequences are remembered, and only as digests, so nothing found is ever stored.
"""

from __future__ import annotations

import hashlib
import sys
import unicodedata
from collections import Counter
from collections.abc import Collection, Sequence
from contextlib import suppress
from dataclasses import dataclass, replace
from functools import cache
from importlib import metadata, resources
from typing import TYPE_CHECKING, Protocol

from utg_pytest.model import Message, Probe

if TYPE_CHECKING:
    from utg_pytest.pii import Finding

MODES = ("block", "redact", "off")


@dataclass(frozen=True)
class Guarded:
    probes: tuple[Probe, ...]
    """What may be sent, in order: unchanged, or with its context redacted."""
    blocked: dict[str, str]
    """Probe id -> why it was not sent."""
    counts: dict[str, int]
    """Values found, by kind, over the conversations (each conversation counted once)."""
    conversations: int
    """Conversations in which something was found."""


class ScanMemory(Protocol):
    """Where the digests of clean message sequences are kept between runs (`cache.GenerationCache`)."""

    def clean(self, keys: Sequence[str]) -> Collection[str]:
        """Those of `keys` a previous run found clean."""
        ...

    def put_clean(self, keys: Sequence[str]) -> None:
        """Remember `keys` as found clean."""
        ...


VALIDATORS = ("phonenumberslite", "phonenumbers", "python-stdnum")
"""The distributions whose metadata the scanner's validators read: a new release may find what an old one missed."""


@cache
def scanner_identity() -> str:
    """What a scan's outcome depends on besides the messages: the scanner's own source and this release of
    utg-pytest (an install without sources), its validators' releases, and the Python that runs it (its regular
    expressions, its Unicode tables). A change to any of them means every sequence is scanned again."""
    from utg_pytest import __version__

    digest = hashlib.sha256(f"utg-pytest={__version__}\0{sys.implementation.name} {sys.version}\0".encode())
    for entry in sorted(resources.files("utg_pytest.pii").iterdir(), key=lambda entry: entry.name):
        if entry.name.endswith(".py"):
            digest.update(entry.name.encode() + b"\0" + entry.read_bytes() + b"\0")
    for name in VALIDATORS:
        try:
            release = metadata.version(name)
        except metadata.PackageNotFoundError:
            release = "absent"
        digest.update(f"{name}={release}\0".encode())
    digest.update(unicodedata.unidata_version.encode())
    return digest.hexdigest()


def scan_key(messages: Sequence[Message]) -> str:
    """Where a message sequence found clean is remembered: the scanner's identity and every role and text, each
    prefixed by its length so that no two sequences share a key."""
    digest = hashlib.sha256(scanner_identity().encode())
    for message in messages:
        role, text = message.role.encode(), message.text.encode("utf-8", "surrogatepass")
        digest.update(b"%d:%d:" % (len(role), len(text)) + role + text)
    return digest.hexdigest()


def scan_all(sequences: Sequence[Sequence[Message]], memory: ScanMemory | None) -> list[list[Finding]]:
    """The findings in each sequence. With a `memory`, those a previous run found clean are not scanned again, and
    those found clean now are remembered. The memory only saves time: if it fails, everything is scanned, and what
    could not be remembered is scanned again next time."""
    if memory is None:
        return [_scan(messages) for messages in sequences]
    keys = [scan_key(messages) for messages in sequences]
    try:
        known = set(memory.clean(keys))
    except Exception:  # forgetting can only cost a scan, never let a value through
        known = set()
    found = [[] if key in known else _scan(messages) for messages, key in zip(sequences, keys, strict=True)]
    fresh = dict.fromkeys(key for key, hits in zip(keys, found, strict=True) if not hits and key not in known)
    if fresh:
        with suppress(Exception):  # the same: a key not kept is scanned again next time
            memory.put_clean(list(fresh))
    return found


def _scan(messages: Sequence[Message]) -> list[Finding]:
    """`pii.scan`, imported only once a sequence has to be scanned: a replay whose texts are all known clean skips
    compiling the scanner too."""
    from utg_pytest import pii

    return pii.scan(messages)


def redact_all(sequences: Sequence[Sequence[Message]], memory: ScanMemory | None) -> list[tuple[Message, ...]]:
    """Each sequence with every value found replaced by its placeholder (see `pii.redact`); a clean one as it is."""
    return [
        _redact(messages) if hits else tuple(messages)
        for messages, hits in zip(sequences, scan_all(sequences, memory), strict=True)
    ]


def _redact(messages: Sequence[Message]) -> tuple[Message, ...]:
    from utg_pytest import pii

    return pii.redact(messages).messages


def _where(found: Sequence[tuple[int, str]]) -> str:
    by_kind: dict[str, list[int]] = {}
    for message, kind in found:
        by_kind.setdefault(kind, []).append(message)
    return ", ".join(f"{kind} in message {', '.join(map(str, sorted(set(at))))}" for kind, at in by_kind.items())


def guard(probes: Sequence[Probe], mode: str, memory: ScanMemory | None = None) -> Guarded:
    """`probes` as they may be sent under `mode`; with a `memory`, sequences a previous run found clean are not
    scanned again."""
    if mode == "off":
        return Guarded(tuple(probes), {}, {}, 0)
    try:
        return _guard(probes, mode, memory)
    except Exception as exc:  # fail closed: nothing is sent, and the cause is named without the text
        reason = f"PII guard failed ({type(exc).__name__}), so nothing was sent"
        return Guarded((), {p.id: reason for p in probes}, {}, 0)


def _guard(probes: Sequence[Probe], mode: str, memory: ScanMemory | None) -> Guarded:
    kept: list[Probe] = []
    blocked: dict[str, str] = {}
    tally: Counter[str] = Counter()
    largest: dict[tuple[str, str], dict[str, int]] = {}
    # A perturbed probe is labelled against its real context, which an LLM judge is sent too.
    judged = [probe.judged_against for probe in probes if probe.judged_against]
    scanned = scan_all([*(probe.context for probe in probes), *judged], memory)
    in_judged = iter(scanned[len(probes) :])
    for probe, in_context in zip(probes, scanned[: len(probes)], strict=True):
        found = in_context + (next(in_judged) if probe.judged_against else [])
        if not found:
            kept.append(probe)
            continue
        from utg_pytest import pii

        conversation = (probe.source, probe.conversation_id)
        seen = pii.counts(found)
        if sum(seen.values()) > sum(largest.get(conversation, {}).values()):
            largest[conversation] = seen
        if mode == "redact":
            redacted = pii.redact(probe.context)
            against = pii.redact(probe.judged_against).messages if probe.judged_against is not None else None
            kept.append(replace(probe, context=redacted.messages, judged_against=against))
        else:
            places = _where([(f.message, f.kind) for f in found])
            blocked[probe.id] = (
                f"not sent: personal data in its context ({places}); --utg-pii redact sends it with placeholders"
            )
    for seen in largest.values():
        tally.update(seen)
    return Guarded(tuple(kept), blocked, dict(tally), len(largest))
