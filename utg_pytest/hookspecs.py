"""The hooks third-party code extends utg-pytest through: log formats, probe preparation, scorers, backends and
summary lines. Implement them in a `conftest.py` or a plugin; a package can also register a module through the
entry-point group `utg_pytest`. The built-in formats, scorers and backends are registered through these same hooks
(utg_pytest.builtin_hooks, as `trylast` implementations), so a plugin's answer comes first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from utg_pytest.generate import BackendFactory
    from utg_pytest.ingest.formats import LogFormat
    from utg_pytest.model import Probe
    from utg_pytest.record import RunRecord
    from utg_pytest.scoring.scorers import Scorer
    from utg_pytest.settings import BackendConfig, Settings


@pytest.hookspec
def pytest_utg_log_formats(settings: Settings) -> Sequence[LogFormat]:
    """Log formats this plugin reads. `--utg-format NAME` picks one by name; `auto` asks each format's `sniff`
    whether it recognises a file from its first records, plugins' formats before the built-in ones. `read` yields
    Conversation values, and a LogError (file, line, field) for each record it cannot use, never stopping early.

    Example, in conftest.py::

        import json
        from utg_pytest.ingest.formats import LogError
        from utg_pytest.model import Conversation, Location, Message

        class TicketFormat:
            name = "tickets"

            def sniff(self, path, head):
                return bool(head) and isinstance(head[0], dict) and "ticket" in head[0]

            def read(self, path, name):
                for line, text in enumerate(path.read_text().splitlines(), 1):
                    record = json.loads(text)
                    turns = tuple(Message(t["who"], t["said"]) for t in record["ticket"]["turns"])
                    yield Conversation(str(record["id"]), turns, {}, Location(name, line))

        def pytest_utg_log_formats(settings):
            return [TicketFormat()]
    """
    raise NotImplementedError


@pytest.hookspec(firstresult=True)
def pytest_utg_prepare_probe(probe: Probe, settings: Settings) -> Probe | None:
    """Adjust what is sent for a probe before it is generated, e.g. strip the retrieved documents an application
    wrapped around its users' questions. Return a changed probe (dataclasses.replace), or None to leave it. The cache
    key and the record follow the probe as sent; the real turn it is scored against should stay what the user wrote.

    Example, in conftest.py::

        import dataclasses, re
        from utg_pytest.model import Message

        def pytest_utg_prepare_probe(probe, settings):
            unwrap = lambda m: Message(m.role, re.sub(r"(?s)<context>.*?</context>", "", m.text).strip())
            return dataclasses.replace(probe, context=tuple(unwrap(m) for m in probe.context))
    """
    raise NotImplementedError


@pytest.hookspec
def pytest_utg_register_scorers(register: Callable[[Scorer], None], settings: Settings) -> None:
    """Register scorers beside the built-in semantic and lexical ones: each adds a metric to every result, the
    summary, the record and the drift statistics, and `--utg-gate "NAME>=X"` gates on its mean. A scorer has a
    `name`, a `version` (change it when its scores change meaning: runs scored by different versions are not
    compared), `embeds` (whether it reads the sentence vectors of its two texts) and `score(prediction, target,
    vectors)`, higher is better.

    Example, in conftest.py::

        class Politeness:
            name, version, embeds = "politeness", "1", False

            def score(self, prediction, target, vectors):
                return float(any(w in prediction.lower() for w in ("please", "thanks", "thank you")))

        def pytest_utg_register_scorers(register, settings):
            register(Politeness())
    """
    raise NotImplementedError


@pytest.hookspec(firstresult=True)
def pytest_utg_make_backend(backend: BackendConfig, settings: Settings) -> BackendFactory | None:
    """The factory of the generation backend for one model configuration (the model under test, a live baseline
    arm, an LLM judge), or None to leave it to the next plugin. A BackendFactory names the backend (`identity`,
    `describe`), gives its chat template source and opens it; see utg_pytest.generate for the protocol.

    Example, in conftest.py::

        from utg_pytest.generate import EndpointFactory

        class GatewayFactory(EndpointFactory):
            def describe(self, config):
                return f"gateway {config.model}"

        def pytest_utg_make_backend(backend, settings):
            return GatewayFactory() if backend.base_url and "gateway" in backend.base_url else None
    """
    raise NotImplementedError


@pytest.hookspec
def pytest_utg_summary_lines(record: RunRecord) -> Sequence[str]:
    """Lines to add to the summary and the reports, computed from the run record (so a stored run reports them
    again under `utg report` only if the plugin is loaded there).

    Example, in conftest.py::

        def pytest_utg_summary_lines(record):
            timed = [p for p in record.probes if p.result.ok]
            if not timed:
                return []
            slowest = max(timed, key=lambda p: p.result.latency_s)
            return [f"slowest probe: {slowest.probe_id} ({slowest.result.latency_s:.1f} s)"]
    """
    raise NotImplementedError
