from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from utg_pytest.ingest import index_conversations
from utg_pytest.model import Conversation, Location, LogIndex, Message
from utg_pytest.probes import build_probes, conversation_probes, truncate


def convo(
    *turns: tuple[str, str], cid: str = "c", metadata: dict[str, object] | None = None, line: int = 7
) -> Conversation:
    return Conversation(
        cid,
        tuple(Message(r, t, r == "assistant" and not t) for r, t in turns),
        metadata or {},
        Location("logs.jsonl", line),
    )


def logs(conversations: list[Conversation]) -> list[LogIndex]:
    return [index_conversations("logs.jsonl", conversations)]


SUPPORT = convo(
    ("system", "be brief"),
    ("user", "u1"),
    ("assistant", "a1"),
    ("user", "u2"),
    ("assistant", "a2"),
    ("user", "u3"),
    ("assistant", "a3"),
)


def test_every_assistant_to_user_boundary_is_a_probe() -> None:
    probes = conversation_probes(SUPPORT)
    assert [p.id for p in probes] == ["logs.jsonl::c::turn2", "logs.jsonl::c::turn3"]
    assert [p.target for p in probes] == ["u2", "u3"]
    assert [m.text for m in probes[1].context] == ["be brief", "u1", "a1", "u2", "a2"]
    assert probes[0].line == 7


def test_last_mode_keeps_one_probe_per_conversation() -> None:
    assert [p.turn for p in build_probes(logs([SUPPORT]), mode="last")] == [3]


def test_tool_traffic_is_skipped_but_the_user_answer_after_it_is_probed() -> None:
    conversation = convo(
        ("user", "where is my order"),
        ("assistant", ""),
        ("tool", '{"status": "late"}'),
        ("assistant", "It is late, sorry."),
        ("user", "how late"),
    )
    probes = conversation_probes(conversation)
    assert [p.turn for p in probes] == [2]
    assert [m.role for m in probes[0].context] == ["user", "assistant"]


def test_user_after_user_is_not_a_probe_and_turns_count_user_messages() -> None:
    conversation = convo(("user", "a"), ("user", "b"), ("assistant", "c"), ("user", "d"))
    assert [p.turn for p in conversation_probes(conversation)] == [3]


def test_assistant_greeting_makes_the_first_user_turn_a_probe() -> None:
    conversation = convo(("assistant", "Hi! How can I help?"), ("user", "reset my password"))
    assert [p.id for p in conversation_probes(conversation)] == ["logs.jsonl::c::turn1"]


def test_context_truncation_keeps_system_messages() -> None:
    probes = conversation_probes(SUPPORT, max_context_turns=2)
    assert [m.text for m in probes[1].context] == ["be brief", "u2", "a2"]


def test_metadata_thresholds_reach_the_probe() -> None:
    conversation = convo(
        ("user", "a"),
        ("assistant", "b"),
        ("user", "c"),
        metadata={"utg": {"thresholds": {"min_probe_similarity": 0.1}}},
    )
    assert conversation_probes(conversation)[0].thresholds == {"min_probe_similarity": 0.1}


many = st.lists(st.integers(min_value=1, max_value=4), min_size=1, max_size=30)


def make(counts: list[int]) -> list[Conversation]:
    conversations = []
    for i, boundaries in enumerate(counts):
        turns = [("user", "start")]
        for b in range(boundaries):
            turns += [("assistant", f"a{b}"), ("user", f"u{b}")]
        conversations.append(convo(*turns, cid=f"c{i}", line=i + 1))
    return conversations


@given(many, st.integers(min_value=1, max_value=50), st.integers(min_value=0, max_value=3))
def test_sampling_is_deterministic_ordered_and_sized(counts: list[int], limit: int, seed: int) -> None:
    conversations = make(counts)
    everything = list(build_probes(logs(conversations)))
    sample = list(build_probes(logs(conversations), max_probes=limit, seed=seed))
    assert len(sample) == min(limit, len(everything))
    assert [p.id for p in sample] == [p.id for p in everything if p in sample]
    assert sample == list(build_probes(logs(conversations), max_probes=limit, seed=seed))


@pytest.mark.parametrize(
    ("seed", "expected"),
    [
        (0, ["logs.jsonl::c0::turn2", "logs.jsonl::c3::turn2", "logs.jsonl::c3::turn3", "logs.jsonl::c4::turn3"]),
        (3, ["logs.jsonl::c0::turn3", "logs.jsonl::c2::turn4", "logs.jsonl::c3::turn3", "logs.jsonl::c4::turn2"]),
    ],
)
def test_the_sample_is_pinned_so_runs_of_other_versions_sample_the_same_probes(seed: int, expected: list[str]) -> None:
    """Values recorded from the sampling every earlier version used; a change of the hash would move them."""
    assert [p.id for p in build_probes(logs(make([2, 1, 3, 2, 2])), max_probes=4, seed=seed)] == expected


@given(many, st.integers(min_value=1, max_value=5))
def test_shards_partition_the_probes_and_a_probe_keeps_its_shard_as_logs_shrink(counts: list[int], n: int) -> None:
    everything = build_probes(logs(make(counts)))
    shards = [[p.id for p in everything.shard(k, n)] for k in range(1, n + 1)]
    assert sorted(i for shard in shards for i in shard) == sorted(p.id for p in everything)
    assert all(shard == [p.id for p in everything if p.id in shard] for shard in shards), "log order kept"
    smaller = build_probes(logs(make(counts)[1:]))
    for k in range(1, n + 1):
        assert {p.id for p in smaller.shard(k, n)} <= set(shards[k - 1])


@given(many, st.integers(min_value=1, max_value=20))
def test_a_sampled_probe_stays_sampled_when_probes_are_removed(counts: list[int], limit: int) -> None:
    conversations = make(counts)
    sample = {p.id for p in build_probes(logs(conversations), max_probes=limit)}
    smaller = {p.id for p in build_probes(logs(conversations[1:]), max_probes=limit)}
    assert {p for p in sample if not p.startswith("logs.jsonl::c0::")} <= smaller


@given(st.lists(st.sampled_from(["system", "user", "assistant"]), max_size=12), st.integers(min_value=1, max_value=6))
def test_truncate_keeps_at_most_n_non_system_messages_in_order(roles: list[str], keep: int) -> None:
    context = [Message(r, f"{r}{i}") for i, r in enumerate(roles)]
    kept = truncate(context, keep)
    assert [m for m in context if m in kept] == list(kept)
    assert sum(m.role != "system" for m in kept) == min(keep, sum(r != "system" for r in roles))
    assert all(m in kept for m in context if m.role == "system")
