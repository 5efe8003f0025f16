"""OTLP JSON traces and logs of model calls (the collector's file exporter: one `TracesData` or `LogsData` per line, or
one document per .json file), in every convention that records their messages:

- OpenTelemetry GenAI >= 1.37: `gen_ai.input.messages`, `gen_ai.output.messages`, `gen_ai.system_instructions`, as
  structured AnyValues or JSON strings;
- GenAI <= 1.27: span events `gen_ai.content.prompt` / `gen_ai.content.completion` with OpenAI-shaped JSON;
- GenAI 1.28-1.36: one event per message (`gen_ai.user.message`, ..., `gen_ai.choice`), as log records joined to their
  span by trace and span id, or as span events;
- OpenLLMetry's flattened `gen_ai.prompt.{i}.*` / `gen_ai.completion.{i}.*`;
- OpenInference's `llm.input_messages.{i}.message.*` / `llm.output_messages.{i}.message.*`.

Each model-call span becomes a rebuild.Call; the conversation id is `gen_ai.conversation.id`, else `session.id`, else
an OpenLLMetry association property, else the trace id (one trace, one conversation). Agent, tool and chain spans
carry no model call of their own and are skipped (counted).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
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
    Call,
    Message,
    content_of,
    make_tool_call,
    openai_message,
    parts_content,
    rebuild,
    role_of,
    tool_call,
)
from utg_pytest.model import LogError

CHAT_OPERATIONS = frozenset({"chat", "text_completion", "generate_content"})
"""`gen_ai.operation.name` values of model calls; others (`invoke_agent`, `execute_tool`, `embeddings`) are not."""
CONVERSATION_KEYS = (
    "gen_ai.conversation.id",
    "session.id",
    "traceloop.association.properties.session_id",
    "traceloop.association.properties.thread_id",
    "traceloop.association.properties.conversation_id",
)
MESSAGE_EVENTS = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
CHOICE_EVENT = "gen_ai.choice"
_GENAI = ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions")


@dataclass(frozen=True)
class _Value:
    """A decoded attribute value and the JSON pointer of its AnyValue."""

    value: Any
    at: str


@dataclass(frozen=True)
class _Event:
    """A span event or a log record: its event name, time (ns), attributes, body (log records) and line."""

    name: str
    time: int
    attributes: dict[str, _Value]
    body: _Value | None
    line: int


@dataclass(frozen=True)
class _Span:
    """A span as far as rebuilding needs it; `at` is its JSON pointer in its document."""

    line: int
    at: str
    trace: str | None
    span: str | None
    start: float | None
    failed: bool
    attributes: dict[str, _Value]
    events: tuple[_Event, ...]


def _any(value: Any, at: str) -> Any:
    """The Python value of an OTLP AnyValue (64-bit integers arrive as decimal strings)."""
    if not isinstance(value, dict):
        raise RecordError(at, f"{kind(value)}, not an AnyValue")
    if "stringValue" in value or "boolValue" in value or "bytesValue" in value:
        return value.get("stringValue", value.get("boolValue", value.get("bytesValue")))
    try:
        if "intValue" in value:
            return int(value["intValue"])
        if "doubleValue" in value:
            return float(value["doubleValue"])
    except (TypeError, ValueError):
        raise RecordError(at, f"{kind(value.get('intValue', value.get('doubleValue')))}, not a number") from None
    if "arrayValue" in value:
        items = _list(value["arrayValue"], "values", f"{at}/arrayValue")
        return [_any(item, f"{at}/arrayValue/values/{i}") for i, item in enumerate(items)]
    if "kvlistValue" in value:
        pairs = _list(value["kvlistValue"], "values", f"{at}/kvlistValue")
        return {
            pair["key"]: _any(pair.get("value"), f"{at}/kvlistValue/values/{i}/value")
            for i, pair in enumerate(_pairs(pairs, f"{at}/kvlistValue/values"))
        }
    return None


def _list(container: Any, key: str, at: str) -> list[Any]:
    if not isinstance(container, dict):
        raise RecordError(at, f"{kind(container)}, not an object")
    found = container.get(key, [])
    if not isinstance(found, list):
        raise RecordError(f"{at}/{key}", f"{kind(found)}, not a list")
    return found


def _pairs(items: list[Any], at: str) -> list[dict[str, Any]]:
    for index, pair in enumerate(items):
        if not isinstance(pair, dict) or not isinstance(pair.get("key"), str):
            raise RecordError(f"{at}/{index}", "not a {key, value} pair")
    return items


def _attributes(owner: dict[str, Any], at: str) -> dict[str, _Value]:
    pairs = _pairs(_list(owner, "attributes", at), f"{at}/attributes")
    return {
        pair["key"]: _Value(_any(pair.get("value"), f"{at}/attributes/{i}/value"), f"{at}/attributes/{i}/value")
        for i, pair in enumerate(pairs)
    }


def _nanos(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _event_name(record: dict[str, Any], attributes: dict[str, _Value]) -> str | None:
    """The event a log record or span event is: LogRecord `eventName` (OTLP >= 1.5), span event `name`, or the older
    `event.name` attribute."""
    for found in (record.get("eventName"), record.get("name"), attributes.get("event.name", _Value(None, "")).value):
        if isinstance(found, str) and found:
            return found
    return None


def _parse(record: Record, name: str) -> Iterator[_Span | tuple[tuple[Any, Any], _Event] | LogError]:
    """A document's spans, and its log-record events keyed by (trace id, span id); a broken span is an error of its own
    and the rest of the document still counts."""
    document, base = record.value, record.pointer
    if not isinstance(document, dict) or not ({"resourceSpans", "resourceLogs"} & document.keys()):
        reason = "neither resourceSpans nor resourceLogs" if isinstance(document, dict) else f"{kind(document)}"
        yield LogError(name, record.line, base, f"not an OTLP document: {reason}")
        return
    for top, middle, leaf in (("resourceSpans", "scopeSpans", "spans"), ("resourceLogs", "scopeLogs", "logRecords")):
        try:
            found = [
                (f"{base}/{top}/{i}/{middle}/{j}/{leaf}/{k}", item)
                for i, resource in enumerate(_list(document, top, base))
                for j, scope in enumerate(_list(resource, middle, f"{base}/{top}/{i}"))
                for k, item in enumerate(_list(scope, leaf, f"{base}/{top}/{i}/{middle}/{j}"))
            ]
        except RecordError as exc:
            yield LogError(name, record.line, exc.pointer, exc.reason)
            continue
        for at, item in found:
            try:
                yield _span(record.line, at, item) if leaf == "spans" else _log_event(record.line, at, item)
            except RecordError as exc:
                identifier = item.get("spanId") if isinstance(item, dict) else None
                yield LogError(
                    name, record.line, exc.pointer, exc.reason, identifier if isinstance(identifier, str) else None
                )


def _span(line: int, at: str, span: Any) -> _Span:
    if not isinstance(span, dict):
        raise RecordError(at, f"{kind(span)}, not a span")
    events = []
    for index, event in enumerate(_list(span, "events", at)):
        where = f"{at}/events/{index}"
        if not isinstance(event, dict):
            raise RecordError(where, f"{kind(event)}, not an event")
        attributes = _attributes(event, where)
        time = _nanos(event.get("timeUnixNano")) or 0
        events.append(_Event(_event_name(event, attributes) or "", time, attributes, None, line))
    status = span.get("status")
    code = status.get("code") if isinstance(status, dict) else None
    start = _nanos(span.get("startTimeUnixNano"))
    trace, identifier = span.get("traceId"), span.get("spanId")
    return _Span(
        line,
        at,
        trace if isinstance(trace, str) and trace else None,
        identifier if isinstance(identifier, str) and identifier else None,
        None if start is None else start / 1e9,
        code in (2, "STATUS_CODE_ERROR"),
        _attributes(span, at),
        tuple(events),
    )


def _log_event(line: int, at: str, record: Any) -> tuple[tuple[Any, Any], _Event]:
    if not isinstance(record, dict):
        raise RecordError(at, f"{kind(record)}, not a log record")
    attributes = _attributes(record, at)
    body = _Value(_any(record["body"], f"{at}/body"), f"{at}/body") if "body" in record else None
    time = _nanos(record.get("timeUnixNano")) or 0
    event = _Event(_event_name(record, attributes) or "", time, attributes, body, line)
    return (record.get("traceId"), record.get("spanId")), event


def _text(attributes: dict[str, _Value], key: str) -> str | None:
    found = attributes.get(key)
    return str(found.value) if found is not None and found.value not in (None, "") else None


def _json(attributes: dict[str, _Value], key: str) -> Any:
    """A structured attribute, or the JSON string a span records it as (the Python SDK cannot do better)."""
    found = attributes[key]
    if not isinstance(found.value, str):
        return found.value
    try:
        return json.loads(found.value)
    except ValueError as exc:
        raise RecordError(f"{found.at}/stringValue", f"{key} is not valid JSON: {exc}") from None


def _maybe_parts(text: Any) -> Any:
    """Content that instrumentations `json.dumps` when it is a list of parts, as that list; other text unchanged."""
    if isinstance(text, str) and text.startswith("["):
        try:
            parsed = json.loads(text)
        except ValueError:
            return text
        if isinstance(parsed, list) and parsed and all(isinstance(p, dict) and "type" in p for p in parsed):
            return parsed
    return text


def _genai_message(value: Any, at: str) -> list[Message]:
    """A GenAI ChatMessage (`{role, parts, name?}`) as native messages: each tool_call_response part becomes a tool
    message of its own; reasoning parts are dropped (never shown to the user)."""
    if not isinstance(value, dict):
        raise RecordError(at, f"{kind(value)}, not a message")
    role = role_of(value.get("role"), f"{at}/role")
    parts = value.get("parts") or []
    if not isinstance(parts, list):
        raise RecordError(f"{at}/parts", f"{kind(parts)}, not a list")
    content: list[dict[str, Any]] = []
    calls: list[Message] = []
    responses: list[Message] = []
    name = value.get("name") if isinstance(value.get("name"), str) and value.get("name") else None
    for index, part in enumerate(parts):
        where = f"{at}/parts/{index}"
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise RecordError(where, "not a part with a type")
        if part["type"] == "text":
            if not isinstance(part.get("content"), str):
                raise RecordError(f"{where}/content", f"{kind(part.get('content'))}, not a string")
            content.append({"type": "text", "text": part["content"]})
        elif part["type"] == "tool_call":
            calls.append(make_tool_call(part.get("id"), part.get("name"), part.get("arguments"), f"{where}/name"))
        elif part["type"] == "tool_call_response":
            result = part.get("response", part.get("result"))
            response: Message = {"role": "tool", "content": result if isinstance(result, str) else json.dumps(result)}
            if isinstance(part.get("id"), str):
                response["tool_call_id"] = part["id"].strip()
            responses.append(response | ({"name": name} if name else {}))
        elif part["type"] != "reasoning":
            content.append(part)
    message: Message = {"role": role, "content": parts_content(content)}
    if calls:
        message["tool_calls"] = calls
    if name:
        message["name"] = name
    return ([message] if content or calls or not responses else []) + responses


def _genai(attributes: dict[str, _Value]) -> tuple[list[Message], Message | None]:
    messages: list[Message] = []
    if "gen_ai.system_instructions" in attributes:
        parts = _json(attributes, "gen_ai.system_instructions")
        if not isinstance(parts, list):
            raise RecordError(attributes["gen_ai.system_instructions"].at, f"{kind(parts)}, not a list of parts")
        text = [p.get("content") for p in parts if isinstance(p, dict) and p.get("type") == "text"]
        messages.append({"role": "system", "content": "\n".join(t for t in text if isinstance(t, str))})
    outputs: list[Message] = []
    for key, into in (("gen_ai.input.messages", messages), ("gen_ai.output.messages", outputs)):
        if key in attributes:
            found = attributes[key]
            items = _json(attributes, key)
            if not isinstance(items, list):
                raise RecordError(found.at, f"{kind(items)}, not a list of messages")
            for index, item in enumerate(items):
                into.extend(_genai_message(item, f"{found.at}/{index}"))
    return messages, outputs[0] if outputs else None


def _nest(attributes: dict[str, _Value], prefix: str) -> list[dict[str, Any]]:
    """Flattened `prefix.{i}.a.b` attributes as one nested dict per index i, in numeric order (a lexical order puts
    10 before 2); nested `.{j}.` levels stay dicts keyed by their index (see `_items`)."""
    found: dict[int, dict[str, Any]] = {}
    for key, value in attributes.items():
        head, _, rest = key[len(prefix) :].partition(".") if key.startswith(prefix) else ("", "", "")
        if not head.isdigit() or not rest:
            continue
        node = found.setdefault(int(head), {})
        *path, leaf = rest.split(".")
        for step in path:
            node = node.setdefault(step, {})
            if not isinstance(node, dict):
                raise RecordError(value.at, f"{key} conflicts with another attribute")
        node[leaf] = value
    return [found[index] for index in sorted(found)]


def _items(node: Any) -> list[dict[str, Any]]:
    """The `.{j}.` children of a nested node, in numeric order."""
    if not isinstance(node, dict):
        return []
    return [node[key] for key in sorted((k for k in node if k.isdigit()), key=int) if isinstance(node[key], dict)]


def _leaf(node: Any, *path: str) -> Any:
    for step in path:
        node = node.get(step) if isinstance(node, dict) else None
    return node.value if isinstance(node, _Value) else None


def _where(node: Any, fallback: str) -> str:
    """A pointer for a nested node: the first attribute in it."""
    if isinstance(node, _Value):
        return node.at
    if isinstance(node, dict):
        for child in node.values():
            return _where(child, fallback)
    return fallback


def _traceloop(node: dict[str, Any], at: str) -> Message:
    where = _where(node, at)
    message: Message = {
        "role": role_of(_leaf(node, "role"), _where(node.get("role"), where)),
        "content": content_of(_maybe_parts(_leaf(node, "content")), _where(node.get("content"), where)),
    }
    calls = [
        make_tool_call(_leaf(call, "id"), _leaf(call, "name"), _leaf(call, "arguments"), _where(call, where))
        for call in _items(node.get("tool_calls"))
    ]
    return _finish(message, calls, node)


def _openinference(node: dict[str, Any], at: str) -> Message:
    body = node.get("message", {})
    where = _where(node, at)
    content = _maybe_parts(_leaf(body, "content"))
    parts: list[dict[str, Any]] = []
    for part in _items(body.get("contents")):
        kind_ = _leaf(part, "message_content", "type")
        if kind_ == "text":
            parts.append({"type": "text", "text": str(_leaf(part, "message_content", "text") or "")})
        elif kind_ == "image":
            parts.append(
                {"type": "image_url", "image_url": {"url": _leaf(part, "message_content", "image", "image", "url")}}
            )
    message: Message = {
        "role": role_of(_leaf(body, "role"), _where(body.get("role"), where)),
        "content": parts_content(parts) if parts else content_of(content, _where(body.get("content"), where)),
    }
    calls = [
        make_tool_call(
            _leaf(call, "tool_call", "id"),
            _leaf(call, "tool_call", "function", "name"),
            _leaf(call, "tool_call", "function", "arguments"),
            _where(call, where),
        )
        for call in _items(body.get("tool_calls"))
    ]
    return _finish(message, calls, body)


def _finish(message: Message, calls: list[Message], node: dict[str, Any]) -> Message:
    """The tool calls, the call a tool result answers and the sender's name, where the attributes hold them."""
    if calls:
        message["tool_calls"] = calls
    for key in ("tool_call_id", "name"):
        value = _leaf(node, key)
        if isinstance(value, str) and value:
            message[key] = value
    return message


