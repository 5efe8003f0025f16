"""Log-format adapters (utg_pytest/ingest/formats.py and the adapters behind it) against fixtures/formats: each
folder's valid files rebuild exactly its expected.jsonl (compared as fixtures/formats/README.md says), detection names
every fixture's format, every malformed record is named by file, line or row and field while the rest still loads,
and a conversation written out as a table or as chat-completion calls reads back to the same probes."""

from __future__ import annotations

import csv
import gzip
import io
import json
import random
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from utg_pytest.ingest import formats, rebuild, registry
from utg_pytest.ingest.chat_calls import ChatCallsFormat
from utg_pytest.ingest.schema import to_conversation
from utg_pytest.ingest.table import BLANK, TableFormat
from utg_pytest.model import Conversation, LogError
from utg_pytest.probes import conversation_probes, probe_columns

FORMATS = Path(__file__).resolve().parent.parent / "fixtures" / "formats"

VALID = {
    "otlp": (
        "otlp",
        (
            "genai_json_string.jsonl",
            "genai_structured.jsonl",
            "genai_log_events.jsonl",
            "genai_span_events.jsonl",
            "openllmetry_indexed.jsonl",
            "openinference.jsonl",
            "whole_export.json",
        ),
    ),
    "chat-calls": (
        "chat-calls",
        ("litellm_standard_logging.jsonl", "openai_stored_completions.jsonl", "generic_proxy.jsonl"),
    ),
    "langfuse": ("langfuse", ("traces_api.jsonl", "observations_v2.jsonl")),
    "langsmith": ("langsmith", ("runs.jsonl", "message_store.jsonl")),
    "sharegpt": ("sharegpt", ("fastchat_list.json", "variants.jsonl")),
    "table": ("table", ("support_export.csv", "messages.jsonl")),
}
"""Folder -> (format, the valid files that rebuild its expected.jsonl). messages.parquet holds messages.jsonl's rows
and is checked on its own."""

BAD = {
    "otlp.jsonl": (
        "otlp",
        {
            2: "",
            3: "/resourceSpans",
            4: "/resourceSpans/0/scopeSpans/0/spans/0/traceId",
            5: "/resourceSpans/0/scopeSpans/0/spans/0/attributes/6/value/stringValue",
        },
    ),
    "otlp_no_content.jsonl": ("otlp", {1: ""}),
    "chat_calls.jsonl": (
        "chat-calls",
        {2: "/request/messages", 3: "", 4: "/request", 6: "/request/messages/1/role"},
    ),
    "langfuse_observations.jsonl": ("langfuse", {2: "/input", 3: "/trace_id", 4: "", 5: "/type"}),
    "langsmith_runs.jsonl": (
        "langsmith",
        {2: "/inputs/messages/0", 3: "", 4: "/inputs/messages/0/0/id/3", 5: "/run_type"},
    ),
    "sharegpt.json": (
        "sharegpt",
        {
            23: "/1/conversations",
            27: "/2/conversations/1/value",
            39: "/3/conversations/0/from",
            52: "/4/conversations/0/value",
        },
    ),
    "sharegpt_truncated.json": ("sharegpt", {11: ""}),
    "table.csv": ("table", {5: "/text", 6: "/speaker", 7: "/ts", 9: "/ts", 10: ""}),
    "table.jsonl": ("table", {2: "/role", 4: "/message_index", 6: "/content", 7: ""}),
}
"""Malformed fixtures: format, and the line (or row) of each bad record with the pointer of its field (README, `bad/`;
sharegpt.json's records 2-5 start on lines 23, 27, 39 and 52)."""


def _expected(folder: str) -> dict[str, dict[str, Any]]:
    found = (json.loads(line) for line in (FORMATS / folder / "expected.jsonl").open(encoding="utf-8"))
    return {document["id"]: document for document in found}


def _message(message: dict[str, Any]) -> dict[str, Any]:
    """A message as the README compares it: tool-call arguments as parsed JSON."""
    found: dict[str, Any] = {k: message[k] for k in ("role", "content", "name", "tool_call_id") if k in message}
    if message.get("tool_calls"):
        found["tool_calls"] = [
            {"id": c.get("id"), "name": c["function"]["name"], "arguments": json.loads(c["function"]["arguments"])}
            for c in message["tool_calls"]
        ]
    return found


