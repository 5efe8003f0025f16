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


def read_jsonl(path: Path, name: str) -> Iterator[Conversation | LogError]:
    """Yield one Conversation or LogError per non-blank line; line numbers are 1-based and count blank lines."""
    with _open(path) as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                document: Any = json.loads(raw)
            except UnicodeDecodeError as exc:
                yield LogError(name, number, "", f"not UTF-8: {exc.reason} at byte {exc.start}")
                continue
            except json.JSONDecodeError as exc:
                yield LogError(name, number, "", f"not valid JSON: {exc.msg} at column {exc.pos + 1}")
                continue
            yield to_conversation(document, name, number)