def _indexed(
    span: _Span, inputs: str, outputs: str, decode: Callable[[dict[str, Any], str], Message]
) -> tuple[list[Message], Message | None]:
    """Messages flattened into indexed attributes (OpenLLMetry, OpenInference); the first output is the answer."""
    sent = [decode(node, span.at) for node in _nest(span.attributes, inputs)]
    answers = [decode(node, span.at) for node in _nest(span.attributes, outputs)]
    return sent, answers[0] if answers else None


def _legacy_events(span: _Span) -> tuple[list[Message], Message | None]:
    """GenAI <= 1.27: the prompt and the completion as span events holding OpenAI-shaped JSON (or plain text)."""
    sent: list[Message] = []
    answer: Message | None = None
    for event in span.events:
        for key, role in (("gen_ai.prompt", "user"), ("gen_ai.completion", "assistant")):
            found = event.attributes.get(key)
            if found is None:
                continue
            try:
                value = json.loads(found.value) if isinstance(found.value, str) else found.value
            except ValueError:
                value = [{"role": role, "content": found.value}]
            items = value if isinstance(value, list) else [value]
            where = [
                f"{found.at}/stringValue" if isinstance(found.value, str) else f"{found.at}/arrayValue/values/{i}"
                for i in range(len(items))
            ]
            messages = [openai_message(item, at) for item, at in zip(items, where, strict=True)]
            if role == "user":
                sent.extend(messages)
            elif messages:
                answer = messages[0]
    return sent, answer


