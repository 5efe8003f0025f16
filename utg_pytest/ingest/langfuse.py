"""Langfuse traces and observations, rebuilt into conversations by rebuild.py: the public API's traces (one
`GET /api/public/traces/{id}` per line, camelCase, with `sessionId` and `observations`) and the blob-storage export's
observation rows (snake_case, `input` and `output` as strings).

GENERATION observations are the model calls; the other types (the SPAN around a turn, TOOL, EVENT, ...) are skipped
and counted. The conversation id is the session id, else the trace id (one trace, one conversation). A generation
logged with `level: ERROR` is a failed call.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from utg_pytest.ingest.formats import Document, DocumentFormat, RecordError, Skipped, kind, read_records
from utg_pytest.ingest.rebuild import Call, Message, first_choice, openai_message, openai_messages, parse_iso, rebuild
from utg_pytest.model import LogError

OBSERVATION_TYPES = frozenset(
    {"SPAN", "GENERATION", "EVENT", "AGENT", "TOOL", "CHAIN", "RETRIEVER", "EVALUATOR", "EMBEDDING", "GUARDRAIL"}
)


def _decoded(value: Any) -> Any:
    """A blob export's string field as the JSON it holds, or the plain text it is."""
    if isinstance(value, str):
        try:
            parsed = json.loads(value)
        except ValueError:
            return value
        return parsed if isinstance(parsed, (list, dict)) else value
    return value


def _sent(value: Any, at: str) -> tuple[Message, ...]:
    """A generation's input: its messages, the OpenAI wrapper's `{messages, tools}`, or a prompt (one user message)."""
    value = _decoded(value)
    if isinstance(value, str):
        return ({"role": "user", "content": value},)
    if isinstance(value, dict) and "messages" in value:
        return openai_messages(value["messages"], f"{at}/messages")
    if isinstance(value, list):
        return openai_messages(value, at)
    raise RecordError(at, f"{kind(value)}, not messages or a string")


def _answer(value: Any, at: str) -> Message | None:
    """A generation's output: a message, a ChatCompletion, or the plain text of a streamed answer."""
    value = _decoded(value)
    if value is None:
        return None
    if isinstance(value, str):
        return {"role": "assistant", "content": value}
    if isinstance(value, dict) and "choices" in value:
        return first_choice(value, at)
    if isinstance(value, dict):
        return openai_message({"role": "assistant", **value}, at)
    raise RecordError(at, f"{kind(value)}, not an answer")


def _call(observation: Any, at: str, line: int, session: tuple[Any, str], name: str) -> Call | Skipped:
    if not isinstance(observation, dict):
        raise RecordError(at, f"{kind(observation)}, not an observation")
    snake = any(key in observation for key in ("trace_id", "start_time", "session_id"))
    identifier = observation.get("id") if isinstance(observation.get("id"), str) else None
    kind_ = observation.get("type")
    if kind_ not in OBSERVATION_TYPES:
        reason = "missing" if kind_ is None else f"{kind_!r} is not an observation type"
        raise RecordError(f"{at}/type", reason)
    if kind_ != "GENERATION":
        return Skipped(name, line, "", f"{kind_} observations (not model calls)", identifier)
    trace_field = "trace_id" if snake else "traceId"
    trace = observation.get(trace_field)
    key, field = session
    if not (isinstance(key, str) and key):
        if not (isinstance(trace, str) and trace):
            raise RecordError(f"{at}/{trace_field}", f"missing (and no {field}): the generation cannot be grouped")
        key, field = trace, trace_field
    sent = _sent(observation.get("input"), f"{at}/input")
    failed = observation.get("level") == "ERROR"
    answer = None if failed else _answer(observation.get("output"), f"{at}/output")
    start = parse_iso(observation.get("start_time" if snake else "startTime"))
    return Call(key, field, line, identifier, start, sent, answer, trace if isinstance(trace, str) else None)


def _documents(path: Path, name: str) -> Iterator[Document | LogError]:
    calls = []
    for record in read_records(path, name):
        if isinstance(record, LogError):
            yield record
            continue
        value = record.value
        if isinstance(value, dict) and isinstance(value.get("observations"), list):
            session = (value.get("sessionId"), "sessionId")
            found = [(f"/observations/{i}", o) for i, o in enumerate(value["observations"])]
        else:
            session = (value.get("session_id"), "session_id") if isinstance(value, dict) else (None, "session_id")
            found = [("", value)]
        for at, observation in found:
            try:
                call = _call(observation, at, record.line, session, name)
            except RecordError as exc:
                identifier = observation.get("id") if isinstance(observation, dict) else None
                yield LogError(
                    name, record.line, exc.pointer, exc.reason, identifier if isinstance(identifier, str) else None
                )
                continue
            if isinstance(call, Skipped):
                yield call
            else:
                calls.append(call)
    yield from rebuild(calls, name, "langfuse")


def _is_langfuse(record: Any) -> bool:
    if not isinstance(record, dict):
        return False
    if isinstance(record.get("observations"), list):
        return True
    return (
        "type" in record and ("trace_id" in record or "traceId" in record) and ("input" in record or "output" in record)
    )


@dataclass(frozen=True)
class LangfuseFormat(DocumentFormat):
    """Langfuse API traces and blob-export observations."""

    name = "langfuse"

    def recognises(self, record: Any) -> bool:
        return _is_langfuse(record)

    def documents(self, path: Path, name: str) -> Iterator[Document | LogError]:
        return _documents(path, name)
