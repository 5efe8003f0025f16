"""Plain records that flow through the pipeline: load -> probe -> generate -> score -> gate -> report.

They carry no behaviour beyond trivial derived values, so the core stays testable without pytest or a model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from utg_pytest.safe_text import clip


@dataclass(frozen=True)
class Message:
    role: str
    text: str
    has_tool_calls: bool = False


@dataclass(frozen=True)
class Location:
    """Where a conversation comes from, as messages name it: a file and the line (or table row) of its first record,
    and the record's own id where the format has one. Consumers only show it."""

    source: str
    line: int
    record: str | None = None
    unit: str = "line"

    def describe(self) -> str:
        where = f"{self.source}:{self.line}" if self.unit == "line" else f"{self.source}:{self.unit} {self.line}"
        return f"{where} ({self.record})" if self.record else where


@dataclass(frozen=True)
class Conversation:
    id: str
    messages: tuple[Message, ...]
    metadata: dict[str, Any]
    location: Location

    @property
    def source(self) -> str:
        return self.location.source

    @property
    def line(self) -> int:
        return self.location.line


@dataclass(frozen=True)
class LogIndex:
    """One log file's valid conversations, in order, by position.

    A conversation's text is read, through the exact parser, only when it is asked for: a large log costs little
    until probes are selected from it. Where the reader already knows each message's role and whether its text is
    blank (the bulk path), it hands that over as `outline`, from which probes.py finds the probes without parsing.
    """

    source: str
    lines: list[int]
    """Line (or row) where each conversation starts."""
    ids: list[str]
    """Its id."""
    read: Callable[[int], Conversation]
    """The conversation at a position of `lines`."""
    outline: Any = None
    """None, or a polars DataFrame with one row per message of the outlined conversations, in order: `position`
    (of the conversation), `role` (the role's code: `r` user, `t` assistant, `m` system, `l` tool) and `blank`
    (whether its text is blank). Conversations it does not cover are read when their probes are needed."""


@dataclass(frozen=True)
class LogFile:
    """A log file as a run records it: its name in node ids, and what it held."""

    name: str
    sha256: str
    size: int


@dataclass(frozen=True)
class LogError:
    """A log record that could not become (part of) a conversation; reported, never silently skipped. `line` is the
    record's line, or its row in a table (`unit` says which), `record` its own id where the format has one, and
    `pointer` the JSON pointer (or column) of the offending field."""

    source: str
    line: int
    pointer: str
    reason: str
    record: str | None = None
    unit: str = "line"
    count: int = 0
    """Not 0: not an error but `count` records left out on purpose for this reason (an embedding call in a proxy
    log), counted and shown, never failed."""

    @property
    def skipped(self) -> bool:
        return self.count > 0

    def describe(self) -> str:
        """Where and what, each part cut to a readable length: a reason may quote a value from the log."""
        where = clip(self.pointer, 200) or "(root)"
        record = clip(self.record, 120) if self.record is not None else None
        place = Location(self.source, self.line, record, self.unit).describe()
        return f"{place}: {where}: {clip(self.reason, 400)}"


@dataclass(frozen=True)
class Probe:
    """One masked user turn: the model sees `context` and must produce something like `target`.

    `id` is `<log file>::<conversation id>::turn<k>`, where k counts the conversation's user messages from 1, so it
    does not move when context truncation or sampling options change.
    """

    id: str
    source: str
    line: int
    conversation_id: str
    turn: int
    context: tuple[Message, ...]
    target: str
    thresholds: dict[str, float] = field(default_factory=dict)
    judged_against: tuple[Message, ...] | None = None
    """The context a prediction is labelled against when it differs from `context`: the real one, for a probe whose
    context was perturbed as a control."""
    metadata: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    """Its conversation's metadata, for slicing the figures."""

    @property
    def label_context(self) -> tuple[Message, ...]:
        return self.judged_against if self.judged_against is not None else self.context


@dataclass(frozen=True)
class Generation:
    """What a backend returned for one request, before cleaning."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    finish_reason: str | None = None


@dataclass(frozen=True)
class Attempted:
    """What the generation phase got for one sample of a probe: a generation and its cleaned prediction, or the error
    that ended its attempts (never both)."""

    generation: Generation | None
    prediction: str | None
    error: str | None
    attempts: int
    latency_s: float
    cached: bool = False


@dataclass(frozen=True)
class ProbeResult:
    """Outcome of one probe. Either `prediction` and `scores` are set, or `error` says why there is no prediction."""

    probe_id: str
    prediction: str | None
    raw_output: str | None
    scores: dict[str, float]
    error: str | None = None
    attempts: int = 1
    latency_s: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    references: dict[str, dict[str, float]] = field(default_factory=dict)
    """Scores of the reference predictors (echo, repeat, floor) on this probe, by name then metric."""
    echo_score: float | None = None
    """How closely the prediction copies the assistant's last message (0..1); see scoring.echo."""
    echo: bool = False
    cached: bool = False
    label: str | None = None
    """Plausibility label of the prediction (see scoring.labels); None without a prediction or when unjudged."""
    label_reason: str = ""
    labelled_by: str = "heuristic"
    """"heuristic", or the LLM judge's identity."""
    plausibility: int | None = None
    """The LLM judge's 1-5 rating."""
    unjudged: str | None = None
    """Why the LLM judge gave no valid verdict; such a probe is left out of the follow-up rate, not failed."""
    judge_tokens: int = 0
    """Tokens the LLM judge spent on this prediction in this run."""
    samples: tuple[ProbeResult, ...] = ()
    """With --utg-samples above 1, each sample's own result; this result then holds their means and majority label."""

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class GateVerdict:
    name: str
    label: str
    """What was measured, e.g. "mean semantic similarity"."""
    value: float | None
    comparison: str
    """How value must relate to threshold: ">=", ">" or "<="."""
    threshold: float
    passed: bool
    n: int
    ci_low: float | None = None
    ci_high: float | None = None
    detail: str = ""
    basis: str = "point"
    """What was compared with the threshold: the point estimate, or the interval's conservative bound."""
    option: str = ""
    """The option that sets the threshold."""

    @property
    def compared(self) -> float | None:
        if self.basis == "lower bound":
            return self.ci_low
        if self.basis == "upper bound":
            return self.ci_high
        return self.value