def _body_message(body: Any, at: str, role: str) -> Message:
    """A message event's body (`{content?, role?, tool_calls?, id?}`): `role` only where it differs from the event's,
    and `id` is the call a tool result answers."""
    if not isinstance(body, dict):
        body = {"content": body}
    message: Message = {
        "role": role_of(body.get("role", role), f"{at}/role"),
        "content": content_of(body.get("content"), f"{at}/content"),
    }
    calls = body.get("tool_calls") or []
    if not isinstance(calls, list):
        raise RecordError(f"{at}/tool_calls", f"{kind(calls)}, not a list")
    if calls:
        message["tool_calls"] = [tool_call(call, f"{at}/tool_calls/{i}") for i, call in enumerate(calls)]
    if role == "tool" and isinstance(body.get("id"), str):
        message["tool_call_id"] = body["id"]
    return message


def _message_events(events: Sequence[_Event]) -> tuple[list[Message], Message | None]:
    """GenAI 1.28-1.36: one event per message sent and one `gen_ai.choice` per candidate answer (index 0 kept)."""
    sent: list[Message] = []
    choices: list[tuple[int, Message]] = []
    for event in sorted(events, key=lambda e: e.time):
        body, at = (event.body.value, event.body.at) if event.body is not None else ({}, "")
        if event.name in MESSAGE_EVENTS:
            sent.append(_body_message(body, at, MESSAGE_EVENTS[event.name]))
        elif event.name == CHOICE_EVENT and isinstance(body, dict):
            message = _body_message(body.get("message") or {}, f"{at}/message", "assistant")
            if message["content"] is not None or "tool_calls" in message:
                choices.append((_nanos(body.get("index")) or 0, message))
    return sent, min(choices, key=lambda c: c[0])[1] if choices else None