def _compared(document: dict[str, Any]) -> dict[str, Any]:
    source = document["metadata"]["source"]
    return {
        "messages": [_message(m) for m in document["messages"]],
        "timestamp": document.get("timestamp"),
        "id_field": source["id_field"],
        "id": source["id"],
    }


def _read(fmt: Any, folder: str, files: Iterable[str]) -> tuple[list[formats.Document], list[LogError]]:
    documents: list[formats.Document] = []
    errors: list[LogError] = []
    for name in files:
        for item in fmt.documents(FORMATS / folder / name, name):
            if isinstance(item, formats.Document):
                documents.append(item)
            else:
                errors.append(item)
    return documents, errors


def _probes(conversations: Iterable[Conversation]) -> list[tuple[str, tuple[tuple[str, str], ...], str]]:
    return sorted(
        (p.id, tuple((m.role, m.text) for m in p.context), p.target)
        for conversation in conversations
        for p in conversation_probes(conversation)
    )


@pytest.mark.parametrize("folder", sorted(VALID))
def test_valid_files_rebuild_the_expected_conversations(folder: str) -> None:
    name, files = VALID[folder]
    documents, errors = _read(registry.get(name), folder, files)
    assert [e.describe() for e in errors if not isinstance(e, formats.Skipped)] == []
    expected = _expected(folder)
    assert sorted(d.data["id"] for d in documents) == sorted(expected)
    for document in documents:
        assert _compared(document.data) == _compared(expected[document.data["id"]]), document.data["id"]
        assert document.location.source == document.data["metadata"]["source"]["file"]


@pytest.mark.parametrize("folder", sorted(VALID))
def test_read_gives_the_probes_of_the_expected_conversations(folder: str) -> None:
    name, files = VALID[folder]
    fmt = registry.get(name)
    found = [c for file in files for c in fmt.read(FORMATS / folder / file, file) if isinstance(c, Conversation)]
    expected = [to_conversation(d, d["metadata"]["source"]["file"], 1) for d in _expected(folder).values()]
    assert all(isinstance(c, Conversation) for c in expected)
    assert _probes(found) == _probes(expected)  # type: ignore[arg-type]
    assert len(_probes(found)) == sum(len(conversation_probes(c)) for c in found)


def test_parquet_holds_the_jsonl_tables_conversations() -> None:
    table = TableFormat()
    parquet, errors = _read(table, "table", ["messages.parquet"])
    jsonl, _ = _read(table, "table", ["messages.jsonl"])
    assert errors == []
    assert [_compared(d.data) for d in parquet] == [_compared(d.data) for d in jsonl]


def test_skipped_records_are_counted_not_dropped() -> None:
    path = FORMATS / "chat-calls" / "litellm_standard_logging.jsonl"
    notices = [e for e in registry.get("chat-calls").read(path, path.name) if isinstance(e, formats.Skipped)]
    counts = {n.reason.split(":")[0]: (n.count, n.line) for n in notices}
    assert counts == {
        "call_type 'aembedding' calls (not chat completions)": (1, 3),
        "failed calls (no answer; they count only towards their conversation's start time)": (1, 4),
        "answers replaced by a later call with the same input (a retry or a regeneration)": (1, 8),
    }
    traces = FORMATS / "langfuse" / "traces_api.jsonl"
    notices = [e for e in registry.get("langfuse").read(traces, traces.name) if isinstance(e, formats.Skipped)]
    unjoined = [n for n in notices if n.reason.startswith("calls that fit no part")]
    assert [n.count for n in unjoined] == [3]  # the three query rewriters
    assert sum(n.count for n in notices if n.reason.startswith("SPAN observations")) == 3


def _fixture_formats() -> list[tuple[Path, str]]:
    cases = [(FORMATS / folder / file, name) for folder, (name, files) in VALID.items() for file in files]
    cases.append((FORMATS / "table" / "messages.parquet", "table"))
    cases += [(FORMATS / "bad" / file, name) for file, (name, _) in BAD.items() if file != "sharegpt_truncated.json"]
    cases += [(path, "openai") for path in sorted((FORMATS.parent / "logs").glob("*.jsonl"))]
    return cases


