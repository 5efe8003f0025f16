"""Conversations rebuilt from logs that record one model call per record: OTLP spans, chat-completion proxy lines,
Langfuse generations, LangSmith llm runs. (The helpers that normalise OpenAI-shaped messages, which every adapter
meets, live here too.)

Each call carries the history the app sent and the model's answer, so a conversation is the history of its last call
plus that call's answer, completed by what earlier calls show and the last one no longer does. The rules
(fixtures/formats/README.md, "Rebuilding from model calls"):

1. Calls are grouped by conversation id and ordered by start time, never by file line (by line only when some call
   has no start time).
2. A call's history is its input plus its answer (the first choice). Histories are compared without their leading
   system messages (apps rebuild the system prompt per call, e.g. around retrieved context), on whitespace-normalised
   text, tool results by the call they answer, and a user message matches one that contains it: apps wrap the newest
   user turn in a retrieval template and send it raw in later calls.
3. Of calls with the same input (retries, regenerations) only the one that started last keeps its answer; failed calls
   have none. Both still count towards the conversation's start time when their input lies within its history.
4. The anchor is the last call to start among each trace's longest calls: a trace holds one turn, and a shorter call
   in it (a query rewriter, say) is auxiliary. The conversation is the anchor's history, with its system messages.
5. Every other call must lie within that history, or overlap its start by at least MIN_OVERLAP messages: the app then
   trimmed the oldest turns, and the call's earlier messages are put back in front.
6. A call that fits nowhere (an auxiliary call, an abandoned branch) is reported as skipped, never merged in.

The conversation's timestamp is the start of the first call that joined it, UTC, to the second; its location is the
first line among those calls.
"""

from __future__ import annotations

import itertools
import json
import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from utg_pytest.ingest.formats import Document, RecordError, Skipped, kind
from utg_pytest.model import Location, LogError

Message = dict[str, Any]
"""A message in the native shape: role, content (a string, null or content parts) and optionally name, tool_calls
(OpenAI's shape, arguments a JSON string) and tool_call_id."""

ROLES = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
    "function": "tool",
}
"""Role names of OpenAI-style messages, and the native role each becomes."""
MIN_OVERLAP = 2
"""Messages a trimmed history must share with the start of the conversation for its earlier turns to be put back: one
shared message ("ok", "thanks") is too weak a sign that two histories are one."""

_FAILED = "failed calls (no answer; they count only towards their conversation's start time)"
_SUPERSEDED = "answers replaced by a later call with the same input (a retry or a regeneration)"
_UNJOINED = (
    "calls that fit no part of their conversation's history (auxiliary calls such as query rewriters, or abandoned "
    "branches)"
)


@dataclass(frozen=True)
class Call:
    """One model call as an adapter read it: the messages sent and the answer (None for a failed call) in the native
    shape, when it started (epoch seconds, None if unknown), the trace it belongs to, and where it is in the file."""

    key: str
    """Its conversation id."""
    id_field: str
    """Where the id comes from, e.g. `metadata.session_id`."""
    line: int
    record: str | None
    start: float | None
    input: tuple[Message, ...]
    output: Message | None
    trace: str | None = None


def role_of(value: Any, at: str) -> str:
    """The native role of an OpenAI-style role name."""
    if value is None:
        raise RecordError(at, "missing")
    if not isinstance(value, str):
        raise RecordError(at, f"{kind(value)}, not a string")
    if value not in ROLES:
        raise RecordError(at, f"{value!r} is not a known role (known: {', '.join(ROLES)})")
    return ROLES[value]


def parts_content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]] | None:
    """Content parts as the native shape holds them: their text joined with newlines when all are text."""
    if not parts:
        return None
    if all(part["type"] == "text" for part in parts):
        return "\n".join(part["text"] for part in parts)
    return parts


def content_of(value: Any, at: str) -> str | list[dict[str, Any]] | None:
    """A message's content: a string, null, or OpenAI content parts (text parts need their text)."""
    if value is None or isinstance(value, str):
        return value
    if not isinstance(value, list):
        raise RecordError(at, f"{kind(value)}, not a string, null or content parts")
    parts = []
    for index, part in enumerate(value):
        if not isinstance(part, dict) or not isinstance(part.get("type"), str):
            raise RecordError(at, f"a list holding {kind(part)} at {index}, not a string or content parts")
        if part["type"] == "text":
            if not isinstance(part.get("text"), str):
                raise RecordError(f"{at}/{index}/text", f"{kind(part.get('text'))}, not a string")
            part = {"type": "text", "text": part["text"]}
        parts.append(part)
    return parts_content(parts)


