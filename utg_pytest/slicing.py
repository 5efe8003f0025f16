"""Where the model struggles: the figures per slice of the logs (a metadata field such as the domain, or a property
of the probe), the run gates judged per slice, and the probes it gets most wrong.

A mean over every probe hides a model that holds its average while getting much worse on one kind of conversation.
Slices are computed from the run record (each probe keeps its value of each --utg-slice field), so a stored run
slices as the live one did. Pure functions.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from utg_pytest import gates, stats
from utg_pytest.figures import Figures, compute
from utg_pytest.model import GateVerdict, Probe, ProbeResult
from utg_pytest.record import ProbeRecord, RunRecord
from utg_pytest.scoring.labels import GENUINE
from utg_pytest.scoring.scorers import LEXICAL, SEMANTIC
from utg_pytest.settings import DriftSettings, GateSettings

if TYPE_CHECKING:
    from utg_pytest.baseline import Comparison, Drift, Pair

NONE = "(none)"
"""The slice of the conversations that do not have the field."""
SMALL_PROBES = 10
SMALL_CONVERSATIONS = 3
"""Below either, a slice's figures are shown but marked too small to say much."""


def _bucket(count: int, bounds: Sequence[int]) -> str:
    """A count as the range it falls in, e.g. 4-7: few enough slices to read, each with probes in it."""
    low = 1
    if count < low:
        return str(count)
    for high in bounds:
        if count <= high:
            return f"{low}-{high}" if low != high else str(high)
        low = high + 1
    return f"{low}+"


BUILT_IN: dict[str, Callable[[Probe], str]] = {
    "log": lambda probe: probe.source,
    "context_turns": lambda probe: _bucket(len(probe.context), (1, 3, 7, 15)),
    "turn_words": lambda probe: _bucket(len(probe.target.split()), (3, 10, 25)),
}
"""Properties of a probe a slice can be by, besides its conversation's metadata."""


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value or NONE
    if value is None:
        return NONE
    return json.dumps(value, ensure_ascii=False, sort_keys=True)


def value_of(probe: Probe, field: str) -> str:
    """The probe's slice for `field`: a built-in property, else a dotted path into its conversation's metadata."""
    if field in BUILT_IN:
        return BUILT_IN[field](probe)
    found: Any = probe.metadata
    for part in field.split("."):
        if not isinstance(found, Mapping) or part not in found:
            return NONE
        found = found[part]
    return _text(found)


def values_of(probe: Probe, fields: Sequence[str], guarded: bool) -> dict[str, str]:
    """The probe's value of each field, as a record keeps them: with the PII guard on, personal data in a metadata
    value is redacted like the texts are."""
    found = {field: value_of(probe, field) for field in fields}
    if not guarded or not found:
        return found
    from utg_pytest import pii
    from utg_pytest.model import Message

    redacted = pii.redact([Message("user", value) for value in found.values()]).messages
    return {field: message.text for field, message in zip(found, redacted, strict=True)}


@dataclass(frozen=True)
class Slice:
    field: str
    value: str
    probes: int
    conversations: int
    figures: Figures

    @property
    def small(self) -> bool:
        return self.figures.scored < SMALL_PROBES or self.conversations < SMALL_CONVERSATIONS


def _grouped(record: RunRecord, field: str) -> dict[str, list[ProbeRecord]]:
    groups: dict[str, list[ProbeRecord]] = {}
    for probe in record.probes:
        groups.setdefault(probe.slices.get(field, NONE), []).append(probe)
    return dict(sorted(groups.items(), key=lambda item: (item[0] == NONE, item[0])))


def missing_fields(record: RunRecord, fields: Sequence[str]) -> list[str]:
    """Fields the record's probes carry no values of (the run was not sliced by them)."""
    recorded = set(record.header.settings.slices.fields)
    return [field for field in fields if field not in recorded]


def slices(record: RunRecord, field: str) -> tuple[Slice, ...]:
    """The run's figures on each value of `field`, in order of value, the (none) slice last."""
    metrics, temperature = record.header.metrics, record.header.settings.generation.temperature
    return tuple(
        Slice(
            field,
            value,
            len(found),
            len({p.conversation_id for p in found}),
            compute([p.result for p in found], metrics, temperature),
        )
        for value, found in _grouped(record, field).items()
    )


# --- gates per slice ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SliceVerdict:
    """A run gate judged on one slice. It fails only when the slice falls short of the threshold and the shortfall
    is significant after Holm across the field's slices: with seven domains of twenty probes, one of them falls
    short by chance most of the time."""

    gate: str
    field: str
    value: str
    verdict: GateVerdict
    p: float | None
    p_adjusted: float | None
    family: int
    """Slices the correction runs across."""
    outcome: str
    """pass, inconclusive (short of the threshold, not significantly) or fail."""

    @property
    def name(self) -> str:
        return f"{self.gate}[{self.field}={self.value}]"


SLICE_GATES = ("semantic_similarity", "lexical_similarity", "skill", "echo_rate", "followup_rate")


def _genuine(result: ProbeResult) -> float | None:
    done = [s for s in result.samples if s.ok] if result.samples else [result]
    labels = [s.label for s in done if s.label is not None]
    return labels.count(GENUINE) / len(labels) if labels else None


def _echo(result: ProbeResult) -> float | None:
    done = [s for s in result.samples if s.ok] if result.samples else [result]
    return sum(s.echo for s in done) / len(done) if done else None


