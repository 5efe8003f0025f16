"""What the plugins add to a run, gathered once from the pytest_utg_* hooks into plain values the pipeline takes
(it never calls a hook itself, so it runs the same without pytest)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from utg_pytest.settings import SettingsError

if TYPE_CHECKING:
    from utg_pytest.generate import BackendFactory
    from utg_pytest.ingest.formats import LogFormat
    from utg_pytest.model import Probe
    from utg_pytest.scoring.scorers import Scorer
    from utg_pytest.settings import BackendConfig, Settings


@dataclass(frozen=True)
class Extensions:
    formats: tuple[LogFormat, ...]
    """Plugins' formats first: `auto` asks them before the built-in ones."""
    scorers: tuple[Scorer, ...]
    """The built-in scorers first, then the plugins', in the order they registered."""
    factories: Callable[[BackendConfig], BackendFactory]
    prepare: Callable[[Probe], Probe] | None


def from_hooks(hook: Any, settings: Settings) -> Extensions:
    """The extensions the registered hook implementations give for these settings; a scorer or format name given
    twice is a usage error naming it."""
    from utg_pytest.scoring.scorers import BUILT_IN

    formats = tuple(found for answer in hook.pytest_utg_log_formats(settings=settings) for found in answer)
    _unique("log format", [f.name for f in formats])
    registered: list[Scorer] = []
    hook.pytest_utg_register_scorers(register=registered.append, settings=settings)
    _unique("scorer", [s.name for s in registered])
    built_in = {s.name for s in BUILT_IN}
    scorers = tuple(sorted(registered, key=lambda s: s.name not in built_in))
    _check_gates(settings, [s.name for s in scorers])

    def factories(backend: BackendConfig) -> BackendFactory:
        found: BackendFactory = hook.pytest_utg_make_backend(backend=backend, settings=settings)
        return found

    prepare = None
    if len(hook.pytest_utg_prepare_probe.get_hookimpls()) > 0:

        def prepare(probe: Probe) -> Probe:
            changed: Probe | None = hook.pytest_utg_prepare_probe(probe=probe, settings=settings)
            return changed if changed is not None else probe

    return Extensions(formats, scorers, factories, prepare)


def _unique(what: str, names: list[str]) -> None:
    twice = sorted({name for name in names if names.count(name) > 1})
    if twice:
        raise SettingsError(f"{what} name(s) registered twice: {', '.join(twice)}")


def _check_gates(settings: Settings, metrics: list[str]) -> None:
    """--utg-gate and --utg-max-drop name metrics of the registered scorers (known only once plugins registered)."""
    from utg_pytest.baseline import margin_problem
    from utg_pytest.gates import run_gates

    built_in_gates = {gate.name for gate in run_gates(replace(settings.gates, metrics=()), True)}
    for metric, _, _ in settings.gates.metric_gates:
        if metric not in metrics:
            raise SettingsError(f"--utg-gate {metric}: no scorer of that name; registered: {', '.join(metrics)}")
        if metric in built_in_gates:
            raise SettingsError(f"--utg-gate {metric}: a built-in gate has that name; use its own option")
    problem = margin_problem([name for name, _ in settings.drift.max_drop], metrics)
    if problem:
        raise SettingsError(f"--utg-max-drop: {problem}")
