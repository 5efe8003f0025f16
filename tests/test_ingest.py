from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from utg_pytest import ingest
from utg_pytest.ingest.schema import load_schema, plainly_valid
from utg_pytest.model import Conversation, LogError

BAD_LINES = {3: "", 4: "", 6: "/messages/2/role", 7: "/messages/1/content", 9: "/messages", 10: ""}


def test_mixed_file_keeps_valid_lines_and_names_each_bad_one(fixtures_dir: Path) -> None:
    path = fixtures_dir / "bad" / "mixed.jsonl"
    loaded = ingest.load([path], {path: "mixed.jsonl"})
    assert [c.id for c in loaded.conversations()] == [f"bad-ok-{i}" for i in range(1, 7)]
    assert [c.line for c in loaded.conversations()] == [1, 2, 5, 8, 11, 12]
    assert {e.line: e.pointer for e in loaded.errors} == BAD_LINES
    assert all(e.source == "mixed.jsonl" and e.reason for e in loaded.errors)
    by_line = {e.line: e for e in loaded.errors}
    assert "not valid JSON" in by_line[3].reason
    assert "'id' is a required property" in by_line[4].reason
    assert "moderator" in by_line[6].reason
    assert by_line[9].describe().startswith("mixed.jsonl:9: /messages: ")


def test_shipped_logs_are_all_valid(fixtures_dir: Path) -> None:
    files = ingest.resolve_paths([str(fixtures_dir / "logs")])
    loaded = ingest.load(files)
    assert loaded.errors == ()
    conversations = list(loaded.conversations())
    assert len(conversations) >= 60
    assert len({c.id for c in conversations}) == len(conversations)


def write(path: Path, *documents: object) -> Path:
    path.write_text("".join(json.dumps(d) + "\n" for d in documents), encoding="utf-8")
    return path


def conversation(cid: str) -> dict[str, object]:
    return {"id": cid, "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]}


def test_blank_lines_count_towards_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text("\n" + json.dumps(conversation("x")) + "\n\n{broken\n", encoding="utf-8")
    loaded = ingest.load([path])
    assert [c.line for c in loaded.conversations()] == [2]
    assert [e.line for e in loaded.errors] == [4]


def test_duplicate_ids_in_one_file_are_errors(tmp_path: Path) -> None:
    path = write(tmp_path / "a.jsonl", conversation("x"), conversation("x"))
    loaded = ingest.load([path])
    assert len(list(loaded.conversations())) == 1
    assert loaded.errors[0].line == 2
    assert loaded.errors[0].pointer == "/id"
    assert "duplicate" in loaded.errors[0].reason


def test_content_parts_are_flattened_and_non_text_parts_marked(tmp_path: Path) -> None:
    doc = conversation("x")
    doc["messages"] = [
        {
            "role": "user",
            "content": [{"type": "text", "text": "look"}, {"type": "image_url", "image_url": {"url": "u"}}],
        }
    ]
    loaded = ingest.load([write(tmp_path / "a.jsonl", doc)])
    assert isinstance(next(loaded.conversations()), Conversation)
    assert next(loaded.conversations()).messages[0].text == "look\n[image_url]"


def test_invalid_utf8_is_an_error_not_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_bytes(b'{"id": "\xff"}\n' + json.dumps(conversation("y")).encode() + b"\n")
    loaded = ingest.load([path])
    assert [c.id for c in loaded.conversations()] == ["y"]
    assert isinstance(loaded.errors[0], LogError)
    assert loaded.errors[0].line == 1


def test_paths_directories_globs_and_gzip(tmp_path: Path) -> None:
    write(tmp_path / "a.jsonl", conversation("a"))
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.jsonl.gz").write_bytes(gzip.compress(json.dumps(conversation("b")).encode() + b"\n"))
    (tmp_path / "notes.txt").write_text("ignored")
    from_dir = ingest.resolve_paths([str(tmp_path)])
    assert [p.name for p in from_dir] == ["a.jsonl", "b.jsonl.gz"]
    from_glob = ingest.resolve_paths([str(tmp_path / "**" / "*.gz"), str(tmp_path / "a.jsonl"), str(tmp_path)])
    assert [p.name for p in from_glob] == ["b.jsonl.gz", "a.jsonl"]
    assert [c.id for c in ingest.load(from_dir).conversations()] == ["a", "b"]


def test_a_spec_matching_nothing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ingest.LogPathError, match=r"no log file \(\.jsonl, \.jsonl\.gz\) found there"):
        ingest.resolve_paths([str(tmp_path / "missing*.jsonl")])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


def mostly(valid: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    """Valid three times in four, anything JSON otherwise: near-valid documents probe the shortcut's edges."""
    return st.one_of(valid, valid, valid, json_values)


parts = mostly(
    st.fixed_dictionaries(
        {"type": mostly(st.sampled_from(["text", "image_url"]))}, optional={"text": mostly(st.text(max_size=5))}
    )
)
messages = mostly(
    st.fixed_dictionaries(
        {
            "role": mostly(st.sampled_from(["system", "user", "assistant", "tool", "moderator"])),
            "content": mostly(st.text(max_size=5) | st.none() | st.lists(parts, max_size=3)),
        },
        optional={
            "name": mostly(st.text(max_size=3)),
            "tool_calls": mostly(st.lists(st.dictionaries(st.text(max_size=3), json_values, max_size=2), max_size=2)),
            "tool_call_id": mostly(st.text(max_size=3)),
        },
    )
)
documents = mostly(
    st.fixed_dictionaries(
        {"id": mostly(st.text(max_size=4)), "messages": mostly(st.lists(messages, max_size=4))},
        optional={
            "metadata": mostly(st.dictionaries(st.sampled_from(["domain", "utg"]), json_values, max_size=2)),
            "timestamp": mostly(st.text(max_size=4)),
        },
    )
)


@settings(max_examples=1500)
@given(documents)
def test_the_validation_shortcut_never_accepts_what_the_schema_rejects(document: object) -> None:
    from jsonschema import Draft202012Validator

    if plainly_valid(document):
        assert Draft202012Validator(load_schema("conversation")).is_valid(document)


def test_the_shipped_logs_take_the_shortcut(fixtures_dir: Path) -> None:
    for path in (fixtures_dir / "logs").glob("*.jsonl"):
        for line in path.read_text(encoding="utf-8").splitlines():
            assert plainly_valid(json.loads(line))