@pytest.mark.parametrize(("path", "name"), _fixture_formats(), ids=lambda v: v.name if isinstance(v, Path) else v)
def test_detect_names_the_format_of_every_fixture(path: Path, name: str) -> None:
    assert registry.detect(path).name == name


def test_detect_rejects_an_unknown_format_clearly() -> None:
    with pytest.raises(formats.UnknownFormatError) as caught:
        registry.detect(FORMATS / "bad" / "unknown_format.jsonl")
    message = str(caught.value)
    assert isinstance(caught.value, ValueError)
    assert "unknown_format.jsonl" in message
    assert "route" in message
    assert "request_id" in message
    assert all(f.name in message for f in registry.builtin_formats())


def test_unknown_format_names_are_rejected_with_the_known_ones() -> None:
    with pytest.raises(formats.UnknownFormatError, match="known formats: otlp, chat-calls"):
        registry.get("helicone")


def test_gzipped_logs_read_as_the_plain_ones(tmp_path: Path) -> None:
    for folder, file in (("chat-calls", "generic_proxy.jsonl"), ("sharegpt", "fastchat_list.json")):
        source = FORMATS / folder / file
        packed = tmp_path / f"{file}.gz"
        packed.write_bytes(gzip.compress(source.read_bytes()))
        assert registry.detect(packed).name == folder
        plain, _ = _read(registry.get(folder), folder, [file])
        fmt = registry.get(folder)
        assert [d.data for d in fmt.documents(packed, file) if isinstance(d, formats.Document)] == [
            d.data for d in plain
        ]


@pytest.mark.parametrize("file", sorted(BAD))
def test_each_malformed_record_is_named_and_the_rest_loads(file: str) -> None:
    name, bad = BAD[file]
    documents, found = _read(registry.get(name), "bad", [file])
    errors = [e for e in found if not isinstance(e, formats.Skipped)]
    assert {e.line: e.pointer for e in errors} == bad
    assert all(e.source == file and e.reason for e in errors)
    unit = "row" if file.endswith(".csv") else "line"
    assert all(e.unit == unit for e in errors)
    expected = {i: d for i, d in _expected("bad").items() if d["metadata"]["source"]["file"] == file}
    assert sorted(d.data["id"] for d in documents) == sorted(expected)
    for document in documents:
        assert _compared(document.data) == _compared(expected[document.data["id"]])


def test_errors_name_the_record_and_what_is_wrong() -> None:
    by_line = {e.line: e for e in registry.get("langsmith").read(FORMATS / "bad" / "langsmith_runs.jsonl", "runs")}
    assert by_line[4].record == "ff64ddef-4bd4-48a9-8a22-22d1d5b9d739"  # type: ignore[union-attr]
    assert "MysteryMessage" in by_line[4].reason  # type: ignore[union-attr]
    table = [e for e in TableFormat().read(FORMATS / "bad" / "table.csv", "t.csv") if isinstance(e, LogError)]
    tie = next(e for e in table if e.line == 7)
    assert "rows 7, 8" in tie.reason
    assert "CS-BAD-4" in tie.reason
    assert tie.describe().startswith("t.csv:row 7: /ts: ")
    assert "unclosed quote" in next(e for e in table if e.line == 10).reason
    whole = list(registry.get("sharegpt").read(FORMATS / "bad" / "sharegpt_truncated.json", "cut.json"))
    assert len(whole) == 1
    assert isinstance(whole[0], LogError)
    assert "nothing in it was read" in whole[0].reason


@pytest.mark.parametrize("file", ["support_export.csv", "messages.jsonl", "messages.parquet", "../bad/table.csv"])
def test_table_paths_agree(file: str) -> None:
    """read() skips the documents, index() the conversations; both must give what the validated documents give."""
    path = FORMATS / "table" / file
    table = TableFormat()
    validated = list(formats.convert(table.documents(path, path.name)))
    assert list(table.read(path, path.name)) == validated
    log, errors = table.index(path, path.name)
    conversations = [c for c in validated if isinstance(c, Conversation)]
    assert errors == [e for e in validated if isinstance(e, LogError)]
    assert [log.read(p) for p in range(len(log.lines))] == conversations
    assert log.lines == [c.line for c in conversations]
    assert log.ids == [c.id for c in conversations]
    positions, turns = probe_columns(log)
    assert [(log.ids[p], t) for p, t in zip(positions, turns, strict=True)] == [
        (c.id, probe.turn) for c in conversations for probe in conversation_probes(c)
    ]


