"""The plugin reads every log format: `--utg-format auto` recognises each shipped format's files, their probes become
items, an unknown file is reported and the rest still tested."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import GATES, LOW_GATES, read_results
from servers import VariedModel, serve

from utg_pytest.ingest.schema import to_conversation
from utg_pytest.model import Conversation
from utg_pytest.probes import conversation_probes

FORMATS = ("otlp", "chat-calls", "langfuse", "langsmith", "sharegpt")


def expected_probes(folder: Path) -> int:
    count = 0
    for number, line in enumerate((folder / "expected.jsonl").read_text(encoding="utf-8").splitlines(), start=1):
        conversation = to_conversation(json.loads(line), "expected.jsonl", number)
        assert isinstance(conversation, Conversation)
        count += len(conversation_probes(conversation))
    return count


@pytest.mark.parametrize("name", FORMATS)
def test_auto_recognises_each_format_and_collects_its_probes(
    pytester: pytest.Pytester, fixtures_dir: Path, name: str
) -> None:
    folder = fixtures_dir / "formats" / name
    shutil.copytree(folder, pytester.path / name, ignore=shutil.ignore_patterns("expected.jsonl"))
    result = pytester.runpytest("--utg-logs", name, "--collect-only", "-q", "-W", "error::UserWarning")
    assert result.ret == pytest.ExitCode.OK, result.stdout.str()[-2000:]
    probes = [line for line in result.stdout.lines if "::turn" in line]
    assert len(probes) == expected_probes(folder)


def test_a_table_is_read_with_its_columns_and_roles_and_runs_end_to_end(
    pytester: pytest.Pytester, fixtures_dir: Path
) -> None:
    shutil.copy(fixtures_dir / "formats" / "table" / "support_export.csv", pytester.path / "export.csv")
    with serve(VariedModel) as url:
        result = pytester.runpytest(
            "--utg-logs", "export.csv", "--utg-format", "table", "--utg-base-url", url, "--utg-model", "m",
            "--utg-prompt", "roleswap", "--utg-results", "out.jsonl", *LOW_GATES,
        )  # fmt: skip
    records = read_results(pytester.path / "out.jsonl")
    assert records
    assert all(r["prediction"] for r in records)
    result.assert_outcomes(passed=len(records) + GATES)


def test_a_file_no_format_recognises_is_reported_and_the_others_are_tested(
    pytester: pytest.Pytester, fixtures_dir: Path
) -> None:
    (pytester.path / "logs").mkdir()
    shutil.copy(fixtures_dir / "formats" / "sharegpt" / "variants.jsonl", pytester.path / "logs" / "chats.jsonl")
    (pytester.path / "logs" / "notes.json").write_text('{"title": "not a log"}\n', encoding="utf-8")
    result = pytester.runpytest("--utg-logs", "logs", "--collect-only", "-q")
    result.stdout.fnmatch_lines(
        ["*logs/notes.json:1: (root): *no known log format recognises this file*known formats*"]
    )
    assert any("logs/chats.jsonl::" in line for line in result.stdout.lines)


def test_bad_columns_are_a_usage_error(pytester: pytest.Pytester, fixtures_dir: Path) -> None:
    shutil.copy(fixtures_dir / "formats" / "table" / "support_export.csv", pytester.path / "export.csv")
    result = pytester.runpytest("--utg-logs", "export.csv", "--utg-columns", "speaker=who")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--utg-columns / --utg-roles: unknown table columns*"])
