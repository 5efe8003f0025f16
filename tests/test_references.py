from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from utg_pytest import stats
from utg_pytest.model import Message, Probe, ProbeResult
from utg_pytest.scoring.echo import echo_score, is_echo
from utg_pytest.scoring.references import floor_texts, reference_texts
from utg_pytest.scoring.skill import skill_report


def probe(conversation: str, turn: int, context: tuple[Message, ...] = (), target: str = "") -> Probe:
    return Probe(
        f"f::{conversation}::turn{turn}", "f", 1, conversation, turn, context, target or f"{conversation}{turn}"
    )


def test_echo_and_repeat_come_from_the_context() -> None:
    context = (
        Message("user", "first"),
        Message("assistant", "answer one"),
        Message("user", "second"),
        Message("assistant", "answer two"),
    )
    texts = reference_texts([probe("a", 3, context), probe("b", 2, (Message("assistant", "hi there"),))])
    assert texts["f::a::turn3"]["echo"] == "answer two"
    assert texts["f::a::turn3"]["repeat"] == "second"
    assert texts["f::b::turn2"]["repeat"] == "hi there"


@given(
    st.lists(st.tuples(st.integers(0, 5), st.integers(1, 4)), min_size=1, max_size=40, unique=True), st.integers(0, 5)
)
def test_floor_always_borrows_from_another_conversation(keys: list[tuple[int, int]], seed: int) -> None:
    probes = [probe(f"c{c}", t) for c, t in keys]
    floors = floor_texts(probes, seed)
    conversations = {p.conversation_id for p in probes}
    for p in probes:
        if len(conversations) == 1:
            assert p.id not in floors
        else:
            assert not floors[p.id].startswith(p.conversation_id)
    assert floors == floor_texts(probes, seed)


def test_a_probe_keeps_its_floor_when_selected_alone_from_a_pool() -> None:
    pool = [probe(f"c{c}", t) for c in range(6) for t in (2, 3)]
    everything = floor_texts(pool, seed=1)
    for p in pool:
        assert floor_texts([p], seed=1, pool=pool) == {p.id: everything[p.id]}


@pytest.mark.parametrize(
    ("prediction", "assistant", "echo"),
    [
        ("Which plan are you on, basic or premium?", "Which plan are you on, basic or premium?", True),
        ("which plan are you on basic or premium", "Sure! Which plan are you on, basic or premium? I can check.", True),
        (
            "The router should be restarted and then checked again",
            "Please restart the router. The router should be restarted and then checked again in five minutes.",
            True,
        ),
        ("ok thanks", "ok thanks, glad it worked. Anything else?", False),
        ("premium, the one with the 5G add-on", "Which plan are you on, basic or premium?", False),
        ("", "anything", False),
    ],
)
def test_echo_detection(prediction: str, assistant: str, echo: bool) -> None:
    assert is_echo(prediction, assistant) is echo


@given(st.text(max_size=120), st.text(max_size=120))
def test_echo_score_is_bounded_and_a_copy_scores_one(prediction: str, assistant: str) -> None:
    assert 0.0 <= echo_score(prediction, assistant) <= 1.0
    if any(ch.isalnum() for ch in assistant):
        assert echo_score(assistant, assistant) == 1.0


def result(semantic: float, refs: dict[str, float]) -> ProbeResult:
    return ProbeResult(
        "x",
        "p",
        "p",
        {"semantic": semantic, "lexical": 0.0},
        references={n: {"semantic": v, "lexical": 0.0} for n, v in refs.items()},
    )


def test_skill_report_picks_the_strongest_reference() -> None:
    results = [
        result(0.4, {"echo": 0.3, "repeat": 0.35, "floor": 0.1}),
        result(0.6, {"echo": 0.5, "repeat": 0.3, "floor": 0.0}),
    ]
    report = skill_report(results, "semantic")
    assert report is not None
    assert report.best == "echo"
    assert report.references == pytest.approx({"echo": 0.4, "repeat": 0.325, "floor": 0.05})
    assert report.skill == pytest.approx((0.5 - 0.4) / (1 - 0.4))


def test_skill_formula() -> None:
    assert stats.skill([0.5, 0.5], [0.5, 0.5]) == 0.0
    assert stats.skill([1.0], [0.2]) == 1.0
    assert stats.skill([0.1], [0.2]) == pytest.approx(-0.125)


@given(st.lists(st.floats(-1, 0.99), min_size=2, max_size=40))
def test_a_parrot_has_zero_skill_with_a_zero_width_interval(reference: list[float]) -> None:
    assert stats.skill(reference, reference) == 0.0
    assert stats.paired_bootstrap_skill_ci(reference, reference, resamples=200) == (0.0, 0.0)


@given(st.lists(st.tuples(st.floats(-1, 1), st.floats(-1, 0.9)), min_size=2, max_size=40), st.floats(0.01, 0.5))
def test_a_uniformly_better_model_has_an_interval_above_zero(pairs: list[tuple[float, float]], gain: float) -> None:
    reference = [r for _, r in pairs]
    model = [min(1.0, r + gain) for r in reference]
    low, high = stats.paired_bootstrap_skill_ci(model, reference, resamples=200)
    assert 0.0 < low <= high
