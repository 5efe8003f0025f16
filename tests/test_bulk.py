"""The bulk path (polars) must give exactly what the line-by-line parser gives, on any file."""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from tempfile import TemporaryDirectory

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from utg_pytest import ingest
from utg_pytest.ingest import bulk
from utg_pytest.probes import probe_columns

EXACT = 2**62


def both(path: Path) -> tuple[ingest.LoadedLogs, ingest.LoadedLogs]:
    return ingest.load([path], bulk_from=EXACT), ingest.load([path], bulk_from=0)


def assert_same(path: Path) -> ingest.LoadedLogs:
    exact, fast = both(path)
    assert fast.errors == exact.errors
    for one, other in zip(exact.logs, fast.logs, strict=True):
        assert (one.source, one.lines, one.ids) == (other.source, other.lines, other.ids)
        assert probe_columns(one) == probe_columns(other)
        assert other.outline is not None or not other.lines
    assert list(fast.conversations()) == list(exact.conversations())
    return fast


def plain(line: str) -> bool:
    return re.search(bulk.PLAIN, line) is not None


TRICKY = (
    ' \t"\\:{}[],\u00a0\u2003\u3000\u0085\x1c\x7f\u00e9\u4e2d\U0001f600'
    + "roleusertoolassistantsystemcontentidutgmessages0123456789-.eE"
)
texts = st.text(alphabet=st.sampled_from(sorted(set(TRICKY))), max_size=8)
keys = st.sampled_from(["role", "content", "name", "tool_call_id", "tool_calls", "id", "utg", "x", 'r"ole', "e\\"])
scalars = st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False, width=16) | texts
values = st.recursive(
    scalars, lambda inner: st.lists(inner, max_size=2) | st.dictionaries(keys, inner, max_size=2), max_leaves=6
)


def mostly(valid: st.SearchStrategy[object]) -> st.SearchStrategy[object]:
    return st.one_of(valid, valid, valid, values)


def shuffled(required: dict[str, st.SearchStrategy[object]], optional: dict[str, st.SearchStrategy[object]]):  # type: ignore[no-untyped-def]
    @st.composite
    def build(draw):  # type: ignore[no-untyped-def]
        document = draw(st.fixed_dictionaries(required, optional=optional))
        order = draw(st.permutations(list(document)))
        return {key: document[key] for key in order}

    return build()


messages = mostly(
    shuffled(
        {
            "role": mostly(st.sampled_from(["system", "user", "assistant", "tool", "moderator"])),
            "content": mostly(texts | st.none() | st.sampled_from(["ok", "  ", "\u2003", "\\u0020", "5"])),
        },
        {"name": mostly(texts), "tool_call_id": mostly(texts), "tool_calls": values, "x": values},
    )
)
documents = mostly(
    shuffled(
        {"id": mostly(texts | st.sampled_from(["a", "b"])), "messages": mostly(st.lists(messages, max_size=5))},
        {
            "metadata": mostly(st.dictionaries(keys, values, max_size=3)),
            "timestamp": mostly(texts),
            "role": values,
            "other": values,
        },
    )
)


words = st.text(alphabet=st.sampled_from(sorted(set(TRICKY))), min_size=1, max_size=6) | st.sampled_from(["ok", "a b"])
plain_messages = st.lists(
    shuffled(
        {
            "role": st.sampled_from(["system", "user", "assistant", "tool"]),
            "content": words | words | st.none() | st.sampled_from(["", " ", "\n\t", "\u3000\u00a0", "\x1c"]),
        },
        {
            "name": words,
            "created": scalars,
            "x": st.lists(scalars, max_size=2),
            "id": words,
            "tool_calls": st.lists(
                st.fixed_dictionaries({"id": words, "function": st.dictionaries(keys, scalars, max_size=2)}),
                max_size=2,
            ),
        },
    ),
    max_size=6,
)
plainish_documents = shuffled(
    {"id": words, "messages": plain_messages},
    {
        "metadata": st.dictionaries(keys, scalars | st.lists(scalars, max_size=2), max_size=2),
        "timestamp": words,
    },
)
MUTATIONS = '"\\:,{}[] 5-nutl\u00a0\u2003'


@st.composite
def plainish(draw):  # type: ignore[no-untyped-def]
    """A document of the plain shape, often left so, otherwise with one character inserted or deleted."""
    text = json.dumps(draw(plainish_documents), ensure_ascii=draw(st.booleans()))
    edit = draw(st.sampled_from(["none", "none", "insert", "delete"]))
    where = draw(st.integers(0, len(text) - 1))
    if edit == "insert":
        return text[:where] + draw(st.sampled_from(MUTATIONS)) + text[where:]
    if edit == "delete":
        return text[:where] + text[where + 1 :]
    return text