def _per_probe(gate: str, figures: Figures) -> Callable[[ProbeResult], float | None]:
    """What the gate averages, probe by probe, so that its shortfall can be tested."""
    if gate == "semantic_similarity":
        return lambda r: r.scores.get(SEMANTIC)
    if gate == "lexical_similarity":
        return lambda r: r.scores.get(LEXICAL)
    if gate == "skill":
        report = figures.skill.get(gates.SKILL_METRIC)
        best = report.best if report else ""
        return lambda r: (
            r.scores[SEMANTIC] - r.references[best][SEMANTIC] if best in r.references and SEMANTIC in r.scores else None
        )
    if gate == "echo_rate":
        return _echo
    return _genuine


def _shortfall(gate: gates.Gate, found: Sequence[ProbeRecord], figures: Figures) -> float | None:
    measure = _per_probe(gate.name, figures)
    pairs = [(value, p.conversation_id) for p in found if p.result.ok and (value := measure(p.result)) is not None]
    if not pairs:
        return None
    values, clusters = [v for v, _ in pairs], [c for _, c in pairs]
    return stats.shortfall_p(values, clusters, gate.threshold, below=gate.comparison != "<=")


def judge(record: RunRecord, settings: GateSettings, alpha: float = 0.05) -> tuple[SliceVerdict, ...]:
    """Each run gate on each slice of each --utg-slice field."""
    found: list[SliceVerdict] = []
    by_name = {gate.name: gate for gate in gates.run_gates(settings)}
    for field in record.header.settings.slices.fields:
        groups = _grouped(record, field)
        temperature = record.header.settings.generation.temperature
        figured = {value: compute([p.result for p in probes], record.header.metrics, temperature)
                   for value, probes in groups.items()}  # fmt: skip
        for name in SLICE_GATES:
            gate = by_name[name]
            family: list[SliceVerdict] = []
            for value, probes in groups.items():
                figures = figured[value]
                verdict = gates.evaluate(gate, figures, settings.gate_on)
                p = _shortfall(gate, probes, figures)
                family.append(SliceVerdict(name, field, value, verdict, p, None, len(groups), "pass"))
            found += _corrected(family, alpha)
    return tuple(found)


def _corrected(family: list[SliceVerdict], alpha: float) -> list[SliceVerdict]:
    tested = [i for i, v in enumerate(family) if v.p is not None]
    adjusted = stats.holm([family[i].p or 0.0 for i in tested]) if tested else []
    by_index = dict(zip(tested, adjusted, strict=True))
    judged = []
    for i, verdict in enumerate(family):
        p = by_index.get(i)
        if verdict.verdict.passed:
            judged.append(replace(verdict, p_adjusted=p))
            continue
        outcome = "fail" if p is not None and p < alpha else "inconclusive"
        if verdict.verdict.value is None:
            outcome = "fail"
        judged.append(replace(verdict, p_adjusted=p, outcome=outcome))
    return judged


# --- the probes it gets most wrong -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Miss:
    """A probe where the model fell below the best reference predictor on that probe."""

    probe: ProbeRecord
    score: float
    reference: str
    reference_score: float

    @property
    def gap(self) -> float:
        return self.score - self.reference_score


def worst(record: RunRecord, top: int | None = None) -> list[Miss]:
    """The probes ranked by how far the model's semantic similarity falls below the best reference's on the same
    probe (a parrot that beat it), most wrong first."""
    found = []
    for probe in record.probes:
        result = probe.result
        if not result.ok or SEMANTIC not in result.scores or not result.references:
            continue
        name, scores = max(result.references.items(), key=lambda item: (item[1].get(SEMANTIC, -1.0), item[0]))
        if SEMANTIC in scores:
            found.append(Miss(probe, result.scores[SEMANTIC], name, scores[SEMANTIC]))
    found.sort(key=lambda miss: (miss.gap, miss.probe.probe_id))
    return [miss for miss in found if miss.gap < 0][:top]


def passed(record: RunRecord) -> bool:
    """The run passed: its gates, and, with --utg-slice-gates, every slice's."""
    settings = record.header.settings
    if not record.passed:
        return False
    return not settings.slices.gates or all(
        v.outcome != "fail" for v in judge(record, settings.gates, settings.drift.alpha)
    )


# --- drift per slice ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SliceDrift:
    """A drift metric on one slice of the paired probes. Holm runs across every metric and slice of the field, so
    slicing seven ways does not multiply the false alarms by seven."""

    field: str
    value: str
    drift: Drift
    family: int

    @property
    def name(self) -> str:
        return f"drift::{self.drift.metric}[{self.field}={self.value}]"


def drift_by_slice(
    comparison: Comparison, fields: Sequence[str], settings: DriftSettings, scorers: Sequence[str] = ()
) -> tuple[SliceDrift, ...]:
    """Each gated drift metric (of runs scored by `scorers`) on each slice of each field; a pair's slice is the
    candidate's value."""
    from utg_pytest.baseline import SEED, decide, drift_metrics, measure

    margins = dict(settings.max_drop)
    found: list[SliceDrift] = []
    for field in fields:
        groups: dict[str, list[Pair]] = {}
        for pair in comparison.alignment.pairs:
            groups.setdefault(pair.new.slices.get(field, NONE), []).append(pair)
        ordered = sorted(groups.items(), key=lambda item: (item[0] == NONE, item[0]))
        measured = [
            (value, measure(pairs, metric, margins.get(metric.name, metric.margin), settings.alpha, SEED))
            for value, pairs in ordered
            for metric in drift_metrics(scorers)
        ]
        tested = [i for i, (_, (_, p)) in enumerate(measured) if p is not None]
        adjusted = dict(zip(tested, stats.holm([measured[i][1][1] or 0.0 for i in tested]), strict=True))
        for i, (value, (drift, _)) in enumerate(measured):
            if i in adjusted:
                drift = decide(replace(drift, p_adjusted=adjusted[i]), settings.alpha)
            found.append(SliceDrift(field, value, drift, len(measured)))
    return tuple(found)
