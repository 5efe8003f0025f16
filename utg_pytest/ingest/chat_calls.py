"""Request/response logs of chat-completion calls, one call per line, rebuilt into conversations by rebuild.py:

- LiteLLM's StandardLoggingPayload (what its logging callbacks receive): `call_type`, `status`, `messages`,
  `response`, `startTime`, `metadata.session_id`, `trace_id` (a call and its retries);
- OpenAI stored completions as an export script saves them: `{chat_completion: <ChatCompletion>, input_messages:
  <GET /chat/completions/{id}/messages>}`, the conversation id in the completion's `metadata`;
- hand-rolled proxy lines: `{ts, metadata, request: {messages}, response: <ChatCompletion>}`.

The conversation id is the first of `session_id`, `thread_id` and `conversation_id` in the record's metadata. Calls that
are no chat completion (embeddings) are skipped and counted; failed ones count only towards their conversation's start.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from utg_pytest.ingest.formats import (
    Document,
    DocumentFormat,
    Record,
    RecordError,
    Skipped,
    kind,
    read_records,
)
from utg_pytest.ingest.rebuild import Call, first_choice, openai_messages, parse_iso, rebuild
from utg_pytest.model import LogError

SESSION_KEYS = ("session_id", "thread_id", "conversation_id")
"""Metadata keys that name a conversation, in the order they are tried."""
CHAT_CALL_TYPES = frozenset({"completion", "acompletion"})
"""LiteLLM call types of chat completions (others: embeddings, image generation, moderation, ...)."""
TIME_KEYS = ("ts", "timestamp", "start_time", "startTime", "created_at")
"""Where a proxy line keeps the time its call started."""


def _session(metadata: Any, field: str) -> tuple[str, str]:
    """The conversation id in a record's metadata, and the field it comes from."""
    if isinstance(metadata, dict):
        for key in SESSION_KEYS:
            value = metadata.get(key)
            if isinstance(value, (str, int)) and not isinstance(value, bool) and str(value):
                return str(value), f"{field}.{key}"
    where = "/" + field.replace(".", "/")
    found = "missing" if metadata is None else f"{kind(metadata)} without " + " or ".join(SESSION_KEYS)
    raise RecordError(where, f"{found}: no conversation id to group the call by")


def _seconds(value: Any) -> float | None:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return parse_iso(value)


def _record_id(value: Any) -> str | None:
    found = value.get("id") if isinstance(value, dict) else None
    return found if isinstance(found, str) else None


def _own_id(record: Any) -> str | None:
    """A logged call's own id: LiteLLM's, or its completion's."""
    if not isinstance(record, dict):
        return None
    return _record_id(record) or _record_id(record.get("chat_completion")) or _record_id(record.get("response"))


def _litellm(record: dict[str, Any], line: int, name: str) -> Call | Skipped:
    identifier = _record_id(record)
    call_type = record.get("call_type")
    if call_type not in CHAT_CALL_TYPES:
        return Skipped(name, line, "", f"call_type {call_type!r} calls (not chat completions)", identifier)
    key, field = _session(record.get("metadata"), "metadata")
    sent = openai_messages(record.get("messages"), "/messages")
    succeeded = record.get("status", "success") == "success"
    answer = first_choice(record.get("response"), "/response") if succeeded else None
    trace = record.get("trace_id")
    return Call(
        key,
        field,
        line,
        identifier,
        _seconds(record.get("startTime")),
        sent,
        answer,
        trace if isinstance(trace, str) else None,
    )


def _stored(record: dict[str, Any], line: int) -> Call:
    completion = record["chat_completion"]
    if not isinstance(completion, dict):
        raise RecordError("/chat_completion", f"{kind(completion)}, not a chat completion")
    listed = record.get("input_messages")
    at = "/input_messages/data" if isinstance(listed, dict) else "/input_messages"
    sent = openai_messages(listed.get("data") if isinstance(listed, dict) else listed, at)
    key, field = _session(completion.get("metadata"), "chat_completion.metadata")
    answer = first_choice(completion, "/chat_completion")
    return Call(key, field, line, _record_id(completion), _seconds(completion.get("created")), sent, answer)


def _proxied(record: dict[str, Any], line: int) -> Call:
    request = record.get("request")
    if not isinstance(request, dict):
        raise RecordError("/request", "missing" if request is None else f"{kind(request)}, not a request")
    sent = openai_messages(request.get("messages"), "/request/messages")
    response = record.get("response")
    metadata, field = (
        (record["metadata"], "metadata") if "metadata" in record else (request.get("metadata"), "request.metadata")
    )
    key, field = _session(metadata, field)
    started = next((found for k in TIME_KEYS if (found := _seconds(record.get(k))) is not None), None)
    if started is None and isinstance(response, dict):
        started = _seconds(response.get("created"))
    return Call(key, field, line, _record_id(response), started, sent, first_choice(response, "/response"))


def _call(record: Record, name: str) -> Call | Skipped:
    value = record.value
    if not isinstance(value, dict):
        raise RecordError("", f"{kind(value)}, not a logged call")
    if "call_type" in value:
        return _litellm(value, record.line, name)
    if "chat_completion" in value:
        return _stored(value, record.line)
    return _proxied(value, record.line)


def _documents(path: Path, name: str) -> Iterator[Document | LogError]:
    calls = []
    for record in read_records(path, name):
        if isinstance(record, LogError):
            yield record
            continue
        try:
            found = _call(record, name)
        except RecordError as exc:
            yield LogError(name, record.line, exc.pointer, exc.reason, _own_id(record.value))
            continue
        if isinstance(found, Skipped):
            yield found
        else:
            calls.append(found)
    yield from rebuild(calls, name, "chat-calls")


def _is_call(record: Any) -> bool:
    if not isinstance(record, dict):
        return False
    request = record.get("request")
    return bool(
        ("call_type" in record and "messages" in record)
        or "chat_completion" in record
        or (isinstance(request, dict) and "messages" in request)
    )


@dataclass(frozen=True)
class ChatCallsFormat(DocumentFormat):
    """Logs of chat-completion calls: LiteLLM, OpenAI stored completions, generic proxy lines."""

    name = "chat-calls"

    def recognises(self, record: Any) -> bool:
        return _is_call(record)

    def documents(self, path: Path, name: str) -> Iterator[Document | LogError]:
        return _documents(path, name)
