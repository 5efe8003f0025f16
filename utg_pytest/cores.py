"""How a run shares this machine's cores: between the embedded model and the sentence encoder, and with whatever
else the machine is running.

llama.cpp's threads meet at a barrier after every layer and spin while they wait, so a thread that shares its core
with another busy thread stalls the rest. Measured on 2 cores (50 fixture probes, SmolLM2-135M): prompts evaluated on
2 threads took 22-27 s on an idle machine and 49-53 s with one `yes` process running, against 31-34 s on 1 thread in
both cases. So a prompt is evaluated on the cores nothing else is using, measured just before, and the encoder, which
fits beside llama.cpp's single-threaded token generation, pauses while a prompt is evaluated.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

MIN_WINDOW_S = 0.2
"""Shorter windows are too coarse for the kernel's tick counters: the previous measurement stands."""


@dataclass(frozen=True)
class Snapshot:
    """Busy time of the whole machine and of this process, in seconds, at a moment."""

    at: float
    machine_busy: float
    own_busy: float


def read_proc_stat(path: str = "/proc/stat") -> float | None:
    """Seconds every core of the machine spent on anything but idling and waiting for I/O (time the hypervisor
    stole counts as busy: that core was not ours). None where the file does not exist (not Linux)."""
    try:
        with open(path, encoding="ascii") as stat:
            fields = stat.readline().split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    ticks = [int(value) for value in fields[1:9]]
    idle = ticks[3] + ticks[4]
    return (sum(ticks) - idle) / os.sysconf("SC_CLK_TCK")


def snapshot(machine: Callable[[], float | None] = read_proc_stat) -> Snapshot | None:
    busy = machine()
    if busy is None:
        return None
    own = os.times()
    return Snapshot(time.monotonic(), busy, own.user + own.system)


def spare_cores(before: Snapshot, after: Snapshot, cores: int) -> float:
    """Cores other processes left free between two snapshots: all of them minus what the rest of the machine used
    (the machine's busy time minus this process's own)."""
    window = after.at - before.at
    others = (after.machine_busy - before.machine_busy) - (after.own_busy - before.own_busy)
    return min(float(cores), max(0.0, cores - max(0.0, others) / window))


class Cores:
    """The cores of one run. The embedded backend asks how many threads a prompt evaluation may use; the encoder
    wraps each batch in `encoding`, which waits while a prompt is evaluated."""

    def __init__(self, cores: int | None = None, machine: Callable[[], float | None] = read_proc_stat) -> None:
        self.cores = cores or os.cpu_count() or 1
        self._machine = machine
        self._last = snapshot(machine)
        self._spare = float(self.cores)
        self._lock = threading.Condition()
        self._evaluating = False
        self._encoding = False

    def spare(self) -> int:
        """Whole cores other processes left free since the last call (at least one: we run regardless)."""
        now = snapshot(self._machine)
        if now is not None and self._last is not None and now.at - self._last.at >= MIN_WINDOW_S:
            self._spare = spare_cores(self._last, now, self.cores)
            self._last = now
        elif self._last is None:
            self._last = now
        return max(1, round(self._spare))

    @contextmanager
    def evaluating(self) -> Iterator[int]:
        """A prompt evaluation on as many threads as there are spare cores, once the encoder's batch in progress (a
        short one) is done; no encoder batch starts until it ends."""
        with self._lock:
            self._evaluating = True
            while self._encoding:
                self._lock.wait()
            threads = self.spare()
        try:
            yield threads
        finally:
            with self._lock:
                self._evaluating = False
                self._lock.notify_all()

    @contextmanager
    def encoding(self) -> Iterator[None]:
        with self._lock:
            while self._evaluating:
                self._lock.wait()
            self._encoding = True
        try:
            yield
        finally:
            with self._lock:
                self._encoding = False
                self._lock.notify_all()