def test_blank_is_what_str_strip_removes() -> None:
    spaces = [chr(code) for code in range(0x3001) if chr(code).isspace()]
    others = ["a", "\x00", "\u200b", "\ufeff", "é", "\x1b"]
    found = pl.Series(spaces + others).str.contains(f"[^{BLANK}]").to_list()
    assert found == [False] * len(spaces) + [True] * len(others)


def test_table_columns_and_roles_can_be_mapped(tmp_path: Path) -> None:
    path = tmp_path / "export.csv"
    path.write_text("ticket,said_by,words,at\nT-1,Kunde,hallo,2\nT-1,Bot,wie kann ich helfen?,3\nT-1,Kunde,danke,4\n")
    table = TableFormat(
        columns={"conversation": "ticket", "role": "said_by", "content": "words", "order": "at"},
        roles={"Kunde": "user"},
    )
    [conversation] = list(table.read(path, "export.csv"))
    assert isinstance(conversation, Conversation)
    assert [(m.role, m.text) for m in conversation.messages] == [
        ("user", "hallo"),
        ("assistant", "wie kann ich helfen?"),
        ("user", "danke"),
    ]
    with pytest.raises(ValueError, match="speaker"):
        TableFormat(columns={"speaker": "x"})
    with pytest.raises(ValueError, match="customer"):
        TableFormat(roles={"Kunde": "customer"})
    wrong = TableFormat(columns={"conversation": "ticket", "role": "said_by", "content": "text"})
    [missing] = list(wrong.read(path, "export.csv"))
    assert isinstance(missing, LogError)
    assert missing.reason.startswith("no content column: expected 'text'")


def _call(key: str, line: int, start: float, sent: Sequence[tuple[str, str]], answer: str) -> rebuild.Call:
    messages = tuple({"role": role, "content": text} for role, text in sent)
    return rebuild.Call(key, "session_id", line, None, start, messages, {"role": "assistant", "content": answer})


def test_a_trimmed_history_joins_only_on_enough_overlap() -> None:
    """Two shared messages put the trimmed turns back; one is too weak a sign, and the earlier call is reported."""
    first = _call("s", 1, 1.0, [("user", "hi"), ("assistant", "hello"), ("user", "thanks")], "sure")
    trimmed = _call("s", 2, 2.0, [("user", "thanks"), ("assistant", "sure"), ("user", "bye")], "see you")
    found = list(rebuild.rebuild([first, trimmed], "f", "chat-calls"))
    assert isinstance(found[0], formats.Document)
    assert len(found) == 1
    assert [m["content"] for m in found[0].data["messages"]] == ["hi", "hello", "thanks", "sure", "bye", "see you"]
    alone = _call("s", 3, 3.0, [("assistant", "sure"), ("user", "bye")], "see you")
    found = list(rebuild.rebuild([first, alone], "f", "chat-calls"))
    assert isinstance(found[0], formats.Document)
    assert [m["content"] for m in found[0].data["messages"]] == ["sure", "bye", "see you"]
    assert isinstance(found[1], formats.Skipped)
    assert found[1].line == 1


def test_a_regenerated_answer_keeps_the_call_that_started_last() -> None:
    """Same input twice (a retry, a regeneration): the later start wins, even if it ended first."""
    sent = [("system", "be brief"), ("user", "hi")]
    late = _call("s", 1, 2.0, sent, "second answer")
    early = _call("s", 2, 1.0, sent, "first answer")
    found = list(rebuild.rebuild([late, early], "f", "chat-calls"))
    assert isinstance(found[0], formats.Document)
    assert found[0].data["messages"][-1]["content"] == "second answer"
    assert found[0].data["timestamp"] == "1970-01-01T00:00:01Z"
    assert isinstance(found[1], formats.Skipped)
    assert found[1].line == 2


