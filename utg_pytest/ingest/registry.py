"""The built-in log formats, in the order they are recognised, and finding one by name or by a file's first records.

Apart from formats.py so that the adapters, which build on formats.py, and the list of them import in one direction.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from utg_pytest.ingest import chat_calls, langfuse, langsmith, otlp, sharegpt, table
from utg_pytest.ingest.formats import LogFormat, OpenAIFormat, UnknownFormatError, kind, read_head


def builtin_formats() -> tuple[LogFormat, ...]:
    """Every format utg ships, in the order `detect` tries them: the specific shapes before the generic ones (a flat
    table row, or a record with `id` and `messages`, could be many things)."""
    return (
        otlp.OtlpFormat(),
        chat_calls.ChatCallsFormat(),
        langfuse.LangfuseFormat(),
        langsmith.LangSmithFormat(),
        sharegpt.ShareGptFormat(),
        OpenAIFormat(),
        table.TableFormat(),
    )


def get(name: str, formats: Sequence[LogFormat] | None = None) -> LogFormat:
    """The format called `name` (--utg-format)."""
    known = formats if formats is not None else builtin_formats()
    for found in known:
        if found.name == name:
            return found
    raise UnknownFormatError(f"unknown log format {name!r}; known formats: {', '.join(f.name for f in known)}")


def _describe(path: Path, head: Sequence[Any]) -> str:
    if not head:
        return "nothing" if path.stat().st_size == 0 else "no JSON record that parses (is it cut off?)"
    first = head[0]
    if isinstance(first, dict):
        return f"a first record with the keys {', '.join(sorted(map(str, first))) or '(none)'}"
    return f"a first record that is {kind(first)}"


def detect(path: Path, formats: Sequence[LogFormat] | None = None) -> LogFormat:
    """The first format (of `formats`, by default the built-in ones in their order) that recognises the file."""
    known = formats if formats is not None else builtin_formats()
    head = read_head(path)
    for found in known:
        if found.sniff(path, head):
            return found
    raise UnknownFormatError(
        f"{path}: no known log format recognises this file: it holds {_describe(path, head)}; known formats: "
        f"{', '.join(f.name for f in known)} (name one with --utg-format)"
    )
