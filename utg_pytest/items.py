"""The pytest nodes: one File per log, one Collector per conversation, one Item per probe, one Item per gate.

The plugin hands each node the run (`from_parent(..., run=...)`); items only read the run record the generation phase
produced. Failures are reported with `pytest.fail(pytrace=False)` so the reader sees the conversation and the scores,
not a traceback of this plugin.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from utg_pytest import gates
from utg_pytest.model import LogError, Probe
from utg_pytest.pipeline import Run, header_only
from utg_pytest.record import RunRecord
from utg_pytest.report import terminal
from utg_pytest.safe_text import node_part, printable

if TYPE_CHECKING:
    from utg_pytest.baseline import Comparison, Drift
    from utg_pytest.slicing import SliceDrift, SliceVerdict

MARKER = "utg"


def fail(message: str) -> NoReturn:
    """Fail an item with log text made safe for the terminal and JUnit XML (escapes shown, not run)."""
    pytest.fail(printable(message), pytrace=False)


class LogFile(pytest.File):
    def __init__(self, *, run: Run, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run = run

    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        by_conversation: dict[str, list[Probe]] = {}
        for probe in self.run.loaded.probes:
            if probe.source == self.nodeid:
                by_conversation.setdefault(probe.conversation_id, []).append(probe)
        for conversation_id, probes in by_conversation.items():
            yield ConversationNode.from_parent(self, name=node_part(conversation_id), probes=probes, run=self.run)
        if self.run.settings.logs.strict:
            for error in self.run.loaded.errors:
                # Records left out on purpose (an embedding call in a proxy log) are counted, not failed.
                if error.source == self.nodeid and not error.skipped:
                    yield LogLineItem.from_parent(self, name=f"{error.unit}{error.line}", error=error)


class ConversationNode(pytest.Collector):
    def __init__(self, *, probes: list[Probe], run: Run, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.probes = probes
        self.run = run

    def collect(self) -> Iterator[pytest.Item]:
        for probe in self.probes:
            yield ProbeItem.from_parent(self, name=f"turn{probe.turn}", probe=probe, run=self.run)


class ProbeItem(pytest.Item):
    def __init__(self, *, probe: Probe, run: Run, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.probe = probe
        self.run = run
        self.add_marker(MARKER)

    def setup(self) -> None:
        found = self.run.record_for(self.probe.id).probe(self.probe.id)
        if found is None:
            fail(terminal.probe_error(self.probe, "the generation phase did not run"))
        if not found.result.ok:
            fail(terminal.probe_error(self.probe, found.result.error or ""))

    def runtest(self) -> None:
        found = self.run.record_for(self.probe.id).probe(self.probe.id)
        assert found is not None
        result = found.result
        for metric, value in result.scores.items():
            self.user_properties.append((f"utg_{metric}", round(value, 4)))
        pass_rate = self.run.settings.gates.min_probe_pass_rate
        shortfalls = gates.probe_shortfalls(result, found.thresholds, pass_rate)
        if shortfalls:
            fail(terminal.probe_failure(found, shortfalls))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.probe.line - 1, f"{node_part(self.probe.conversation_id)} turn {self.probe.turn}"


class LogLineItem(pytest.Item):
    """An invalid log line under --utg-strict: a failing test of its own, named after its line."""

    def __init__(self, *, error: LogError, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error
        self.add_marker(MARKER)

    def runtest(self) -> None:
        fail(terminal.log_error(self.error))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.error.line - 1, f"{self.error.unit} {self.error.line}"


class UtgDriftWarning(UserWarning):
    """A drift gate that could not decide (too few probes, or a drop that is not significant)."""


class UtgSliceWarning(UserWarning):
    """A slice that falls short of a gate's threshold, but not significantly after the correction across slices."""


