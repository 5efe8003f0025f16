"""Any OpenAI-compatible endpoint, through the official async client, which owns retries, exponential backoff with
jitter and Retry-After.

The hot path stays lean because per-request CPU, not the network, limits throughput on a small CI machine: one client
with keep-alive connections for the whole run, and the response body read as plain JSON rather than through the
client's typed models.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

from utg_pytest.generate import EndpointFactory, ModelError, Sampling, planning_template, without_credentials
from utg_pytest.generate.prompts import ChatTemplate, Request
from utg_pytest.model import Generation
from utg_pytest.settings import BackendConfig

NO_KEY = "no-key"
RAW_RESPONSE = {"X-Stainless-Raw-Response": "true"}
JSON_FORMS: tuple[Callable[[dict[str, Any]], dict[str, Any]], ...] = (
    lambda schema: {"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}},
    lambda schema: {"type": "json_object", "schema": schema},
)
"""Structured-output requests, in the order tried: OpenAI's form, then the one llama.cpp's server accepts (it rejects
OpenAI's). The first form a server refuses is not tried again in the run."""
RETRIED_STATUSES = (408, 409, 429)
"""What the openai client retries by itself, besides 5xx and connection errors."""


class OpenAIBackend:
    remote = True

    def __init__(self, config: BackendConfig) -> None:
        import openai

        assert config.base_url is not None
        self._secret = os.environ.get(config.api_key_env) or ""
        self._retries = config.retries
        self._client = openai.AsyncOpenAI(
            base_url=config.base_url,
            api_key=self._secret or NO_KEY,
            timeout=config.timeout,
            max_retries=config.retries,
        )
        self._base_url = without_credentials(config.base_url)
        self._json_form = 0
        self.model = config.model or ""
        self.identity = f"{self._base_url}#{self.model}"
        self.chat_template: ChatTemplate | None = planning_template(EndpointFactory(), config)

    async def start(self) -> None:
        """Without --utg-model, test the first model the endpoint lists."""
        if self.model:
            return
        models = (await self._client.models.list()).data
        if not models:
            raise RuntimeError("the endpoint lists no models; pass --utg-model")
        self.model = str(models[0].id)
        self.identity = f"{self._base_url}#{self.model}"

    async def generate(self, request: Request, sampling: Sampling) -> tuple[Generation, int]:
        import openai

        try:
            return await self._generate(request, sampling)
        except openai.APIStatusError as exc:
            if request.schema is not None and self._json_form + 1 < len(JSON_FORMS) and _about_format(exc):
                self._json_form += 1
                return await self.generate(request, sampling)
            raise self._model_error(exc) from exc
        except openai.APIError as exc:
            raise self._model_error(exc) from exc

    def _model_error(self, exc: Exception) -> ModelError:
        import openai

        retried = isinstance(exc, openai.APIConnectionError) or (
            isinstance(exc, openai.APIStatusError) and (exc.status_code in RETRIED_STATUSES or exc.status_code >= 500)
        )
        return ModelError(f"{type(exc).__name__}: {exc}", 1 + self._retries if retried else 1)

    async def _generate(self, request: Request, sampling: Sampling) -> tuple[Generation, int]:
        params: dict[str, Any] = {
            "model": self.model,
            "temperature": sampling.temperature,
            "max_tokens": sampling.max_tokens,
        }
        if sampling.seed is not None:
            params["seed"] = sampling.seed
        if request.messages is not None:
            path, params["messages"] = "/chat/completions", list(request.messages)
            if request.schema is not None:
                params["response_format"] = JSON_FORMS[self._json_form](request.schema)
        else:
            path, params["prompt"] = "/completions", request.prompt
            if request.stops:
                params["stop"] = list(request.stops)
        # The client's generic `post` (its documented way to reach any endpoint) keeps its retries, backoff and
        # Retry-After handling but skips the per-call conversion of typed parameters, which costs milliseconds of CPU
        # per request; the raw-response header, as `with_raw_response` sets it, skips the typed parsing of the answer.
        raw: Any = await self._client.post(path, body=params, cast_to=dict, options={"headers": RAW_RESPONSE})
        return _parse(raw.http_response.content, chat=request.messages is not None), 1 + raw.retries_taken

    def retryable(self, error: Exception) -> bool:
        # The client has already retried transport errors, 429 and 5xx with backoff; what reaches us is final.
        return False

    def redact(self, text: str) -> str:
        return text.replace(self._secret, "***") if self._secret else text

    async def aclose(self) -> None:
        await self._client.close()


def _about_format(error: Exception) -> bool:
    status = getattr(error, "status_code", 0)
    text = str(error).lower()
    return status in (400, 422, 500) and ("response_format" in text or "json_schema" in text)


def _parse(body: bytes, chat: bool) -> Generation:
    try:
        data = json.loads(body)
        choice = data["choices"][0]
        text = (choice["message"].get("content") if chat else choice["text"]) or ""
    except (ValueError, KeyError, IndexError, TypeError, AttributeError) as exc:
        raise ModelError(f"malformed response from the endpoint: {type(exc).__name__}: {exc}", 1) from exc
    usage = data.get("usage") or {}
    return Generation(
        text=str(text),
        prompt_tokens=int(usage.get("prompt_tokens") or 0),
        completion_tokens=int(usage.get("completion_tokens") or 0),
        finish_reason=choice.get("finish_reason"),
    )