def make_tool_call(identifier: Any, name: Any, arguments: Any, at: str) -> Message:
    """An OpenAI tool call; structured arguments are dumped to the JSON string OpenAI's shape holds."""
    if not isinstance(name, str):
        raise RecordError(at, "missing" if name is None else f"{kind(name)}, not a string")
    text = arguments if isinstance(arguments, str) else json.dumps({} if arguments is None else arguments)
    call: Message = {"id": identifier} if isinstance(identifier, str) else {}
    call.update(type="function", function={"name": name, "arguments": text})
    return call


def tool_call(value: Any, at: str) -> Message:
    """A tool call in OpenAI's shape (`{id, function: {name, arguments}}`) or a flat one (`{id, name, arguments}`)."""
    if not isinstance(value, dict):
        raise RecordError(at, f"{kind(value)}, not a tool call")
    function = value.get("function")
    if isinstance(function, dict):
        return make_tool_call(value.get("id"), function.get("name"), function.get("arguments"), f"{at}/function/name")
    return make_tool_call(value.get("id"), value.get("name"), value.get("arguments"), f"{at}/name")


def openai_message(value: Any, at: str) -> Message:
    """A message in OpenAI's chat shape, normalised: `developer` -> system, `function` -> tool."""
    if not isinstance(value, dict):
        raise RecordError(at, f"{kind(value)}, not a message")
    message: Message = {
        "role": role_of(value.get("role"), f"{at}/role"),
        "content": content_of(value.get("content"), f"{at}/content"),
    }
    calls = value.get("tool_calls")
    if calls:
        if not isinstance(calls, list):
            raise RecordError(f"{at}/tool_calls", f"{kind(calls)}, not a list")
        message["tool_calls"] = [tool_call(call, f"{at}/tool_calls/{i}") for i, call in enumerate(calls)]
    for key in ("tool_call_id", "name"):
        if isinstance(value.get(key), str) and value[key]:
            message[key] = value[key]
    return message


def openai_messages(value: Any, at: str) -> tuple[Message, ...]:
    """A list of OpenAI-shaped messages (a request's `messages`)."""
    if not isinstance(value, list):
        raise RecordError(at, "missing" if value is None else f"{kind(value)}, not a list of messages")
    return tuple(openai_message(item, f"{at}/{i}") for i, item in enumerate(value))


def first_choice(response: Any, at: str) -> Message | None:
    """The answer of a chat completion (its first choice's message), None when it has none (a failed call)."""
    if not isinstance(response, dict) or not response.get("choices"):
        return None
    choices = response["choices"]
    if not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise RecordError(f"{at}/choices", f"{kind(choices)}, not a list of choices")
    return openai_message(choices[0].get("message"), f"{at}/choices/0/message")


_ISO = re.compile(r"(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d(?::\d\d)?)(?:[.,](\d+))? ?(Z|[+-]\d\d:?\d\d)?")


def parse_iso(value: Any) -> float | None:
    """Epoch seconds of an ISO 8601 timestamp (naive ones are UTC), None for anything else."""
    match = _ISO.fullmatch(value.strip()) if isinstance(value, str) else None
    if match is None:
        return None
    date, clock, fraction, zone = match.groups()
    moment = datetime.fromisoformat(f"{date}T{clock}").replace(tzinfo=timezone.utc)
    if zone and zone != "Z":
        offset = timedelta(hours=int(zone[1:3]), minutes=int(zone[-2:]))
        moment -= offset if zone[0] == "+" else -offset
    return moment.timestamp() + (float(f"0.{fraction}") if fraction else 0.0)