def test_an_auxiliary_call_at_the_end_of_a_turn_is_not_the_conversation() -> None:
    """Within one trace (one turn) the longest call is the conversation's, even when a short one (a title or summary
    generator) starts after it."""
    turn = [("user", "hi"), ("assistant", "hello"), ("user", "my order is late")]
    answer = rebuild.Call(
        "s",
        "session_id",
        1,
        None,
        1.0,
        tuple({"role": r, "content": t} for r, t in turn),
        {"role": "assistant", "content": "which order?"},
        trace="t1",
    )
    title = rebuild.Call(
        "s",
        "session_id",
        2,
        None,
        2.0,
        ({"role": "user", "content": "title this chat"},),
        {"role": "assistant", "content": "Late order"},
        trace="t1",
    )
    found = list(rebuild.rebuild([answer, title], "f", "langfuse"))
    assert isinstance(found[0], formats.Document)
    assert [m["content"] for m in found[0].data["messages"]] == [t for _, t in turn] + ["which order?"]
    assert isinstance(found[1], formats.Skipped)
    assert found[1].line == 2


TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=12)
TURNS = st.lists(
    st.tuples(st.sampled_from(["system", "user", "assistant"]), TEXT).filter(lambda t: t[0] == "assistant" or t[1]),
    min_size=1,
    max_size=8,
)


def _native(turns: Sequence[tuple[str, str]], source: str) -> Conversation:
    found = to_conversation({"id": "c-1", "messages": [{"role": r, "content": t} for r, t in turns]}, source, 1)
    assert isinstance(found, Conversation)
    return found


def _rows(turns: Sequence[tuple[str, str]], seed: int) -> list[dict[str, Any]]:
    rows = [{"conversation_id": "c-1", "message_index": i, "role": r, "content": t} for i, (r, t) in enumerate(turns)]
    random.Random(seed).shuffle(rows)
    return rows


@settings(max_examples=60, deadline=None)
@given(turns=TURNS, seed=st.integers(0, 2**16))
def test_a_conversation_written_as_a_table_reads_back_to_the_same_probes(
    turns: list[tuple[str, str]], seed: int
) -> None:
    expected = _probes([_native(turns, "t")])
    with tempfile.TemporaryDirectory() as scratch:
        rows = _rows(turns, seed)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
        (Path(scratch) / "t.csv").write_text(buffer.getvalue(), encoding="utf-8")
        (Path(scratch) / "t.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
        for file in ("t.csv", "t.jsonl"):
            found = list(TableFormat().read(Path(scratch) / file, "t"))
            assert all(isinstance(c, Conversation) for c in found), found
            assert _probes(found) == expected  # type: ignore[arg-type]
            log, errors = TableFormat().index(Path(scratch) / file, "t")
            assert errors == []
            assert len(probe_columns(log)[0]) == len(expected)


@settings(max_examples=60, deadline=None)
@given(turns=TURNS, seed=st.integers(0, 2**16))
def test_a_conversation_logged_as_chat_calls_reads_back_to_the_same_probes(
    turns: list[tuple[str, str]], seed: int
) -> None:
    """One call per assistant turn, carrying the history before it; what follows the last answer is never sent."""
    answered = max((i for i, (role, _) in enumerate(turns) if role == "assistant"), default=-1)
    expected = _probes([_native(turns[: answered + 1], "calls")]) if answered >= 0 else []
    messages = [{"role": role, "content": text} for role, text in turns]
    lines = [
        {
            "ts": f"2026-06-01T10:{i:02d}:00Z",
            "metadata": {"session_id": "c-1"},
            "request": {"messages": messages[:i]},
            "response": {"choices": [{"index": 0, "message": messages[i]}]},
        }
        for i, (role, _) in enumerate(turns)
        if role == "assistant"
    ]
    random.Random(seed).shuffle(lines)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "calls.jsonl"
        path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
        found = list(ChatCallsFormat().read(path, "calls"))
    assert [e for e in found if isinstance(e, LogError) and not isinstance(e, formats.Skipped)] == []
    assert _probes(c for c in found if isinstance(c, Conversation)) == expected
