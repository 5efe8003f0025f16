"""Generation backends behind one small protocol, made by a factory chosen once per backend config."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urlsplit, urlunsplit

from utg_pytest.generate.prompts import ChatTemplate, Request
from utg_pytest.model import Generation
from utg_pytest.settings import BackendConfig


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
    decoding: tuple[tuple[str, float], ...] = ()
    """top_p, min_p and repeat_penalty where set (GenerationConfig.decoding); the backend's own defaults otherwise."""


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


class BackendFactory(Protocol):
    """Makes the backend for one BackendConfig, and says what it is without making it (for cache keys, dry runs and
    the run record, which must not load a model or open a connection). Chosen once per config by `factory_for`."""

    def identity(self, config: BackendConfig, digest: Callable[[Path], str]) -> str:
        """What is being tested, stable across runs: the endpoint and requested model, or the GGUF file's content
        hash (which also pins its chat template). No credentials."""
        ...

    def describe(self, config: BackendConfig) -> str:
        """A readable name for the summary, when nothing had to start."""
        ...

    def template_source(self, config: BackendConfig) -> str | None:
        """The chat template a template-strategy request is rendered with, when it is known without loading a model
        (None: the model's own, pinned by its identity)."""
        ...

    async def open(self, config: BackendConfig) -> Backend: ...


def without_credentials(url: str) -> str:
    """A URL as it may be shown or stored: user and password dropped, no trailing slash."""
    parts = urlsplit(url.rstrip("/"))
    if parts.username is None and parts.password is None:
        return url.rstrip("/")
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit(parts._replace(netloc=netloc))


class EndpointFactory:
    def identity(self, config: BackendConfig, digest: Callable[[Path], str]) -> str:
        assert config.base_url is not None
        return f"{without_credentials(config.base_url)}#{config.model or ''}"

    def describe(self, config: BackendConfig) -> str:
        assert config.base_url is not None
        return f"{without_credentials(config.base_url)}#{config.model or '(first listed)'}"

    def template_source(self, config: BackendConfig) -> str | None:
        from utg_pytest.generate.prompts import CHATML

        return Path(config.chat_template).read_text(encoding="utf-8") if config.chat_template else CHATML

    async def open(self, config: BackendConfig) -> Backend:
        from utg_pytest.generate.openai_backend import OpenAIBackend

        backend = OpenAIBackend(config)
        await backend.start()
        return backend


class EmbeddedFactory:
    def identity(self, config: BackendConfig, digest: Callable[[Path], str]) -> str:
        from utg_pytest.generate.embedded import EVALUATION, gguf_path

        path = gguf_path(config)
        return f"gguf:{digest(path)}/{EVALUATION}"

    def describe(self, config: BackendConfig) -> str:
        from utg_pytest.generate.embedded import DEFAULT_GGUF_NAME

        return f"gguf:{Path(config.gguf).name if config.gguf else DEFAULT_GGUF_NAME}"

    def template_source(self, config: BackendConfig) -> str | None:
        return None

    async def open(self, config: BackendConfig) -> Backend:
        from utg_pytest.generate.embedded import EmbeddedBackend

        return await EmbeddedBackend.open(config)


def factory_for(config: BackendConfig) -> BackendFactory:
    """The one place that decides which kind of backend a config means."""
    return EndpointFactory() if config.remote else EmbeddedFactory()


def prompt_fingerprint(factory: BackendFactory, config: BackendConfig, strategy: str) -> str:
    from utg_pytest.generate.prompts import fingerprint

    return fingerprint(strategy, factory.template_source(config))


def planning_template(factory: BackendFactory, config: BackendConfig) -> ChatTemplate:
    """The chat template a request would be rendered with, known without loading a model; the embedded model's own
    is approximated by ChatML."""
    from utg_pytest.generate.prompts import CHATML

    return ChatTemplate(factory.template_source(config) or CHATML)
