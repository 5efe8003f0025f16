"""LangSmith runs (the Run data format, one run per line) rebuilt into conversations by rebuild.py, and rows of
LangChain chat-history tables (`PostgresChatMessageHistory`: `id, session_id, message`).

`llm` runs are the model calls; chain, tool and other runs are skipped (counted). A run's conversation id is the first
of `thread_id`, `session_id` and `conversation_id` in its `extra.metadata`, else its root run's (children inherit it
by `trace_id`), else the trace id. The run's top-level `session_id` is never used: it is the tracing project.
Messages come in LangChain's serialised forms (the `lc` constructor and `message_to_dict`) or OpenAI's shape.
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
from utg_pytest.ingest.rebuild import (
    ROLES,
    Call,
    Message,
    content_of,
    first_choice,
    make_tool_call,
    openai_message,
    parse_iso,
    rebuild,
    tool_call,
)
from utg_pytest.model import Location, LogError

THREAD_KEYS = ("thread_id", "session_id", "conversation_id")
"""`extra.metadata` keys that name a LangSmith thread, in the order they are tried."""
CLASSES = {
    "HumanMessage": "user",
    "HumanMessageChunk": "user",
    "AIMessage": "assistant",
    "AIMessageChunk": "assistant",
    "SystemMessage": "system",
    "SystemMessageChunk": "system",
    "ToolMessage": "tool",
    "ToolMessageChunk": "tool",
    "FunctionMessage": "tool",
}
"""LangChain message classes (the last item of an `lc` constructor's id)."""
TYPES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool", "function": "tool"} | {
    name: role for name, role in CLASSES.items()
}
"""LangChain message `type` values (message_to_dict's, and a constructor's kwargs.type)."""


def _role(name: Any, fields: dict[str, Any]) -> str | None:
    """The native role of a LangChain class or type name; a ChatMessage carries its own role."""
    if name in ("ChatMessage", "ChatMessageChunk", "chat"):
        role = fields.get("role")
        return ROLES.get(role) if isinstance(role, str) else None
    return (CLASSES.get(name) or TYPES.get(name)) if isinstance(name, str) else None


def lc_message(value: Any, at: str) -> Message:
    """A message as LangChain serialises it (`{lc, type: constructor, id, kwargs}` or `{type, data}`), or in OpenAI's
    shape. Tool calls are LangChain's (`{name, args, id}`), else OpenAI's under `additional_kwargs`: one list, never
    both."""
    if not isinstance(value, dict):
        raise RecordError(at, f"{kind(value)}, not a message")
    if value.get("type") == "constructor":
        ident = value.get("id")
        fields: dict[str, Any] = value["kwargs"] if isinstance(value.get("kwargs"), dict) else {}
        name = ident[-1] if isinstance(ident, list) and ident else None
        role = _role(name, fields) or _role(fields.get("type"), fields)
        if role is None:
            where = f"{at}/id/{len(ident) - 1}" if isinstance(ident, list) and ident else f"{at}/id"
            raise RecordError(where, f"unknown message class {name!r} and no kwargs.type")
        base = f"{at}/kwargs"
    elif "data" in value and "type" in value:
        fields = value["data"] if isinstance(value["data"], dict) else {}
        role = _role(value["type"], fields)
        if role is None:
            raise RecordError(f"{at}/type", f"{value['type']!r} is not a LangChain message type")
        base = f"{at}/data"
    elif "role" in value:
        return openai_message(value, at)
    else:
        raise RecordError(at, "neither a LangChain nor an OpenAI message")
    message: Message = {"role": role, "content": content_of(fields.get("content"), f"{base}/content")}
    calls = fields.get("tool_calls")
    extra = fields.get("additional_kwargs")
    if isinstance(calls, list) and calls:
        message["tool_calls"] = [
            make_tool_call(c.get("id"), c.get("name"), c.get("args"), f"{base}/tool_calls/{i}/name")
            if isinstance(c, dict)
            else tool_call(c, f"{base}/tool_calls/{i}")
            for i, c in enumerate(calls)
        ]
    elif isinstance(extra, dict) and isinstance(extra.get("tool_calls"), list) and extra["tool_calls"]:
        where = f"{base}/additional_kwargs/tool_calls"
        message["tool_calls"] = [tool_call(c, f"{where}/{i}") for i, c in enumerate(extra["tool_calls"])]
    for key in ("tool_call_id", "name"):
        if isinstance(fields.get(key), str) and fields[key]:
            message[key] = fields[key]
    return message


def _sent(inputs: Any) -> tuple[Message, ...]:
    """An llm run's `inputs.messages`: a batch (a list of message lists, the first one taken) or one message list."""
    messages = inputs.get("messages") if isinstance(inputs, dict) else None
    if not isinstance(messages, list):
        raise RecordError("/inputs/messages", "missing" if messages is None else f"{kind(messages)}, not a list")
    if messages and isinstance(messages[0], list):
        return tuple(lc_message(m, f"/inputs/messages/0/{i}") for i, m in enumerate(messages[0]))
    if messages and not isinstance(messages[0], dict):
        raise RecordError(
            "/inputs/messages/0", f"{kind(messages[0])}, not a list of messages (the batch dimension is lost)"
        )
    return tuple(lc_message(m, f"/inputs/messages/{i}") for i, m in enumerate(messages))


