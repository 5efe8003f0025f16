"""Generation backends behind one small protocol, chosen from Settings."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from utg_pytest.generate.prompts import ChatTemplate, Request
from utg_pytest.model import Generation
from utg_pytest.settings import Settings


class ModelError(RuntimeError):
    """A request that failed for good, after the backend's own retries; `attempts` counts them all."""

    def __init__(self, message: str, attempts: int) -> None:
        super().__init__(message)
        self.attempts = attempts


@dataclass(frozen=True)
class Sampling:
    temperature: float
    max_tokens: int
    seed: int | None


class Backend(Protocol):
    """Something that continues a chat or a raw prompt. Implementations own their transport-level retries."""

    identity: str
    """Stable name of what is being tested (endpoint and model, or GGUF file), recorded with every result."""

    chat_template: ChatTemplate | None

    remote: bool
    """Whether requests wait on the network (so local work such as embedding can overlap them) rather than on this
    machine's cores."""

    async def start(self) -> None:
        """Whatever needs the event loop before the first request (listing the endpoint's models)."""
        ...

    async def generate(self, request: Request, sampling: Sampling) -> tuple[Generation, int]:
        """The generation and how many attempts it took, counting the backend's own retries."""
        ...

    def retryable(self, error: Exception) -> bool:
        """Whether trying the same request again can succeed."""
        ...

    def redact(self, text: str) -> str:
        """Remove secrets (API keys) from text that will be shown or stored."""
        ...

    async def aclose(self) -> None: ...


def cache_identity(settings: Settings, digest: Callable[[Path], str]) -> str:
    """What is being tested, for cache keys, known without starting the backend: the endpoint and the requested model,
    or the content hash of the GGUF file (which also pins its chat template)."""
    if settings.base_url:
        return f"{settings.base_url.rstrip('/')}#{settings.model or ''}"
    from utg_pytest.generate.embedded import gguf_path

    return f"gguf:{digest(gguf_path(settings))}"


def cache_fingerprint(settings: Settings) -> str:
    from utg_pytest.generate.prompts import CHATML, fingerprint

    if settings.chat_template:
        source: str | None = Path(settings.chat_template).read_text(encoding="utf-8")
    else:
        source = CHATML if settings.base_url else None
    return fingerprint(settings.prompt, source)


def planning_template(settings: Settings) -> ChatTemplate:
    """The chat template a request would be rendered with, known without loading a model: an endpoint's is the
    configured one (ChatML by default); the embedded model's own is approximated by ChatML."""
    from utg_pytest.generate.prompts import CHATML

    source = Path(settings.chat_template).read_text(encoding="utf-8") if settings.chat_template else CHATML
    return ChatTemplate(source)


def describe(settings: Settings) -> str:
    """A readable name of the model under test, for the summary when no backend had to start."""
    if settings.base_url:
        return f"{settings.base_url.rstrip('/')}#{settings.model or '(first listed)'}"
    from utg_pytest.generate.embedded import DEFAULT_GGUF_NAME

    return f"gguf:{Path(settings.gguf).name if settings.gguf else DEFAULT_GGUF_NAME}"


async def open_backend(settings: Settings) -> Backend:
    backend: Backend
    if settings.base_url:
        from utg_pytest.generate.openai_backend import OpenAIBackend

        backend = OpenAIBackend(settings)
    else:
        from utg_pytest.generate.embedded import EmbeddedBackend

        backend = await EmbeddedBackend.open(settings)
    await backend.start()
    return backend