def _content(span: _Span, logged: Sequence[_Event]) -> tuple[list[Message], Message | None]:
    """The span's messages and answer, in whichever convention it records them."""
    keys = span.attributes.keys()
    if any(key in keys for key in _GENAI):
        return _genai(span.attributes)
    if any(key.startswith(("gen_ai.prompt.", "gen_ai.completion.")) for key in keys):
        return _indexed(span, "gen_ai.prompt.", "gen_ai.completion.", _traceloop)
    if any(key.startswith(("llm.input_messages.", "llm.output_messages.")) for key in keys):
        return _indexed(span, "llm.input_messages.", "llm.output_messages.", _openinference)
    if any("gen_ai.prompt" in e.attributes or "gen_ai.completion" in e.attributes for e in span.events):
        return _legacy_events(span)
    return _message_events([*span.events, *logged])


def _call(span: _Span, logged: Sequence[_Event], name: str) -> Call | Skipped | None:
    """The span's model call; a Skipped notice when it is no model call; None for a model call that recorded no
    message content."""
    kind_ = _text(span.attributes, "openinference.span.kind")
    operation = _text(span.attributes, "gen_ai.operation.name")
    if kind_ is not None and kind_.upper() != "LLM":
        return Skipped(name, span.line, "", f"OpenInference {kind_} spans (not model calls)", span.span)
    if operation is not None and operation not in CHAT_OPERATIONS:
        return Skipped(name, span.line, "", f"{operation} spans (not model calls)", span.span)
    sent, answer = _content(span, logged)
    if not sent and answer is None:
        if kind_ or operation or any(key.startswith(("gen_ai.", "llm.")) for key in span.attributes):
            return None
        return Skipped(name, span.line, "", "spans without GenAI attributes (not model calls)", span.span)
    for field in CONVERSATION_KEYS:
        key = _text(span.attributes, field)
        if key is not None:
            break
    else:
        if span.trace is None:
            raise RecordError(
                f"{span.at}/traceId", "missing, and the span has no conversation id either: nothing to group it by"
            )
        key, field = span.trace, "traceId"
    return Call(key, field, span.line, span.span, span.start, tuple(sent), None if span.failed else answer, span.trace)