@st.composite
def lines(draw):  # type: ignore[no-untyped-def]
    if draw(st.booleans()):
        return draw(plainish())
    document = draw(documents)
    style = draw(st.sampled_from(["compact", "spaced", "ascii", "junk", "blank"]))
    if style == "junk":
        return draw(
            st.sampled_from(["{broken", "x\ry", "[1, 2]", '"text"', "{}", '{"id": "a", "messages": [], "id": 5}'])
        )
    if style == "blank":
        return draw(st.sampled_from(["", "   ", "\t"]))
    separators = (",", ":") if style == "compact" else (", ", ": ")
    return json.dumps(document, ensure_ascii=style == "ascii", separators=separators)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(lines(), min_size=1, max_size=12), st.sampled_from(["\n", "\r\n"]), st.booleans())
def test_the_bulk_path_agrees_with_the_exact_parser(content: list[str], newline: str, trailing: bool) -> None:
    with TemporaryDirectory() as scratch:
        path = Path(scratch) / "log.jsonl"
        path.write_bytes((newline.join(content) + (newline if trailing else "")).encode("utf-8", "surrogatepass"))
        assert_same(path)


@settings(max_examples=500, deadline=None)
@given(documents)
def test_a_plain_line_is_one_the_exact_parser_accepts(document: object) -> None:
    from utg_pytest.ingest.jsonl import parse_line
    from utg_pytest.model import Conversation

    line = json.dumps(document)
    if plain(line):
        assert isinstance(parse_line(line, "x", 1), Conversation)


VALID = {"id": "a", "messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yes?"}]}


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (json.dumps(VALID), True),
        (
            json.dumps({**VALID, "metadata": {"domain": "support", "n": 3, "tags": ["a", 1.5], "who": {"x": None}}}),
            True,
        ),
        (json.dumps({**VALID, "timestamp": "2026-01-01"}), True),
        (json.dumps({"messages": VALID["messages"], "id": "a"}), False),
        ('{"id": "a", "messages": [], "id": 5}', False),
        ('{"id": "a", "messages": [{"role": "user", "content": "x", "role": "tool"}]}', False),
        (
            '{"id": "a", "messages": [{"created": 17, "content": "x", "refusal": null, "role": "user", "name": "b"}]}',
            True,
        ),
        ('{"id": "a", "messages": [{"role": "user", "content": "x", "annotations": [], "audio": {"id": 1}}]}', True),
        ('{"id": "a", "messages": [{"role": "user", "content": "x", "id": "m1"}]}', True),
        ('{"id": "a", "messages": [{"role": "user", "content": "x", "tool_calls": []}]}', True),
        (
            '{"id": "a", "messages": [{"role": "assistant", "content": null, "tool_calls": [{"id": "c1", '
            '"type": "function", "function": {"name": "f", "arguments": "{}"}}]}, '
            '{"role": "tool", "tool_call_id": "c1", "content": ""}]}',
            True,
        ),
        ('{"id": "a", "messages": [{"role": "user", "content": "x", "tool_calls": "no"}]}', False),
        ('{"id": "a", "messages": [{"role": "user", "content": "x", "tool_calls": [{"f": {"g": {"h": 1}}}]}]}', False),
        ('{"id": "a", "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]}', False),
        ('{"id": "a", "messages": [], "metadata": {"content": "x"}}', False),
        ('{"id": "a", "messages": [{"role": "user", "content": "x", "extra": {"role": "tool"}}]}', False),
        ('{"id": "a", "messages": [{"role": "user", "content": "\\u2003"}]}', True),
        ('{"id": "a", "messages": [{"role": "user", "content": null}]}', True),
        ('{"id": "a", "messages": [{"role": "user"}]}', False),
        ('{"id": "a", "messages": [{"role": "user", "content": "\\u4e2d"}]}', True),
        ('{"id": "a", "messages": [{"role": "user", "content": 5}]}', False),
        ('{"id": "a", "messages": [{"role": "user", "content": "x\\q"}]}', False),
        ('{"id": "a", "messages": [{"role": "user", "content": "tab\there"}]}', False),
        ('{"id": "", "messages": []}', False),
        ('{"id": "a\\"b", "messages": []}', False),
        ('{"id": "a", "messages": [], "metadata": {"utg": {"thresholds": {}}}}', False),
        ('{"id": "a", "messages": [], "metadata": {"role": "admin"}}', False),
        ('{"id": "a", "messages": [], "metadata": "x"}', False),
        ('{"id": "a", "messages": [], "extra": {"deeper": {"x": 1}}}', False),
        ('{"id": "a", "messages": [{"role": "user", "content": "say \\"role\\": \\"user\\""}]}', True),
    ],
)
def test_what_is_plain(line: str, expected: bool) -> None:
    assert plain(line) is expected


