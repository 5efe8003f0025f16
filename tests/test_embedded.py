"""The embedded model's prompt evaluation (turn by turn, reused across probes) and how it shares the cores."""

from __future__ import annotations

import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from utg_pytest.cores import Cores, Snapshot, read_proc_stat, spare_cores
from utg_pytest.generate import Sampling
from utg_pytest.generate.embedded import EmbeddedBackend, batch_ends, reusable
from utg_pytest.generate.prompts import build_request
from utg_pytest.pipeline import load
from utg_pytest.settings import BackendConfig, build

OPENER = 1
tokens = st.lists(st.sampled_from([OPENER, 2, 3, 4]), max_size=30)


def test_a_prompt_is_cut_before_every_turn_opener_and_at_its_end() -> None:
    assert batch_ends([OPENER, 5, 6, OPENER, 7, OPENER, 8], OPENER) == [3, 5, 7]
    assert batch_ends([5, 6, 7], None) == [3]
    assert batch_ends([], OPENER) == [0]


def test_whole_shared_turns_are_kept_and_a_turn_that_goes_on_is_not() -> None:
    first = [OPENER, 5, OPENER, 6, OPENER, 7]
    # The next probe of the conversation: its third turn is longer, so only the first two are kept.
    assert reusable(first, [OPENER, 5, OPENER, 6, OPENER, 7, 8, OPENER, 9], OPENER) == 4
    assert reusable(first, first, OPENER) == len(first)
    assert reusable(first, [OPENER, 5, OPENER, 6], OPENER) == 4
    assert reusable(first, [OPENER, 9], OPENER) == 0
    assert reusable([], first, OPENER) == 0
    assert reusable(first, [*first, OPENER, 8], None) == 0


@given(tokens, tokens)
def test_what_is_kept_is_a_shared_prefix_cut_the_same_way_in_both(previous: list[int], prompt: list[int]) -> None:
    kept = reusable(previous, prompt, OPENER)
    assert previous[:kept] == prompt[:kept]
    # `kept` ends a batch in both, so the kept batches are those a fresh evaluation of `prompt` would make, and
    # the rest is cut from there exactly as from scratch.
    assert kept == 0 or kept in batch_ends(previous, OPENER)
    assert kept == 0 or kept in batch_ends(prompt, OPENER)
    # Nothing longer would do.
    longer = [end for end in batch_ends(prompt, OPENER) if end > kept and end in batch_ends(previous, OPENER)]
    assert all(previous[:end] != prompt[:end] for end in longer)


def fixture_requests(fixtures_dir: Path, backend: EmbeddedBackend, count: int) -> list[tuple[str, object]]:
    settings = build({"logs": (str(fixtures_dir / "logs"),)}, rootdir=str(fixtures_dir))
    probes = list(load(settings).probes)[:count]
    return [(probe.id, build_request(probe, "template", backend.chat_template)) for probe in probes]


@pytest.mark.heavy
def test_predictions_do_not_depend_on_which_probe_ran_before_and_turns_are_reused(fixtures_dir: Path) -> None:
    """llama-cpp-python's own prefix reuse changed 2 of 40 greedy predictions when the probes ran in reverse order."""
    sampling = Sampling(0.0, 24, None, (("repeat_penalty", 1.1),))

    def run(order: str) -> tuple[dict[str, str], int, int]:
        executor = ThreadPoolExecutor(max_workers=1)
        backend = executor.submit(EmbeddedBackend, BackendConfig(), executor).result()
        requests = fixture_requests(fixtures_dir, backend, 12)
        if order == "reverse":
            requests.reverse()
        evaluated = []
        real_eval = backend._llm.eval
        backend._llm.eval = lambda batch: (evaluated.append(len(batch)), real_eval(batch))[1]
        texts = {}
        prompt_tokens = 0
        for probe_id, request in requests:
            generation = executor.submit(backend._generate, request, sampling).result()
            texts[probe_id] = generation.text
            prompt_tokens += generation.prompt_tokens
        executor.submit(backend._llm.close).result()
        executor.shutdown()
        return texts, sum(evaluated), prompt_tokens

    forward, evaluated, prompt_tokens = run("forward")
    reverse, _, _ = run("reverse")
    assert forward == reverse
    assert any(forward.values())
    # Consecutive probes of a conversation share their first turns, which are evaluated once.
    assert evaluated < 0.8 * prompt_tokens


def test_spare_cores_are_those_other_processes_left() -> None:
    before = Snapshot(at=0.0, machine_busy=10.0, own_busy=4.0)
    # In 1 s the machine was busy 2 core-seconds, 1 of them ours: 1 of 2 cores is spare.
    assert spare_cores(before, Snapshot(1.0, 12.0, 5.0), 2) == pytest.approx(1.0)
    assert spare_cores(before, Snapshot(1.0, 10.0, 4.0), 2) == pytest.approx(2.0)
    assert spare_cores(before, Snapshot(1.0, 14.0, 4.0), 2) == 0.0
    # Tick rounding can make our own time exceed the machine's: never more cores than there are.
    assert spare_cores(before, Snapshot(1.0, 10.0, 4.5), 2) == 2.0


def test_threads_follow_the_measured_load_and_the_encoder_waits_for_prompts() -> None:
    busy = [0.0]
    cores = Cores(2, machine=lambda: busy[0] + sum(os.times()[:2]))
    with cores.evaluating() as threads:
        assert threads == 2
    time.sleep(0.25)
    busy[0] += 0.25  # another process kept one core busy all along
    order = []

    def encode() -> None:
        with cores.encoding():
            order.append("encoded")

    with cores.evaluating() as threads:
        assert threads == 1
        encoder = threading.Thread(target=encode)
        encoder.start()
        time.sleep(0.05)
        order.append("prompt done")
    encoder.join(1)
    assert order == ["prompt done", "encoded"]


def test_without_proc_stat_every_core_counts_as_spare(tmp_path: Path) -> None:
    assert read_proc_stat(str(tmp_path / "missing")) is None
    cores = Cores(3, machine=lambda: None)
    with cores.evaluating() as threads:
        assert threads == 3


@pytest.mark.skipif(sys.platform != "linux", reason="threads have their own priority on Linux")
def test_the_encoder_worker_yields_the_cpu_and_the_caller_keeps_its_priority() -> None:
    from utg_pytest.scoring.embeddings import NICE, yield_cpu

    seen = []

    def worker() -> None:
        yield_cpu()
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))

    before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert seen == [max(NICE, before)]
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == before