def iso_utc(seconds: float) -> str:
    """A conversation's timestamp as the fixtures write it: UTC, to the second."""
    return datetime.fromtimestamp(math.floor(seconds), tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def text_of(content: Any) -> str:
    """The text of normalised content, non-text parts marked by their type (as the native reader flattens them)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(part["text"] if part["type"] == "text" else f"[{part['type']}]" for part in content)


_Key = tuple[str, str, tuple[tuple[str, str, str], ...], str]


def _canonical(arguments: str) -> str:
    try:
        return json.dumps(json.loads(arguments), sort_keys=True)
    except ValueError:
        return arguments


def _key(message: Message) -> _Key:
    """What two logs of one message share: role, normalised text (a tool result's body only if it answers no call),
    tool calls with canonical arguments, and the call a tool result answers."""
    calls = tuple(
        (call.get("id", ""), call["function"]["name"], _canonical(call["function"]["arguments"]))
        for call in message.get("tool_calls", ())
    )
    answers = message.get("tool_call_id", "")
    text = "" if message["role"] == "tool" and answers else " ".join(text_of(message["content"]).split())
    return message["role"], text, calls, answers


def _match(a: _Key, b: _Key) -> bool:
    if a == b:
        return True
    return a[0] == b[0] == "user" and a[2:] == b[2:] and bool(a[1] and b[1]) and (a[1] in b[1] or b[1] in a[1])


def _align(history: Sequence[_Key], conversation: Sequence[_Key]) -> int | None:
    """Where `history` lies in `conversation`: the offset of its first message, negative when it starts before the
    conversation and overlaps its start by at least MIN_OVERLAP messages; None when it fits nowhere."""
    m, n = len(history), len(conversation)
    if not m:
        return None
    for offset in itertools.chain((0,), range(1, n - m + 1), range(-1, MIN_OVERLAP - m - 1, -1)):
        if offset <= n - m and all(_match(history[i], conversation[offset + i]) for i in range(max(0, -offset), m)):
            return offset
    return None


def _split(messages: Sequence[Message]) -> tuple[list[Message], list[Message]]:
    """Leading system messages, and the rest."""
    lead = next((i for i, message in enumerate(messages) if message["role"] != "system"), len(messages))
    return list(messages[:lead]), list(messages[lead:])


def _sent(call: Call, answer: bool = True) -> list[Message]:
    """What a call's history holds: its input, and its answer unless `answer` is false."""
    return [*call.input, call.output] if answer and call.output is not None else list(call.input)


def _history(call: Call, answer: bool = True) -> list[Message]:
    return _split(_sent(call, answer))[1]


def _anchor(answered: Sequence[Call]) -> Call:
    """The last call to start (`answered` is in start order) among each trace's longest; a call without a trace is a
    trace of its own."""
    longest: dict[object, tuple[int, Call]] = {}
    for position, call in enumerate(answered):
        trace = call.trace if call.trace is not None else position
        held = longest.get(trace)
        if held is None or len(_history(call)) >= len(_history(held[1])):
            longest[trace] = position, call
    return max(longest.values(), key=lambda found: found[0])[1]


def _skip(source: str, call: Call, reason: str) -> Skipped:
    return Skipped(source, call.line, "", reason, call.record)


def _rebuild(key: str, calls: list[Call], source: str, fmt: str) -> Iterator[Document | LogError]:
    timed = all(call.start is not None for call in calls)
    ordered = sorted(calls, key=lambda call: ((call.start or 0.0) if timed else 0.0, call.line))
    last_of_input: dict[tuple[_Key, ...], int] = {}
    for position, call in enumerate(ordered):
        if call.output is not None:
            last_of_input[tuple(map(_key, call.input))] = position
    answering = set(last_of_input.values())
    if not answering:
        yield from (_skip(source, call, _FAILED) for call in ordered)
        return
    anchor = _anchor([ordered[p] for p in sorted(answering)])
    system, messages = _split(_sent(anchor))
    keys = [_key(message) for message in messages]
    joined = [anchor]
    for position in reversed(range(len(ordered))):
        call = ordered[position]
        if call is anchor:
            continue
        answers = position in answering
        history = _history(call, answer=answers)
        offset = _align([_key(message) for message in history], keys)
        if offset is not None and (answers or offset >= 0):
            joined.append(call)
            if offset < 0:
                messages[:0] = history[:-offset]
                keys[:0] = [_key(message) for message in history[:-offset]]
        if not answers:
            yield _skip(source, call, _FAILED if call.output is None else _SUPERSEDED)
        elif offset is None:
            yield _skip(source, call, _UNJOINED)
    first = min(joined, key=lambda call: (call.line, call.start or 0.0))
    origin = {"format": fmt, "file": source, "id_field": anchor.id_field, "id": key, "calls": len(joined)}
    data: dict[str, Any] = {"id": key, "messages": system + messages, "metadata": {"source": origin}}
    starts = [call.start for call in joined if call.start is not None]
    if starts:
        data["timestamp"] = iso_utc(min(starts))
    yield Document(data, Location(source, first.line, first.record))


def rebuild(calls: Iterable[Call], source: str, fmt: str) -> Iterator[Document | LogError]:
    """The conversations of a file's calls (format `fmt`, display name `source`), in the order of their first lines,
    then a Skipped notice for each call that did not give its answer to one."""
    groups: dict[str, list[Call]] = {}
    for call in calls:
        groups.setdefault(call.key, []).append(call)
    found = [item for key, group in groups.items() for item in _rebuild(key, group, source, fmt)]
    documents = sorted((item for item in found if isinstance(item, Document)), key=lambda d: d.location.line)
    yield from documents
    yield from (item for item in found if not isinstance(item, Document))
