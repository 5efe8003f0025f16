"""Generation backends behind one small protocol, chosen from Settings."""

from __future__ import annotations

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

    def generate(self, request: Request, sampling: Sampling) -> Generation: ...

    def retryable(self, error: Exception) -> bool:
        """Whether trying the same request again can succeed."""
        ...

    def redact(self, text: str) -> str:
        """Remove secrets (API keys) from text that will be shown or stored."""
        ...

    def close(self) -> None: ...


def cache_identity(settings: Settings) -> str:
    """What is being tested, for cache keys, known without starting the backend: the endpoint and the requested model,
    or the content hash of the GGUF file (which also pins its chat template)."""
    if settings.base_url:
        return f"{settings.base_url.rstrip('/')}#{settings.model or ''}"
    from utg_pytest.cache import file_digest
    from utg_pytest.generate.embedded import gguf_path

    return f"gguf:{file_digest(gguf_path(settings))}"


def cache_fingerprint(settings: Settings) -> str:
    from utg_pytest.generate.prompts import CHATML, fingerprint

    if settings.chat_template:
        source: str | None = Path(settings.chat_template).read_text(encoding="utf-8")
    else:
        source = CHATML if settings.base_url else None
    return fingerprint(settings.prompt, source)


def describe(settings: Settings) -> str:
    """A readable name of the model under test, for the summary when no backend had to start."""
    if settings.base_url:
        return f"{settings.base_url.rstrip('/')}#{settings.model or '(first listed)'}"
    from utg_pytest.generate.embedded import DEFAULT_GGUF_NAME

    return f"gguf:{Path(settings.gguf).name if settings.gguf else DEFAULT_GGUF_NAME}"


def make_backend(settings: Settings) -> Backend:
    if settings.base_url:
        from utg_pytest.generate.openai_backend import OpenAIBackend

        return OpenAIBackend(settings)
    from utg_pytest.generate.embedded import EmbeddedBackend

    return EmbeddedBackend(settings)
