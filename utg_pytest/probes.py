"""Conversations -> Probes: every place where a real user answered an assistant turn."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

from utg_pytest.model import Conversation, Message, Probe

THRESHOLD_KEYS = ("min_probe_similarity", "min_probe_lexical")


def probe_id(source: str, conversation_id: str, turn: int) -> str:
    return f"{source}::{conversation_id}::turn{turn}"


def _thresholds(metadata: dict[str, Any]) -> dict[str, float]:
    utg = metadata.get("utg")
    found = utg.get("thresholds", {}) if isinstance(utg, dict) else {}
    return {key: float(found[key]) for key in THRESHOLD_KEYS if key in found}


def _is_dialogue(message: Message) -> bool:
    """Tool traffic and empty tool-call stubs are plumbing, not turns a user reacts to."""
    return message.role in ("system", "user") or (message.role == "assistant" and bool(message.text.strip()))


def truncate(context: Sequence[Message], max_turns: int | None) -> tuple[Message, ...]:
    """Keep system messages and the last `max_turns` other messages."""
    if max_turns is None:
        return tuple(context)
    others = [i for i, m in enumerate(context) if m.role != "system"]
    keep = set(others[-max_turns:])
    return tuple(m for i, m in enumerate(context) if m.role == "system" or i in keep)


def conversation_probes(conversation: Conversation, max_context_turns: int | None = None) -> list[Probe]:
    """A probe for each user message whose nearest preceding dialogue message is the assistant's."""
    probes = []
    thresholds = _thresholds(conversation.metadata)
    dialogue = [m for m in conversation.messages if _is_dialogue(m)]
    user_turn = 0
    for index, message in enumerate(dialogue):
        if message.role != "user":
            continue
        user_turn += 1
        if index == 0 or dialogue[index - 1].role != "assistant" or not message.text.strip():
            continue
        probes.append(
            Probe(
                id=probe_id(conversation.source, conversation.id, user_turn),
                source=conversation.source,
                line=conversation.line,
                conversation_id=conversation.id,
                turn=user_turn,
                context=truncate(dialogue[:index], max_context_turns),
                target=message.text,
                thresholds=thresholds,
            )
        )
    return probes


def _sample_key(seed: int, probe: Probe) -> str:
    return hashlib.sha256(f"{seed}\x00{probe.id}".encode()).hexdigest()


def build_probes(
    conversations: Iterable[Conversation],
    mode: str = "all",
    max_probes: int | None = None,
    seed: int = 0,
    max_context_turns: int | None = None,
) -> list[Probe]:
    """All probes in log order, optionally thinned to the last per conversation and to a sample.

    Sampling ranks probes by a seeded hash of their id, so a probe's inclusion does not depend on which other probes
    exist: adding conversations to a log keeps most of the previous sample, which keeps runs comparable.
    """
    probes: list[Probe] = []
    for conversation in conversations:
        found = conversation_probes(conversation, max_context_turns)
        probes.extend(found[-1:] if mode == "last" else found)
    if max_probes is not None and len(probes) > max_probes:
        chosen = {p.id for p in sorted(probes, key=lambda p: _sample_key(seed, p))[:max_probes]}
        probes = [p for p in probes if p.id in chosen]
    return probes
