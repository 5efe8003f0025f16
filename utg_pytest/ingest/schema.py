"""Validation of one parsed log document against schemas/conversation.schema.json."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from utg_pytest.model import Conversation, Location, LogError, Message
from utg_pytest.safe_text import clip

SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas"


@cache
def load_schema(name: str) -> dict[str, Any]:
    with (SCHEMA_DIR / f"{name}.schema.json").open(encoding="utf-8") as handle:
        schema: dict[str, Any] = json.load(handle)
    return schema


@cache
def _validator() -> Any:
    from jsonschema import Draft202012Validator

    schema = load_schema("conversation")
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


def pointer(path: Any) -> str:
    return "".join("/" + str(part).replace("~", "~0").replace("/", "~1") for part in path)


def _text(content: Any) -> str:
    """Flatten content parts to text; non-text parts (images, audio) become a visible marker, not silence."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    pieces = []
    for part in content:
        pieces.append(part["text"] if part.get("type") == "text" else f"[{part.get('type')}]")
    return "\n".join(pieces)


_ROLES = frozenset(("system", "user", "assistant", "tool"))


def _plain_part(part: Any) -> bool:
    if type(part) is not dict or type(part.get("type")) is not str:
        return False
    if "text" in part:
        return type(part["text"]) is str
    return bool(part["type"] != "text")


def _plain_message(message: Any) -> bool:
    if type(message) is not dict or "content" not in message:
        return False
    role = message.get("role")
    if type(role) is not str or role not in _ROLES:
        return False
    content = message["content"]
    if not (content is None or type(content) is str or (type(content) is list and all(map(_plain_part, content)))):
        return False
    return bool(
        type(message.get("name", "")) is str
        and type(message.get("tool_call_id", "")) is str
        and type(message.get("tool_calls", [])) is list
        and all(type(call) is dict for call in message.get("tool_calls", ()))
    )


def plainly_valid(document: Any) -> bool:
    """A shortcut that is True only for documents the schema certainly accepts.

    Schema validation costs about 60 times the JSON parsing of a line; the common, well-formed line takes this path,
    and everything else (including anything with per-probe thresholds) goes through jsonschema, which also names the
    offending field.
    """
    if type(document) is not dict:
        return False
    identifier = document.get("id")
    messages = document.get("messages")
    if type(identifier) is not str or not identifier or type(messages) is not list:
        return False
    metadata = document.get("metadata", {})
    if type(metadata) is not dict or "utg" in metadata or type(document.get("timestamp", "")) is not str:
        return False
    return all(_plain_message(message) for message in messages)


def to_conversation(document: Any, source: str, line: int) -> Conversation | LogError:
    if not plainly_valid(document):
        from jsonschema.exceptions import best_match

        error = best_match(_validator().iter_errors(document))
        if error is not None:
            # jsonschema quotes the offending value whole: a 10 MB string would be echoed into every report.
            return LogError(source, line, clip(pointer(error.absolute_path), 200), clip(error.message))
    messages = tuple(
        Message(role=m["role"], text=_text(m.get("content")), has_tool_calls=bool(m.get("tool_calls")))
        for m in document["messages"]
    )
    return Conversation(
        id=document["id"],
        messages=messages,
        metadata=document.get("metadata") or {},
        location=Location(source, line),
    )