def _answer(outputs: Any) -> Message | None:
    """An llm run's output: an LLMResult (first generation's message, or its text) or a ChatCompletion."""
    if not isinstance(outputs, dict):
        return None
    generations = outputs.get("generations")
    if isinstance(generations, list) and generations and isinstance(generations[0], list) and generations[0]:
        first = generations[0][0]
        if isinstance(first, dict) and isinstance(first.get("message"), dict):
            return lc_message(first["message"], "/outputs/generations/0/0/message")
        text = first.get("text") if isinstance(first, dict) else None
        return {"role": "assistant", "content": text} if isinstance(text, str) else None
    return first_choice(outputs, "/outputs")


def _thread(run: dict[str, Any]) -> tuple[str, str] | None:
    extra = run.get("extra")
    metadata = extra.get("metadata") if isinstance(extra, dict) else None
    if isinstance(metadata, dict):
        for key in THREAD_KEYS:
            if isinstance(metadata.get(key), str) and metadata[key]:
                return metadata[key], f"extra.metadata.{key}"
    return None


def _call(record: Record, threads: dict[Any, tuple[str, str]], name: str) -> Call | Skipped:
    run = record.value
    identifier = run.get("id") if isinstance(run.get("id"), str) else None
    run_type = run.get("run_type")
    if run_type is None:
        raise RecordError("/run_type", "missing")
    if run_type != "llm":
        return Skipped(name, record.line, "", f"{run_type} runs (not model calls)", identifier)
    trace = run.get("trace_id") if isinstance(run.get("trace_id"), str) else None
    found = _thread(run) or threads.get(trace)
    if found is None:
        if trace is None:
            raise RecordError("/trace_id", "missing, and the run has no thread id either: nothing to group it by")
        found = trace, "trace_id"
    key, field = found
    failed = bool(run.get("error")) or run.get("status") == "error"
    answer = None if failed else _answer(run.get("outputs"))
    return Call(
        key, field, record.line, identifier, parse_iso(run.get("start_time")), _sent(run.get("inputs")), answer, trace
    )


def _history(rows: list[Record], name: str) -> Iterator[Document | LogError]:
    """Chat-history table rows, one message each, as one conversation per session ordered by row id."""
    sessions: dict[str, list[tuple[int, int, Message]]] = {}
    for row in rows:
        value = row.value
        try:
            session = value.get("session_id")
            if not (isinstance(session, str) and session):
                raise RecordError("/session_id", "missing" if session is None else f"{kind(session)}, not a string")
            if not isinstance(value.get("id"), int) or isinstance(value.get("id"), bool):
                raise RecordError("/id", f"{kind(value.get('id'))}, not an integer row id")
            message = lc_message(value.get("message"), "/message")
        except RecordError as exc:
            yield LogError(name, row.line, exc.pointer, exc.reason)
            continue
        sessions.setdefault(session, []).append((value["id"], row.line, message))
    for session, found in sessions.items():
        found.sort(key=lambda item: item[:2])
        origin = {"format": "langsmith", "file": name, "id_field": "session_id", "id": session}
        data = {"id": session, "messages": [message for _, _, message in found], "metadata": {"source": origin}}
        yield Document(data, Location(name, min(line for _, line, _ in found)))


def _is_history_row(value: Any) -> bool:
    return (
        isinstance(value, dict)
        and "session_id" in value
        and isinstance(value.get("message"), dict)
        and ("run_type" not in value)
    )


def _documents(path: Path, name: str) -> Iterator[Document | LogError]:
    runs: list[Record] = []
    rows: list[Record] = []
    for record in read_records(path, name):
        if isinstance(record, LogError):
            yield record
        elif _is_history_row(record.value):
            rows.append(record)
        elif isinstance(record.value, dict):
            runs.append(record)
        else:
            yield LogError(name, record.line, "", f"{kind(record.value)}, not a run")
    threads = {}
    for record in runs:
        found = _thread(record.value)
        if found is not None and record.value.get("parent_run_id") is None:
            threads[record.value.get("trace_id")] = found
    calls = []
    for record in runs:
        try:
            call = _call(record, threads, name)
        except RecordError as exc:
            identifier = record.value.get("id")
            yield LogError(
                name, record.line, exc.pointer, exc.reason, identifier if isinstance(identifier, str) else None
            )
            continue
        if isinstance(call, Skipped):
            yield call
        else:
            calls.append(call)
    yield from rebuild(calls, name, "langsmith")
    yield from _history(rows, name)


def _is_langsmith(record: Any) -> bool:
    return isinstance(record, dict) and (
        "run_type" in record or _is_history_row(record) or ("trace_id" in record and "inputs" in record)
    )


@dataclass(frozen=True)
class LangSmithFormat(DocumentFormat):
    """LangSmith runs, and LangChain chat-history table rows."""

    name = "langsmith"

    def recognises(self, record: Any) -> bool:
        return _is_langsmith(record)

    def documents(self, path: Path, name: str) -> Iterator[Document | LogError]:
        return _documents(path, name)
