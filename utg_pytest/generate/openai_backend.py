"""Any OpenAI-compatible endpoint, through the official client (which owns retries, backoff and Retry-After)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from utg_pytest.generate import ModelError, Sampling
from utg_pytest.generate.prompts import CHATML, ChatTemplate, Request
from utg_pytest.model import Generation
from utg_pytest.settings import Settings

NO_KEY = "no-key"
RETRIED_STATUSES = (408, 409, 429)
"""What the openai client retries by itself, besides 5xx and connection errors."""


class OpenAIBackend:
    def __init__(self, settings: Settings) -> None:
        import openai

        assert settings.base_url is not None
        self._secret = os.environ.get(settings.api_key_env) or ""
        self._retries = settings.retries
        self._client = openai.OpenAI(
            base_url=settings.base_url,
            api_key=self._secret or NO_KEY,
            timeout=settings.timeout,
            max_retries=settings.retries,
        )
        self.model = settings.model or self._first_model()
        self.identity = f"{settings.base_url.rstrip('/')}#{self.model}"
        source = Path(settings.chat_template).read_text(encoding="utf-8") if settings.chat_template else CHATML
        self.chat_template: ChatTemplate | None = ChatTemplate(source)

    def _first_model(self) -> str:
        models = self._client.models.list().data
        if not models:
            raise RuntimeError("the endpoint lists no models; pass --utg-model")
        return str(models[0].id)

    def generate(self, request: Request, sampling: Sampling) -> Generation:
        import openai

        try:
            return self._generate(request, sampling)
        except openai.APIError as exc:
            retried = isinstance(exc, openai.APIConnectionError) or (
                isinstance(exc, openai.APIStatusError)
                and (exc.status_code in RETRIED_STATUSES or exc.status_code >= 500)
            )
            raise ModelError(f"{type(exc).__name__}: {exc}", 1 + self._retries if retried else 1) from exc

    def _generate(self, request: Request, sampling: Sampling) -> Generation:
        params: dict[str, Any] = {
            "model": self.model,
            "temperature": sampling.temperature,
            "max_tokens": sampling.max_tokens,
        }
        if sampling.seed is not None:
            params["seed"] = sampling.seed
        if request.messages is not None:
            chat = self._client.chat.completions.create(messages=list(request.messages), **params)  # type: ignore[arg-type]
            text = chat.choices[0].message.content or ""
            finish = chat.choices[0].finish_reason
            usage = chat.usage
        else:
            assert request.prompt is not None
            done = self._client.completions.create(prompt=request.prompt, stop=list(request.stops) or None, **params)
            text = done.choices[0].text
            finish = done.choices[0].finish_reason
            usage = done.usage
        return Generation(
            text=text,
            prompt_tokens=usage.prompt_tokens if usage else 0,
            completion_tokens=usage.completion_tokens if usage else 0,
            finish_reason=finish,
        )

    def retryable(self, error: Exception) -> bool:
        # The client has already retried transport errors, 429 and 5xx with backoff; what reaches us is final.
        return False

    def redact(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text

    def close(self) -> None:
        self._client.close()
