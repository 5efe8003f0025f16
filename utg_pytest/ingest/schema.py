"""Validation of one parsed log document against schemas/conversation.schema.json."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from utg_pytest.model import Conversation, LogError, Message

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


def _pointer(path: Any) -> str:
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


def to_conversation(document: Any, source: str, line: int) -> Conversation | LogError:
    from jsonschema.exceptions import best_match

    error = best_match(_validator().iter_errors(document))
    if error is not None:
        return LogError(source, line, _pointer(error.absolute_path), error.message)
    messages = tuple(
        Message(role=m["role"], text=_text(m.get("content")), has_tool_calls=bool(m.get("tool_calls")))
        for m in document["messages"]
    )
    return Conversation(
        id=document["id"],
        messages=messages,
        metadata=document.get("metadata") or {},
        source=source,
        line=line,
    )
