"""An in-memory backend for unit tests of the orchestration: no model, no network, scripted answers and failures."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

from utg_pytest.generate import Backend, Sampling
from utg_pytest.generate.prompts import CHATML, ChatTemplate, Request
from utg_pytest.model import Generation
from utg_pytest.settings import BackendConfig


class FakeBackend:
    remote = True

    def __init__(self, answer: Callable[[Request, Sampling], str], fail: Callable[[Request], bool]) -> None:
        self.identity = "fake#model"
        self.chat_template: ChatTemplate | None = ChatTemplate(CHATML)
        self._answer = answer
        self._fail = fail
        self.requests: list[tuple[Request, Sampling]] = []
        self.closed = False

    async def start(self) -> None:
        return None

    async def generate(self, request: Request, sampling: Sampling) -> tuple[Generation, int]:
        await asyncio.sleep(0)
        self.requests.append((request, sampling))
        if self._fail(request):
            raise ConnectionError("scripted failure")
        return Generation(self._answer(request, sampling), prompt_tokens=7, completion_tokens=3), 1

    def retryable(self, error: Exception) -> bool:
        return isinstance(error, ConnectionError)

    def redact(self, text: str) -> str:
        return text

    async def aclose(self) -> None:
        self.closed = True


class FakeFactory:
    """Counts how often a backend is opened, and keeps every backend it made."""

    def __init__(
        self,
        answer: Callable[[Request, Sampling], str] = lambda request, sampling: f"reply at {sampling.temperature:g}",
        fail: Callable[[Request], bool] = lambda request: False,
    ) -> None:
        self.answer = answer
        self.fail = fail
        self.opened: list[FakeBackend] = []

    def identity(self, config: BackendConfig, digest: Callable[[Path], str]) -> str:
        return "fake#model"

    def describe(self, config: BackendConfig) -> str:
        return "fake#model"

    def template_source(self, config: BackendConfig) -> str | None:
        return CHATML

    async def open(self, config: BackendConfig) -> Backend:
        backend = FakeBackend(self.answer, self.fail)
        self.opened.append(backend)
        return backend
