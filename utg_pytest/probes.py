"""Conversations -> Probes: every place where a real user answered an assistant turn."""

from __future__ import annotations

import bisect
import gc
import hashlib
import heapq
import itertools
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property
from typing import Any, overload

from utg_pytest.model import Conversation, LogIndex, Message, Probe

THRESHOLD_KEYS = ("min_probe_similarity", "min_probe_lexical")


@contextmanager
def no_cycle_collection() -> Iterator[None]:
    """Loading allocates millions of acyclic objects (records, tuples, strings); the cycle collector would rescan the
    growing heap again and again, which measured as half the time of loading a large log. Nothing here makes cycles."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def probe_id(source: str, conversation_id: str, turn: int) -> str:
    return f"{source}::{conversation_id}::turn{turn}"


def shard_of(probe_id: str, shards: int) -> int:
    """The shard (0-based) a probe belongs to among `shards`: a hash of its id alone, so a probe stays in its shard
    as logs grow, and every process that knows the id agrees (CI matrix jobs, pytest-xdist workers)."""
    digest = hashlib.sha256(f"shard\x00{probe_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % shards


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


def _probe_points(dialogue: Sequence[Message]) -> Iterator[tuple[int, int]]:
    """(index in the dialogue, user turn) of each user message whose nearest preceding dialogue message is the
    assistant's."""
    user_turn = 0
    for index, message in enumerate(dialogue):
        if message.role != "user":
            continue
        user_turn += 1
        if index and dialogue[index - 1].role == "assistant" and message.text.strip():
            yield index, user_turn


def probe_turns(conversation: Conversation) -> list[int]:
    return [turn for _, turn in _probe_points([m for m in conversation.messages if _is_dialogue(m)])]


def conversation_probes(conversation: Conversation, max_context_turns: int | None = None) -> list[Probe]:
    thresholds = _thresholds(conversation.metadata)
    dialogue = [m for m in conversation.messages if _is_dialogue(m)]
    return [
        Probe(
            id=probe_id(conversation.source, conversation.id, turn),
            source=conversation.source,
            line=conversation.line,
            conversation_id=conversation.id,
            turn=turn,
            context=truncate(dialogue[:index], max_context_turns),
            target=dialogue[index].text,
            thresholds=thresholds,
        )
        for index, turn in _probe_points(dialogue)
    ]


class ProbeSet(Sequence[Probe]):
    """The probes of loaded logs, in log order, selected on their ids alone.

    Counting, thinning to the last probe per conversation and sampling work on the logs' columns; the Probe objects
    (and the parse of their conversations) are built on first access, for the probes still selected then.
    """

    def __init__(
        self,
        logs: Sequence[LogIndex],
        max_context_turns: int | None = None,
        chosen: Sequence[Sequence[int]] | None = None,
    ) -> None:
        self._logs = tuple(logs)
        self._max_context_turns = max_context_turns
        self._chosen = tuple(chosen) if chosen is not None else tuple(range(len(log.probe_lines)) for log in logs)

    def __len__(self) -> int:
        return sum(map(len, self._chosen))

    @overload
    def __getitem__(self, index: int) -> Probe: ...

    @overload
    def __getitem__(self, index: slice) -> list[Probe]: ...

    def __getitem__(self, index: int | slice) -> Probe | list[Probe]:
        return self._probes[index]

    def __iter__(self) -> Iterator[Probe]:
        return iter(self._probes)

    @cached_property
    def _probes(self) -> list[Probe]:
        probes: list[Probe] = []
        with no_cycle_collection():
            for log, chosen in zip(self._logs, self._chosen, strict=True):
                for line, positions in itertools.groupby(chosen, key=log.probe_lines.__getitem__):
                    found = {p.turn: p for p in conversation_probes(log.read(line), self._max_context_turns)}
                    probes += [found[log.probe_turns[k]] for k in positions]
        return probes

    @cached_property
    def ids(self) -> list[str]:
        found: list[str] = []
        for log, chosen in zip(self._logs, self._chosen, strict=True):
            index = dict(zip(log.lines, log.ids, strict=True))
            found += [probe_id(log.source, index[log.probe_lines[k]], log.probe_turns[k]) for k in chosen]
        return found

    def _keep(self, chosen: Iterable[Sequence[int]]) -> ProbeSet:
        return ProbeSet(self._logs, self._max_context_turns, [list(c) for c in chosen])

    def last_per_conversation(self) -> ProbeSet:
        def last(log: LogIndex, chosen: Sequence[int]) -> list[int]:
            lines = log.probe_lines
            return [k for i, k in enumerate(chosen) if i + 1 == len(chosen) or lines[chosen[i + 1]] != lines[k]]

        return self._keep(last(log, chosen) for log, chosen in zip(self._logs, self._chosen, strict=True))

    def shard(self, index: int, count: int) -> ProbeSet:
        """Shard `index` (1-based) of `count`, chosen on ids alone."""
        kept: list[list[int]] = [[] for _ in self._chosen]
        bounds = list(itertools.accumulate(map(len, self._chosen), initial=0))
        for i, found in enumerate(self.ids):
            if shard_of(found, count) == index - 1:
                log = bisect.bisect_right(bounds, i) - 1
                kept[log].append(self._chosen[log][i - bounds[log]])
        return self._keep(kept)

    def sample(self, size: int, seed: int) -> ProbeSet:
        """At most `size` probes, ranked by a seeded hash of their id, so a probe's inclusion does not depend on which
        other probes exist: adding conversations to a log keeps most of the previous sample, which keeps runs
        comparable."""
        if len(self) <= size:
            return self
        prefix = f"{seed}\x00".encode()
        keys = [hashlib.sha256(prefix + probe_id.encode()).digest() for probe_id in self.ids]
        bounds = list(itertools.accumulate(map(len, self._chosen), initial=0))
        kept: list[list[int]] = [[] for _ in self._chosen]
        for i in sorted(heapq.nsmallest(size, range(len(keys)), key=keys.__getitem__)):
            log = bisect.bisect_right(bounds, i) - 1
            kept[log].append(self._chosen[log][i - bounds[log]])
        return self._keep(kept)


def build_probes(
    logs: Sequence[LogIndex],
    mode: str = "all",
    max_probes: int | None = None,
    seed: int = 0,
    max_context_turns: int | None = None,
) -> ProbeSet:
    """All probes in log order, optionally thinned to the last per conversation and to a sample (sharding, which
    comes after, is the caller's)."""
    probes = ProbeSet(logs, max_context_turns)
    if mode == "last":
        probes = probes.last_per_conversation()
    if max_probes is not None:
        probes = probes.sample(max_probes, seed)
    return probes
