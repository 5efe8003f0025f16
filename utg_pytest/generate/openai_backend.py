"""Any OpenAI-compatible endpoint, through the official async client, which owns retries, exponential backoff with
jitter and Retry-After.

The hot path stays lean because per-request CPU, not the network, limits throughput on a small CI machine: one client
with keep-alive connections for the whole run, and the response body read as plain JSON rather than through the
client's typed models.

Every error that leaves this module, the backend's start included, has had the run's credentials removed: the API
key, and the password of a base URL that carries one. Such a URL's user and password are sent as HTTP Basic auth, as
httpx would send them from the URL itself, but the URL the client holds (and httpx logs) has none.

Retries: one budget of 1 + --utg-retries attempts per request. The client spends it on 408, 409, 429 (honouring
Retry-After), 5xx, timeouts and dropped connections; this module on HTTP 200 answers that are not JSON or have no
choice. A content filter's verdict (finish_reason "content_filter") is final and never a prediction; an answer cut at
max_tokens (finish_reason "length") is a prediction like any other.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote, urlsplit

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
UNUSABLE_RETRY_DELAY_S = 0.5
"""First pause before asking again after an answer the client accepted but that holds no usable choice; doubled
each time, as the client's own backoff is."""


class UnusableAnswer(Exception):
    """An HTTP 200 whose body gives no prediction. `transient`: a flaky endpoint (malformed JSON, no choices) may
    answer properly when asked again; a content filter's verdict on the same request would not change."""

    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


class OpenAIBackend:
    remote = True

    def __init__(self, config: BackendConfig) -> None:
        import openai

        assert config.base_url is not None
        self._secret = os.environ.get(config.api_key_env) or ""
        self._retries = config.retries
        basic, url_secrets = _url_credentials(config.base_url)
        self._secrets = sorted({s for s in (self._secret, *url_secrets) if s}, key=len, reverse=True)
        self._base_url = without_credentials(config.base_url)
        self._client = openai.AsyncOpenAI(
            base_url=self._base_url,
            api_key=self._secret or NO_KEY,
            timeout=config.timeout,
            max_retries=config.retries,
            default_headers={"Authorization": basic} if basic else None,
        )
        self._json_form = 0
        self.model = config.model or ""
        self.identity = f"{self._base_url}#{self.model}"
        self.chat_template: ChatTemplate | None = planning_template(EndpointFactory(), config)

    async def start(self) -> None:
        """Without --utg-model, test the first model the endpoint lists."""
        if self.model:
            return
        import openai

        try:
            models = (await self._client.models.list()).data
        except openai.APIError as exc:
            await self._client.close()
            raise self._model_error(exc, 1) from None
        if not models:
            await self._client.close()
            raise RuntimeError("the endpoint lists no models; pass --utg-model")
        self.model = str(models[0].id)
        self.identity = f"{self._base_url}#{self.model}"

    async def generate(self, request: Request, sampling: Sampling) -> tuple[Generation, int]:
        """One request, within one budget of 1 + retries attempts shared by the client's retries (429, 5xx,
        timeouts, dropped connections) and ours (answers with no usable choice)."""
        import openai

        attempts = 0
        while True:
            left = self._retries - attempts
            try:
                raw = await self._post(request, sampling, left)
            except openai.APIStatusError as exc:
                if request.schema is not None and self._json_form + 1 < len(JSON_FORMS) and _about_format(exc):
                    self._json_form += 1
                    continue
                retried = exc.status_code in RETRIED_STATUSES or exc.status_code >= 500
                raise self._model_error(exc, attempts + (1 + left if retried else 1)) from None
            except openai.APIConnectionError as exc:
                raise self._model_error(exc, attempts + 1 + left) from None
            except openai.APIError as exc:
                raise self._model_error(exc, attempts + 1) from None
            attempts += 1 + raw.retries_taken
            try:
                return _parse(raw.http_response.content, chat=request.messages is not None), attempts
            except UnusableAnswer as exc:
                if not exc.transient or attempts > self._retries:
                    raise ModelError(self.redact(str(exc)), attempts) from None
            await asyncio.sleep(UNUSABLE_RETRY_DELAY_S * 2 ** (attempts - 1))

    async def _post(self, request: Request, sampling: Sampling, retries: int) -> Any:
        params: dict[str, Any] = {
            "model": self.model,
            "temperature": sampling.temperature,
            "max_tokens": sampling.max_tokens,
        }
        if sampling.seed is not None:
            params["seed"] = sampling.seed
        params.update(sampling.decoding)
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
        return await self._client.post(
            path, body=params, cast_to=dict, options={"headers": RAW_RESPONSE, "max_retries": retries}
        )

    def _model_error(self, exc: Exception, attempts: int) -> ModelError:
        return ModelError(self.redact(f"{type(exc).__name__}: {exc}"), attempts)

    def retryable(self, error: Exception) -> bool:
        # `generate` has retried within the attempt budget (the client, or itself): what reaches the runner is final.
        return False

    def redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    async def aclose(self) -> None:
        await self._client.close()


def _url_credentials(url: str) -> tuple[str | None, tuple[str, ...]]:
    """The Basic Authorization header a URL's user and password stand for, and the strings that must never be shown:
    the password as written and decoded, and the header's token (an endpoint may echo it). A user without a password
    is a token in the user part, so it is secret too."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return None, ()
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    secrets = (parts.password, password) if parts.password else (parts.username or "", user)
    return f"Basic {token}", (token, *secrets)


def _about_format(error: Exception) -> bool:
    status = getattr(error, "status_code", 0)
    text = str(error).lower()
    return status in (400, 422, 500) and ("response_format" in text or "json_schema" in text)


def _parse(body: bytes, chat: bool) -> Generation:
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise UnusableAnswer(f"malformed response from the endpoint: not JSON: {exc}", transient=True) from None
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices:
        raise UnusableAnswer("malformed response from the endpoint: no choices", transient=True)
    try:
        choice = choices[0]
        text = (choice["message"].get("content") if chat else choice["text"]) or ""
        usage = data.get("usage") or {}
        generation = Generation(
            text=str(text),
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            finish_reason=choice.get("finish_reason"),
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise UnusableAnswer(f"malformed response from the endpoint: {type(exc).__name__}: {exc}", True) from None
    if generation.finish_reason == "content_filter":
        raise UnusableAnswer(
            "the endpoint's content filter withheld the answer (finish_reason content_filter); not scored",
            transient=False,
        )
    return generation
