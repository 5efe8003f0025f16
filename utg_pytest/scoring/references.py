"""Reference predictors: what a model-free parrot would answer on each probe.

A similarity figure means nothing alone: on real logs, copying the assistant's last message scores about as well on
semantic similarity as small models do. These predictors are scored on the same probes so the model is judged by how
much it beats them (skill), not by raw similarity.

- echo: the last assistant message, verbatim.
- repeat: the user's previous message (the last assistant message when the user has not spoken yet).
- floor: the real user turn of another conversation, by a fixed seeded derangement: the level of an answer that is
  fluent and user-like but knows nothing about this conversation.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from utg_pytest.model import Probe

REFERENCES = ("echo", "repeat", "floor")


def last_text(probe: Probe, role: str) -> str | None:
    return next((m.text for m in reversed(probe.context) if m.role == role), None)


def seeded_rank(salt: str, seed: int, probe: Probe) -> str:
    """A probe's place in a seeded order that depends on its id alone, so it does not move as logs grow."""
    return hashlib.sha256(f"{salt}\x00{seed}\x00{probe.id}".encode()).hexdigest()


def donors(
    probes: Sequence[Probe], seed: int = 0, pool: Sequence[Probe] | None = None, salt: str = "floor"
) -> dict[str, Probe]:
    """Each probe gets the next probe of `pool` (default: `probes`), in a seeded order, that belongs to another
    conversation. The order depends only on probe ids, so selecting fewer probes does not change a probe's donor.

    With a single conversation in the pool there is no donor: there is no other conversation to borrow from.
    """
    order = sorted({p.id: p for p in [*(pool or ()), *probes]}.values(), key=lambda p: seeded_rank(salt, seed, p))
    position = {p.id: i for i, p in enumerate(order)}
    assigned: dict[str, Probe] = {}
    for probe in probes:
        index = position[probe.id]
        for step in range(1, len(order)):
            other = order[(index + step) % len(order)]
            if (other.source, other.conversation_id) != (probe.source, probe.conversation_id):
                assigned[probe.id] = other
                break
    return assigned


def floor_texts(probes: Sequence[Probe], seed: int = 0, pool: Sequence[Probe] | None = None) -> dict[str, str]:
    """The floor reference: the real user turn of a donor probe from another conversation."""
    return {probe_id: donor.target for probe_id, donor in donors(probes, seed, pool).items()}


def reference_texts(
    probes: Sequence[Probe], seed: int = 0, pool: Sequence[Probe] | None = None
) -> dict[str, dict[str, str]]:
    """probe id -> reference name -> predicted text."""
    floors = floor_texts(probes, seed, pool)
    texts: dict[str, dict[str, str]] = {}
    for probe in probes:
        echo = last_text(probe, "assistant") or ""
        own = {"echo": echo, "repeat": last_text(probe, "user") or echo}
        if probe.id in floors:
            own["floor"] = floors[probe.id]
        texts[probe.id] = own
    return texts
