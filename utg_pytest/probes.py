"""Conversations -> Probes: every place where a real user answered an assistant turn."""

from __future__ import annotations

import bisect
import hashlib
import heapq
import itertools
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from functools import cached_property
from typing import Any, overload

from utg_pytest.ingest import no_cycle_collection
from utg_pytest.model import Conversation, LogIndex, Message, Probe
from utg_pytest.safe_text import node_part

THRESHOLD_KEYS = ("min_probe_similarity", "min_probe_lexical")


def probe_id(source: str, conversation_id: str, turn: int) -> str:
    return f"{source}::{node_part(conversation_id)}::turn{turn}"


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


def truncate(context: Sequence[Message], max_turns: int = 0, max_chars: int = 0) -> tuple[Message, ...]:
    """Keep system messages and the last `max_turns` other messages (0: all), then as many of those, newest first,
    as fit in `max_chars` characters (0: no limit): a 4,000-turn thread is not sent whole for each of its probes. A
    system message over a quarter of `max_chars` keeps its beginning; the oldest message kept keeps its end, where it
    meets the rest of the conversation. The last message is always kept, cut if it must be."""
    others = [i for i, m in enumerate(context) if m.role != "system"]
    keep = set(others[-max_turns:] if max_turns else others)
    kept = [m for i, m in enumerate(context) if m.role == "system" or i in keep]
    if not max_chars or sum(len(m.text) for m in kept) <= max_chars:
        return tuple(kept)
    system_budget = max_chars // 4
    cut: dict[int, Message] = {}
    for index, message in enumerate(kept):
        if message.role == "system":
            cut[index] = replace(message, text=message.text[:system_budget])
    room = max(max_chars - sum(len(m.text) for m in cut.values()), max_chars // 2)
    for index in reversed(range(len(kept))):
        message = kept[index]
        if message.role == "system":
            continue
        if room <= 0:
            break
        cut[index] = message if len(message.text) <= room else replace(message, text=message.text[-room:])
        room -= len(message.text)
    return tuple(cut[index] for index in sorted(cut))


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


def outlined_probes(outline: Any) -> tuple[list[int], list[int], set[int]]:
    """The same rule as `probe_turns`, in columns over an outline (see LogIndex.outline): dialogue is the system and
    user messages and the assistant messages that are not blank; a probe is a non-blank user message right after an
    assistant one, its turn the count of user messages so far in its conversation. Returns each probe's conversation
    position and turn, in order, and the positions the outline covers."""
    import polars as pl

    position, code, user = pl.col("position"), pl.col("role"), pl.col("user")
    first = (position != position.shift(1)).fill_null(True)
    found = (
        outline.lazy()
        .filter(code.is_in(["r", "m"]) | ((code == "t") & ~pl.col("blank")))
        .select(
            position,
            user=code == "r",
            target=(code == "r") & ~pl.col("blank"),
            after_assistant=(code.shift(1) == "t") & ~first,
            first=first,
        )
        .with_columns(seen=user.cum_sum())
        .with_columns(turn=pl.col("seen") - pl.when("first").then(pl.col("seen") - user.cast(pl.UInt32)).forward_fill())
        .filter(pl.col("target") & pl.col("after_assistant"))
        .collect()
    )
    covered = set(outline.get_column("position").unique().to_list())
    return found.get_column("position").to_list(), found.get_column("turn").to_list(), covered


def probe_columns(log: LogIndex) -> tuple[list[int], list[int]]:
    """Every probe of a log as (conversation position, turn), in log order; conversations the outline does not cover
    are read and probed one by one."""
    positions: list[int] = []
    turns: list[int] = []
    covered: set[int] = set()
    if log.outline is not None:
        positions, turns, covered = outlined_probes(log.outline)
        if len(covered) == len(log.lines):
            return positions, turns
    read = {p: probe_turns(log.read(p)) for p in range(len(log.lines)) if p not in covered}
    if not covered:
        return [p for p, found in read.items() for _ in found], [t for found in read.values() for t in found]
    by_position: dict[int, list[int]] = dict(read)
    for p, t in zip(positions, turns, strict=True):
        by_position.setdefault(p, []).append(t)
    ordered = sorted(by_position)
    return [p for p in ordered for _ in by_position[p]], [t for p in ordered for t in by_position[p]]


def conversation_probes(
    conversation: Conversation, max_context_turns: int = 0, max_context_chars: int = 0
) -> list[Probe]:
    thresholds = _thresholds(conversation.metadata)
    dialogue = [m for m in conversation.messages if _is_dialogue(m)]
    return [
        Probe(
            id=probe_id(conversation.source, conversation.id, turn),
            source=conversation.source,
            line=conversation.line,
            conversation_id=conversation.id,
            turn=turn,
            context=truncate(dialogue[:index], max_context_turns, max_context_chars),
            target=dialogue[index].text,
            thresholds=thresholds,
            metadata=conversation.metadata,
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
        context_limits: tuple[int, int] = (0, 0),
        chosen: Sequence[Sequence[int]] | None = None,
        columns: Sequence[tuple[list[int], list[int]]] | None = None,
    ) -> None:
        self._logs = tuple(logs)
        self._context_limits = context_limits
        """Messages and characters of context a probe keeps (0: no limit)."""
        self._columns = tuple(columns) if columns is not None else tuple(probe_columns(log) for log in self._logs)
        """Per log: each probe's conversation position and turn."""
        self._chosen = tuple(chosen) if chosen is not None else tuple(range(len(c[0])) for c in self._columns)

    def __len__(self) -> int:
        return sum(map(len, self._chosen))

    @property
    def logs(self) -> tuple[LogIndex, ...]:
        return self._logs

    def conversations_with_probes(self) -> int:
        """Conversations of the logs with at least one probe, before any selection."""
        return sum(len(set(where)) for where, _ in self._columns)

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
            for log, (where, turns), chosen in zip(self._logs, self._columns, self._chosen, strict=True):
                for position, picked in itertools.groupby(chosen, key=where.__getitem__):
                    found = {p.turn: p for p in conversation_probes(log.read(position), *self._context_limits)}
                    probes += [found[turns[k]] for k in picked]
        return probes

    @cached_property
    def ids(self) -> list[str]:
        found: list[str] = []
        for log, (where, turns), chosen in zip(self._logs, self._columns, self._chosen, strict=True):
            found += [probe_id(log.source, log.ids[where[k]], turns[k]) for k in chosen]
        return found

    def _keep(self, chosen: Iterable[Sequence[int]]) -> ProbeSet:
        return ProbeSet(self._logs, self._context_limits, [list(c) for c in chosen], self._columns)

    def last_per_conversation(self) -> ProbeSet:
        def last(where: list[int], chosen: Sequence[int]) -> list[int]:
            return [k for i, k in enumerate(chosen) if i + 1 == len(chosen) or where[chosen[i + 1]] != where[k]]

        return self._keep(last(where, chosen) for (where, _), chosen in zip(self._columns, self._chosen, strict=True))

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
    max_context_turns: int = 0,
    max_context_chars: int = 0,
) -> ProbeSet:
    """All probes in log order, optionally thinned to the last per conversation and to a sample (sharding, which
    comes after, is the caller's)."""
    probes = ProbeSet(logs, (max_context_turns, max_context_chars))
    if mode == "last":
        probes = probes.last_per_conversation()
    if max_probes is not None:
        probes = probes.sample(max_probes, seed)
    return probes
