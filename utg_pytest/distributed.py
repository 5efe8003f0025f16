"""pytest-xdist support: probes are scheduled to workers in whole groups, and the controller reports the gates.

A worker cannot judge a gate (it sees only its own probes), and two workers must not both generate a probe. So the
probes are split into one group per worker by a hash of their id (probes.shard_of), the scheduler sends a whole group
to one worker (xdist's scope scheduling, with the group as the scope), and the worker generates a group the first
time one of its probes runs. Every other test keeps its own scope, which schedules it as `--dist load` would. Once
every worker is done, the controller merges their records and reports each gate through the same reporting hooks as
an item, so the terminal, JUnit XML and the exit code see it.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from utg_pytest import gates
from utg_pytest.baseline import Comparison, drift_metrics
from utg_pytest.items import (
    GATE_GROUP,
    MARKER,
    drift_outcome,
    drift_properties,
    gate_properties,
    slice_drift_outcome,
    slice_outcome,
    slice_properties,
)
from utg_pytest.probes import shard_of
from utg_pytest.record import RunRecord
from utg_pytest.report import terminal
from utg_pytest.settings import Settings

SCOPED_MODES = ("load", "loadscope", "loadfile", "loadgroup")
PROBE_NODE = re.compile(r"::turn[0-9]+$")


def check_dist(mode: str, settings: Settings) -> str | None:
    """Why this --dist mode cannot run utg probes, or None."""
    if settings.limits.dry_run:
        return "--utg-dry-run plans the run in one process: run it without -n"
    if mode not in SCOPED_MODES:
        return (
            f"utg-pytest schedules its probes in groups and cannot run with --dist {mode}: use --dist load (the "
            "default with -n) or one of " + ", ".join(SCOPED_MODES[1:])
        )
    return None


def log_names(settings: Settings) -> frozenset[str]:
    """The names of the log files, which begin every probe's node id; known without reading the logs."""
    from pathlib import Path

    from utg_pytest.pipeline import display_name, log_paths

    return frozenset(display_name(path, Path(settings.rootdir)) for path in log_paths(settings))


def make_scheduler(config: pytest.Config, log: Any, settings: Settings, workers: int) -> Any:
    from xdist.scheduler import LoadScopeScheduling

    names = log_names(settings)
    mode = config.getoption("dist", "load")
    default = LoadScopeScheduling._split_scope

    class ProbeGroupScheduling(LoadScopeScheduling):  # type: ignore[misc]
        def _split_scope(self, nodeid: str) -> str:
            if nodeid.split("::", 1)[0] in names and PROBE_NODE.search(nodeid):
                return f"utg-probes-{shard_of(nodeid, workers)}"
            if mode == "loadscope":
                return str(default(self, nodeid))
            if mode == "loadfile":
                return nodeid.split("::", 1)[0]
            if mode == "loadgroup" and nodeid.rfind("@") > nodeid.rfind("]"):
                return nodeid.split("@")[-1]
            return nodeid

    return ProbeGroupScheduling(config, log)


def report_gates(config: pytest.Config, record: RunRecord, comparison: Comparison | str | None = None) -> None:
    """Each gate's verdict (and each drift gate's, against a baseline), reported as a test of its own."""
    settings = record.header.settings
    for gate in gates.run_gates(settings.gates, settings.controls.control == "shuffle"):
        verdict = record.verdict(gate.name)
        failure = None if verdict.passed else terminal.gate_failure(verdict)
        _report(config, gate.name, failure, gate_properties(verdict))
    if settings.slices.gates:
        from utg_pytest.slicing import judge

        for found in judge(record, settings.gates, settings.drift.alpha):
            _report(config, found.name, slice_outcome(found), slice_properties(found))
    if comparison is None:
        return
    for metric in drift_metrics(record.header.scorers):
        drift, failure = drift_outcome(comparison, metric.name, settings.drift.inconclusive)
        _report(config, f"drift::{metric.name}", failure, drift_properties(drift) if drift is not None else [])
    if settings.slices.gates and isinstance(comparison, Comparison):
        from utg_pytest.slicing import drift_by_slice

        for sliced in drift_by_slice(comparison, settings.slices.fields, settings.drift, list(record.header.scorers)):
            failure = slice_drift_outcome(sliced, settings.drift.inconclusive)
            properties = [*drift_properties(sliced.drift), ("utg_slice_family", sliced.family)]
            _report(config, sliced.name, failure, properties)


def _report(config: pytest.Config, name: str, failure: str | None, properties: list[tuple[str, object]]) -> None:
    hook = config.hook
    nodeid = f"{GATE_GROUP}::{name}"
    location = ("utg", None, f"gate {name}")
    hook.pytest_runtest_logstart(nodeid=nodeid, location=location)
    for when in ("setup", "call", "teardown"):
        failed = when == "call" and failure is not None
        report = pytest.TestReport(
            nodeid,
            location,
            {MARKER: 1, name: 1},
            "failed" if failed else "passed",
            failure if failed else None,
            when,
            user_properties=properties if when != "setup" else [],
        )
        hook.pytest_runtest_logreport(report=report)
    hook.pytest_runtest_logfinish(nodeid=nodeid, location=location)
