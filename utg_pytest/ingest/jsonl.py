"""JSONL (optionally gzipped) logs in the OpenAI chat `messages` shape: one conversation per line."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast

from utg_pytest.ingest.schema import to_conversation
from utg_pytest.model import Conversation, LogError


def _open(path: Path) -> BinaryIO:
    return cast(BinaryIO, gzip.open(path, "rb")) if path.name.endswith(".gz") else path.open("rb")


def parse_line(raw: str | bytes, name: str, number: int) -> Conversation | LogError | None:
    """The exact parse of one line: a Conversation, the LogError naming what is wrong, or None for a blank line."""
    if not raw.strip():
        return None
    try:
        document: Any = json.loads(raw)
    except UnicodeDecodeError as exc:
        return LogError(name, number, "", f"not UTF-8: {exc.reason} at byte {exc.start}")
    except json.JSONDecodeError as exc:
        return LogError(name, number, "", f"not valid JSON: {exc.msg} at column {exc.pos + 1}")
    return to_conversation(document, name, number)


def read_jsonl(path: Path, name: str) -> Iterator[Conversation | LogError]:
    """Yield one Conversation or LogError per non-blank line; line numbers are 1-based and count blank lines."""
    with _open(path) as handle:
        for number, raw in enumerate(handle, start=1):
            parsed = parse_line(raw, name, number)
            if parsed is not None:
                yield parsed