class GateGroup(pytest.Collector):
    def __init__(self, *, run: Run, missing_baseline: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run = run
        self.missing_baseline = missing_baseline

    def collect(self) -> Iterator[pytest.Item]:
        settings = self.run.settings
        if not self.run.loaded.unsharded:
            accounted = terminal.accounting(RunRecord(header_only(self.run), ()))
            message = f"the logs hold no probe (a non-blank user turn right after an assistant turn); {accounted}"
            yield ProblemItem.from_parent(self, name="logs", message=message, what="logs")
            return
        for gate in gates.run_gates(settings.gates, settings.controls.control == "shuffle"):
            yield GateItem.from_parent(self, name=gate.name, gate=gate, run=self.run)
        if settings.slices.gates:
            from utg_pytest.slicing import SLICE_GATES

            for field, values in self.run.slice_values().items():
                for gate_name in SLICE_GATES:
                    for value in values:
                        name = f"{gate_name}[{field}={value}]"
                        yield SliceGateItem.from_parent(self, name=name, run=self.run)
        if self.run.compared:
            from utg_pytest.baseline import drift_metrics

            metrics = drift_metrics(scorer.name for scorer in self.run.scorers)
            for metric in metrics:
                yield DriftItem.from_parent(self, name=f"drift::{metric.name}", metric=metric.name, run=self.run)
            if settings.slices.gates:
                for field, values in self.run.slice_values().items():
                    for metric in metrics:
                        for value in values:
                            name = f"drift::{metric.name}[{field}={value}]"
                            yield SliceDriftItem.from_parent(self, name=name, run=self.run)
        elif self.missing_baseline is not None and settings.drift.require_baseline:
            yield ProblemItem.from_parent(self, name="drift::baseline", message=self.missing_baseline, what="baseline")


def gate_properties(verdict: Any) -> list[tuple[str, object]]:
    """The JUnit properties of a gate's verdict."""
    return [
        ("utg_gate_value", verdict.value),
        ("utg_gate_threshold", verdict.threshold),
        ("utg_gate_n", verdict.n),
    ]


class RunGateItem(pytest.Item):
    """A gate judged over the run's record: the record is produced (once) before any such item runs."""

    def __init__(self, *, run: Run, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.run = run
        self.add_marker(MARKER)

    def setup(self) -> None:
        self.run.record()


class GateItem(RunGateItem):
    def __init__(self, *, gate: gates.Gate, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gate = gate

    def runtest(self) -> None:
        verdict = self.run.record().verdict(self.gate.name)
        self.user_properties += gate_properties(verdict)
        if not verdict.passed:
            fail(terminal.gate_failure(verdict))

    def reportinfo(self) -> tuple[str, None, str]:
        return "utg", None, f"gate {self.gate.name}"


def drift_properties(drift: Drift) -> list[tuple[str, object]]:
    """The JUnit properties of a drift gate's verdict."""
    return [
        ("utg_drift_change", drift.difference),
        ("utg_drift_ci_low", drift.ci_low),
        ("utg_drift_ci_high", drift.ci_high),
        ("utg_drift_p", drift.p_adjusted),
        ("utg_drift_n", drift.n),
        ("utg_drift_mde", drift.mde),
        ("utg_drift_verdict", drift.verdict),
    ]


def drift_outcome(comparison: Comparison | str, metric: str, inconclusive: str) -> tuple[Drift | None, str | None]:
    """A drift gate's verdict, and the failure message if it fails (an inconclusive verdict fails only when asked)."""
    if isinstance(comparison, str):
        return None, comparison
    drift = comparison.drift(metric)
    if drift.verdict == "fail" or (drift.verdict == "inconclusive" and inconclusive == "fail"):
        return drift, terminal.drift_line(drift)
    return drift, None


class DriftItem(RunGateItem):
    def __init__(self, *, metric: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metric = metric

    def runtest(self) -> None:
        comparison = self.run.drift()
        assert comparison is not None
        drift, failure = drift_outcome(comparison, self.metric, self.run.settings.drift.inconclusive)
        if drift is not None:
            self.user_properties += drift_properties(drift)
            if drift.verdict == "inconclusive" and failure is None:
                warnings.warn(UtgDriftWarning(printable(terminal.drift_line(drift))), stacklevel=1)
        if failure is not None:
            fail(failure)

    def reportinfo(self) -> tuple[str, None, str]:
        return "utg", None, f"drift gate {self.metric}"


def slice_properties(verdict: SliceVerdict) -> list[tuple[str, object]]:
    """The JUnit properties of a slice gate's verdict."""
    return [
        *gate_properties(verdict.verdict),
        ("utg_slice_p", verdict.p),
        ("utg_slice_p_holm", verdict.p_adjusted),
        ("utg_slice_family", verdict.family),
        ("utg_slice_outcome", verdict.outcome),
    ]


def slice_outcome(verdict: SliceVerdict | None) -> str | None:
    """A slice gate's failure message, or None when it passes (an inconclusive shortfall passes with a warning)."""
    if verdict is None or verdict.outcome != "fail":
        return None
    return f"{terminal.slice_gate_line(verdict)}\n(threshold set by {verdict.verdict.option})"


class SliceGateItem(RunGateItem):
    """A run gate on one slice (--utg-slice-gates)."""

    def runtest(self) -> None:
        verdict = next((v for v in self.run.slice_verdicts() if v.name == self.name), None)
        if verdict is None:
            pytest.skip("no probe of this slice was run")
        self.user_properties += slice_properties(verdict)
        if verdict.outcome == "inconclusive":
            warnings.warn(UtgSliceWarning(printable(terminal.slice_gate_line(verdict))), stacklevel=1)
        failure = slice_outcome(verdict)
        if failure is not None:
            fail(failure)

    def reportinfo(self) -> tuple[str, None, str]:
        return "utg", None, f"slice gate {self.name}"


def slice_drift_outcome(found: SliceDrift, inconclusive: str) -> str | None:
    """A drift gate's failure message on one slice, or None when it passes (or is inconclusive and only warns)."""
    drift = found.drift
    if drift.verdict == "fail" or (drift.verdict == "inconclusive" and inconclusive == "fail"):
        return terminal.slice_drift_line(found)
    return None


class SliceDriftItem(RunGateItem):
    """A drift gate on one slice (--utg-slice-gates with a baseline arm)."""

    def runtest(self) -> None:
        found = next((d for d in self.run.slice_drifts() if d.name == self.name), None)
        if found is None:
            pytest.skip("no paired probe of this slice, or the arms could not be compared")
        self.user_properties += [*drift_properties(found.drift), ("utg_slice_family", found.family)]
        failure = slice_drift_outcome(found, self.run.settings.drift.inconclusive)
        if found.drift.verdict == "inconclusive" and failure is None:
            warnings.warn(UtgDriftWarning(printable(terminal.slice_drift_line(found))), stacklevel=1)
        if failure is not None:
            fail(failure)

    def reportinfo(self) -> tuple[str, None, str]:
        return "utg", None, f"slice drift gate {self.name}"


class ProblemItem(pytest.Item):
    """A run that cannot be judged, as one failing test of its own instead of gates that all fail for one reason:
    --utg-require-baseline and no baseline file, or logs that hold no probe at all."""

    def __init__(self, *, message: str, what: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.message = message
        self.what = what
        self.add_marker(MARKER)

    def runtest(self) -> None:
        fail(self.message)

    def reportinfo(self) -> tuple[str, None, str]:
        return "utg", None, self.what


GATE_GROUP = "utg::gate"


def collect(
    session: pytest.Session,
    run: Run,
    paths: Sequence[tuple[Path, str]],
    with_gates: bool,
    missing_baseline: str | None = None,
) -> list[pytest.Item]:
    """Build the nodes for every log file and, when this process judges them, the gates; expand them into items."""
    items: list[pytest.Item] = []
    for path, name in paths:
        log = LogFile.from_parent(session, path=path, nodeid=name, run=run)
        items.extend(session.genitems(log))
    if with_gates:
        group = GateGroup.from_parent(
            session, name=GATE_GROUP, nodeid=GATE_GROUP, run=run, missing_baseline=missing_baseline
        )
        items.extend(session.genitems(group))
    return items
