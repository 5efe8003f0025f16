"""What leaves the machine: the PII guard over every probe before a request is built from it.

A probe's context goes to the model under test (and, labelled against, to an LLM judge). With the guard on, each
context is scanned for personal data (utg_pytest.pii) and, in `block` mode, a probe whose context holds any is not
sent: it becomes an error naming where (file, line, message index) and what kind, never the value. In `redact` mode
every value is replaced by a typed placeholder, the same for the same value within the conversation, so the model
still sees a coherent conversation. The guard fails closed: if scanning raises, nothing is sent.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, replace

from utg_pytest.model import Probe

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


def _where(found: Sequence[tuple[int, str]]) -> str:
    by_kind: dict[str, list[int]] = {}
    for message, kind in found:
        by_kind.setdefault(kind, []).append(message)
    return ", ".join(f"{kind} in message {', '.join(map(str, sorted(set(at))))}" for kind, at in by_kind.items())


def guard(probes: Sequence[Probe], mode: str) -> Guarded:
    """`probes` as they may be sent under `mode`."""
    if mode == "off":
        return Guarded(tuple(probes), {}, {}, 0)
    try:
        return _guard(probes, mode)
    except Exception as exc:  # fail closed: nothing is sent, and the cause is named without the text
        reason = f"PII guard failed ({type(exc).__name__}), so nothing was sent"
        return Guarded((), {p.id: reason for p in probes}, {}, 0)


def _guard(probes: Sequence[Probe], mode: str) -> Guarded:
    from utg_pytest import pii

    kept: list[Probe] = []
    blocked: dict[str, str] = {}
    tally: Counter[str] = Counter()
    largest: dict[tuple[str, str], dict[str, int]] = {}
    for probe in probes:
        # A perturbed probe is labelled against its real context, which an LLM judge is sent too.
        found = pii.scan(probe.context) + (pii.scan(probe.judged_against) if probe.judged_against else [])
        if found:
            conversation = (probe.source, probe.conversation_id)
            seen = pii.counts(found)
            if sum(seen.values()) > sum(largest.get(conversation, {}).values()):
                largest[conversation] = seen
        if not found:
            kept.append(probe)
        elif mode == "redact":
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
