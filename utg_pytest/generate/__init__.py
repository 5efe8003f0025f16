"""Generation backends behind one small protocol, chosen from Settings."""

from __future__ import annotations

from dataclasses import dataclass
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


def make_backend(settings: Settings) -> Backend:
    if settings.base_url:
        from utg_pytest.generate.openai_backend import OpenAIBackend

        return OpenAIBackend(settings)
    from utg_pytest.generate.embedded import EmbeddedBackend

    return EmbeddedBackend(settings)
