"""ShareGPT-style conversation datasets: one JSON array of records (FastChat, LLaMA-Factory) or one record per line
(Axolotl and others), each `{id?, system?, conversations: [{from, value}]}`; Pygmalion's `{role, value}` turns and
LMSYS-style `conversation: [{role, content}]` lists are read too.

The id is the record's `id`, else `<file stem>-<1-based record index>`. LLaMA-Factory's `function_call` turns (a JSON
`{name, arguments}`) become assistant tool calls and its `observation` turns their results; the source has no call ids,
so they are numbered per conversation (`call_1`, `call_2`, ...), each result answering the oldest call still open.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from utg_pytest.ingest.formats import Document, DocumentFormat, Record, RecordError, kind, read_records
from utg_pytest.ingest.rebuild import Message, make_tool_call
from utg_pytest.model import Location, LogError

TAGS = {
    "system": "system",
    "human": "user",
    "user": "user",
    "prompter": "user",
    "gpt": "assistant",
    "assistant": "assistant",
    "bot": "assistant",
    "model": "assistant",
    "chatgpt": "assistant",
    "function_call": "assistant",
    "observation": "tool",
    "tool": "tool",
    "function_response": "tool",
}
"""Turn tags (`from`, or `role`) and the native role each becomes."""
LISTS = ("conversations", "conversation")
"""Keys that hold a record's turns."""


def _turns(record: dict[str, Any], at: str) -> tuple[list[Any], str]:
    for key in LISTS:
        if key in record:
            turns = record[key]
            if not isinstance(turns, list):
                raise RecordError(f"{at}/{key}", f"{kind(turns)}, not a list of turns")
            return turns, f"{at}/{key}"
    raise RecordError(f"{at}/conversations", "missing")


def _messages(record: dict[str, Any], at: str) -> list[Message]:
    turns, base = _turns(record, at)
    messages: list[Message] = []
    system = record.get("system")
    if isinstance(system, str) and system:
        messages.append({"role": "system", "content": system})
    open_calls: list[str] = []
    numbered = 0
    for index, turn in enumerate(turns):
        where = f"{base}/{index}"
        if not isinstance(turn, dict):
            raise RecordError(where, f"{kind(turn)}, not a turn")
        tag_key = "role" if "role" in turn and "from" not in turn else "from"
        text_key = "content" if "content" in turn and "value" not in turn else "value"
        tag = turn.get(tag_key)
        if not isinstance(tag, str) or tag not in TAGS:
            reason = "missing" if tag is None else f"{tag!r} is not a known role tag (known: {', '.join(TAGS)})"
            raise RecordError(f"{where}/{tag_key}", reason)
        text = turn.get(text_key)
        if not isinstance(text, str):
            raise RecordError(f"{where}/{text_key}", "missing" if text is None else f"{kind(text)}, not a string")
        if tag == "function_call":
            numbered += 1
            messages.append(_function_call(text, f"call_{numbered}", f"{where}/{text_key}"))
            open_calls.append(f"call_{numbered}")
        elif TAGS[tag] == "tool" and open_calls:
            messages.append({"role": "tool", "tool_call_id": open_calls.pop(0), "content": text})
        else:
            messages.append({"role": TAGS[tag], "content": text})
    return messages


def _function_call(text: str, identifier: str, at: str) -> Message:
    try:
        call = json.loads(text)
    except ValueError as exc:
        raise RecordError(at, f"a function_call that is not JSON: {exc}") from None
    if not isinstance(call, dict):
        raise RecordError(at, f"a function_call holding {kind(call)}, not {{name, arguments}}")
    return {
        "role": "assistant",
        "content": None,
        "tool_calls": [make_tool_call(identifier, call.get("name"), call.get("arguments"), at)],
    }


def _document(record: Record, index: int, stem: str, name: str) -> Document:
    value, at = record.value, record.pointer
    if not isinstance(value, dict):
        raise RecordError(at, f"{kind(value)}, not a conversation record")
    identifier = value.get("id")
    has_id = isinstance(identifier, (str, int)) and not isinstance(identifier, bool) and str(identifier) != ""
    key = str(identifier) if has_id else f"{stem}-{index}"
    origin: dict[str, Any] = {
        "format": "sharegpt",
        "file": name,
        "id_field": "id" if has_id else None,
        "id": key if has_id else None,
    }
    if not has_id:
        origin["index"] = index
    data = {"id": key, "messages": _messages(value, at), "metadata": {"source": origin}}
    return Document(data, Location(name, record.line, key if has_id else None))


def _documents(path: Path, name: str) -> Iterator[Document | LogError]:
    stem = path.name.split(".")[0]
    index = 0
    for record in read_records(path, name, items=True):
        if isinstance(record, LogError):
            yield record
            continue
        index += 1
        try:
            yield _document(record, index, stem, name)
        except RecordError as exc:
            identifier = record.value.get("id") if isinstance(record.value, dict) else None
            yield LogError(name, record.line, exc.pointer, exc.reason, str(identifier) if identifier else None)


def _is_sharegpt(record: Any) -> bool:
    if not isinstance(record, dict):
        return False
    turns = next((record[key] for key in LISTS if key in record), None)
    return isinstance(turns, list) and all(
        isinstance(turn, dict) and ({"from", "role"} & turn.keys()) and ({"value", "content"} & turn.keys())
        for turn in turns[:3]
    )


@dataclass(frozen=True)
class ShareGptFormat(DocumentFormat):
    """ShareGPT-style datasets: `conversations` lists of `{from, value}` turns."""

    name = "sharegpt"

    def recognises(self, record: Any) -> bool:
        return _is_sharegpt(record)

    def documents(self, path: Path, name: str) -> Iterator[Document | LogError]:
        return _documents(path, name)
