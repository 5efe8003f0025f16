"""The built-in log formats, scorers and backend factories, registered through the same hooks a third-party plugin
implements (utg_pytest.hookspecs), as `trylast` implementations so that any plugin's answer comes first."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from utg_pytest.generate import BackendFactory
    from utg_pytest.ingest.formats import LogFormat
    from utg_pytest.scoring.scorers import Scorer
    from utg_pytest.settings import BackendConfig, Settings


@pytest.hookimpl(trylast=True)
def pytest_utg_log_formats(settings: Settings) -> Sequence[LogFormat]:
    from utg_pytest.pipeline import log_formats

    return log_formats(settings)


@pytest.hookimpl(trylast=True)
def pytest_utg_register_scorers(register: Callable[[Scorer], None], settings: Settings) -> None:
    from utg_pytest.scoring.scorers import BUILT_IN

    for scorer in BUILT_IN:
        register(scorer)


@pytest.hookimpl(trylast=True)
def pytest_utg_make_backend(backend: BackendConfig, settings: Settings) -> BackendFactory:
    from utg_pytest.generate import factory_for

    return factory_for(backend)