def test_a_blank_string_is_one_python_strips_to_nothing() -> None:
    blank = re.compile(bulk.BLANK)
    for point in range(0x110000):
        char = chr(point)
        escaped = json.dumps(char)
        forms = [escaped, re.sub(r"\\u([0-9a-f]{4})", lambda m: "\\u" + m.group(1).upper(), escaped)]
        if not 0xD800 <= point <= 0xDFFF:
            forms.append(json.dumps(char, ensure_ascii=False))
        for form in forms:
            assert (blank.fullmatch(form) is not None) is char.isspace(), (hex(point), form)
    assert blank.fullmatch('""')
    assert blank.fullmatch('" \\n\\u3000\u00a0"')
    assert not blank.fullmatch('" \\n x"')


def test_a_key_except_words_matches_every_other_key() -> None:
    pattern = re.compile(bulk.key_except(["role", "utg"]))
    for key in ["", "r", "ro", "rol", "roles", "rule", "u", "ut", "utgx", "xrole", "id"]:
        assert pattern.fullmatch(json.dumps(key)), key
    for key in ["role", "utg", "a\\b"]:
        assert not pattern.fullmatch(json.dumps(key)), key


@pytest.mark.parametrize(
    "extra",
    [b"", b"\x1f", b"\xff\xfe", b"\x00"],
    ids=["csv reader", "separator byte", "malformed utf-8", "nul byte"],
)
def test_both_ways_of_splitting_lines_keep_line_numbers(tmp_path: Path, extra: bytes) -> None:
    good = json.dumps(VALID).encode()
    path = tmp_path / "log.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + good + b"\n\n" + good.replace(b'"a"', b'"b"') + b"\n{" + extra + b"}\n" + good)
    loaded = assert_same(path)
    assert [e.line for e in loaded.errors] == [4, 5]


def test_gzip_and_duplicates_across_plain_and_exact_lines(tmp_path: Path) -> None:
    odd = {**VALID, "messages": [*VALID["messages"], {"role": "user", "content": [{"type": "text", "text": "x"}]}]}
    rows = [odd, VALID, {**VALID, "id": "b"}, {**odd, "id": "b"}, {**odd, "id": "c"}]
    path = tmp_path / "log.jsonl.gz"
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    loaded = assert_same(path)
    assert [(e.line, e.pointer) for e in loaded.errors] == [(2, "/id"), (4, "/id")]
    log = loaded.logs[0]
    assert [log.lines[position] for position in probe_columns(log)[0]] == [1, 5]


def test_most_shipped_fixture_lines_are_plain(fixtures_dir: Path) -> None:
    found = [plain(line) for path in (fixtures_dir / "logs").glob("*.jsonl") for line in path.read_text().splitlines()]
    assert sum(found) / len(found) > 0.9
    for path in (fixtures_dir / "logs").glob("*.jsonl"):
        assert_same(path)
    assert_same(fixtures_dir / "bad" / "mixed.jsonl")


def test_tool_traffic_and_blank_turns_on_plain_lines(tmp_path: Path) -> None:
    call = {"id": "c1", "type": "function", "function": {"name": "order", "arguments": '{"n": 1}'}}
    rows = [
        [
            {"role": "user", "content": "where is my order"},
            {"role": "assistant", "content": None, "tool_calls": [call]},
            {"role": "tool", "tool_call_id": "c1", "name": "order", "content": '{"status": "late"}'},
            {"role": "assistant", "content": "It is late, sorry."},
            {"role": "user", "content": "how late"},
        ],
        [
            {"role": "assistant", "content": "Hi!"},
            {"role": "user", "content": " \u3000"},
            {"role": "assistant", "content": "\n"},
            {"role": "user", "content": "hello?"},
            {"role": "system", "content": ""},
            {"role": "user", "content": "anyone"},
        ],
    ]
    path = tmp_path / "log.jsonl"
    path.write_text("".join(json.dumps({"id": f"c{i}", "messages": m}) + "\n" for i, m in enumerate(rows)))
    assert all(plain(line) for line in path.read_text().splitlines())
    loaded = assert_same(path)
    assert probe_columns(loaded.logs[0])[1] == [2]
