"""The pytest nodes: one File per log, one Collector per conversation, one Item per probe, one Item per gate.

Items only read what the generation phase produced; failures are reported with `pytest.fail(pytrace=False)` so the
reader sees the conversation and the scores, not a traceback of this plugin.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from utg_pytest import gates
from utg_pytest.model import LogError, Probe
from utg_pytest.plugin import MARKER, SUITE_KEY
from utg_pytest.report import terminal
from utg_pytest.suite import Suite


def suite_of(node: pytest.Item | pytest.Collector) -> Suite:
    return node.config.stash[SUITE_KEY]


class LogFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        suite = suite_of(self)
        by_conversation: dict[str, list[Probe]] = {}
        for probe in suite.probes_in(self.nodeid):
            by_conversation.setdefault(probe.conversation_id, []).append(probe)
        for conversation_id, probes in by_conversation.items():
            yield ConversationNode.from_parent(self, name=conversation_id, probes=probes)
        if suite.settings.strict:
            for error in suite.errors_in(self.nodeid):
                yield LogLineItem.from_parent(self, name=f"line{error.line}", error=error)


class ConversationNode(pytest.Collector):
    def __init__(self, *, probes: list[Probe], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.probes = probes

    def collect(self) -> Iterator[pytest.Item]:
        for probe in self.probes:
            yield ProbeItem.from_parent(self, name=f"turn{probe.turn}", probe=probe)


class ProbeItem(pytest.Item):
    def __init__(self, *, probe: Probe, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.probe = probe
        self.add_marker(MARKER)

    def setup(self) -> None:
        suite = suite_of(self)
        suite.ensure_results()
        result = suite.result(self.probe.id)
        if result is None:
            pytest.fail(terminal.probe_error(self.probe, "the generation phase did not run"), pytrace=False)
        if not result.ok:
            pytest.fail(terminal.probe_error(self.probe, result.error or ""), pytrace=False)

    def runtest(self) -> None:
        suite = suite_of(self)
        result = suite.result(self.probe.id)
        assert result is not None
        thresholds = suite.thresholds(self.probe)
        for metric, value in result.scores.items():
            self.user_properties.append((f"utg_{metric}", round(value, 4)))
        shortfalls = gates.probe_shortfalls(result, thresholds, suite.settings.min_probe_pass_rate)
        if shortfalls:
            pytest.fail(terminal.probe_failure(self.probe, result, thresholds, shortfalls), pytrace=False)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.probe.line - 1, f"{self.probe.conversation_id} turn {self.probe.turn}"


class LogLineItem(pytest.Item):
    """An invalid log line under --utg-strict: a failing test of its own, named after its line."""

    def __init__(self, *, error: LogError, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.error = error
        self.add_marker(MARKER)

    def runtest(self) -> None:
        pytest.fail(terminal.log_error(self.error), pytrace=False)

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, self.error.line - 1, f"line {self.error.line}"


class GateGroup(pytest.Collector):
    def collect(self) -> Iterator[pytest.Item]:
        for gate in gates.run_gates(suite_of(self).settings):
            yield GateItem.from_parent(self, name=gate.name, gate=gate)


class GateItem(pytest.Item):
    def __init__(self, *, gate: gates.Gate, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.gate = gate
        self.add_marker(MARKER)

    def setup(self) -> None:
        suite_of(self).ensure_results()

    def runtest(self) -> None:
        verdict = suite_of(self).verdict(self.gate.name)
        self.user_properties += [
            ("utg_gate_value", verdict.value),
            ("utg_gate_threshold", verdict.threshold),
            ("utg_gate_n", verdict.n),
        ]
        if not verdict.passed:
            pytest.fail(terminal.gate_failure(verdict, self.gate.option), pytrace=False)

    def reportinfo(self) -> tuple[str, None, str]:
        return "utg", None, f"gate {self.gate.name}"


def collect(session: pytest.Session, suite: Suite) -> list[pytest.Item]:
    """Build the nodes for every log file and the gates, and expand them into items."""
    items: list[pytest.Item] = []
    for path, name in suite.files:
        log = LogFile.from_parent(session, path=path, nodeid=name)
        items.extend(session.genitems(log))
    group = GateGroup.from_parent(session, name="utg::gate", nodeid="utg::gate")
    items.extend(session.genitems(group))
    return items