def _documents(path: Path, name: str) -> Iterator[Document | LogError]:
    spans: list[_Span] = []
    logged: dict[tuple[Any, Any], list[_Event]] = {}
    for record in read_records(path, name):
        if isinstance(record, LogError):
            yield record
            continue
        for item in _parse(record, name):
            if isinstance(item, LogError):
                yield item
            elif isinstance(item, _Span):
                spans.append(item)
            elif item[1].name in MESSAGE_EVENTS or item[1].name == CHOICE_EVENT:
                logged.setdefault(item[0], []).append(item[1])
            else:
                yield Skipped(name, record.line, "", "log records that are no GenAI message event")
    calls: list[Call] = []
    silent: list[_Span] = []
    for span in spans:
        try:
            found = _call(span, logged.pop((span.trace, span.span), []), name)
        except RecordError as exc:
            yield LogError(name, span.line, exc.pointer, exc.reason, span.span)
            continue
        if found is None:
            silent.append(span)
        elif isinstance(found, Skipped):
            yield found
        else:
            calls.append(found)
    for (_, span_id), events in logged.items():
        identifier = span_id if isinstance(span_id, str) else None
        yield Skipped(
            name, events[0].line, "", "GenAI log events of spans not in the file", identifier, count=len(events)
        )
    if silent:
        yield LogError(
            name,
            silent[0].line,
            "",
            f"{len(silent)} model-call span(s) record no message content "
            "(content capture off?), so no conversation can be rebuilt from them",
            silent[0].span,
        )
    yield from rebuild(calls, name, "otlp")


@dataclass(frozen=True)
class OtlpFormat(DocumentFormat):
    """OTLP JSON traces and logs with GenAI, OpenLLMetry or OpenInference attributes."""

    name = "otlp"

    def recognises(self, record: Any) -> bool:
        return isinstance(record, dict) and ("resourceSpans" in record or "resourceLogs" in record)

    def documents(self, path: Path, name: str) -> Iterator[Document | LogError]:
        return _documents(path, name)
