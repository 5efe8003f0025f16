"""Plugin behaviour that needs no model: inertness, options, usage errors, node ids."""

from __future__ import annotations

from pathlib import Path

import pytest

HEAVY = ("torch", "llama_cpp", "openai", "polars", "sentence_transformers", "jsonschema", "rapidfuzz")


def test_plugin_is_inert_and_light_without_logs(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        f"""
        import sys

        def test_nothing_heavy_was_imported():
            loaded = [name for name in {HEAVY!r} if name in sys.modules]
            assert loaded == []
        """
    )
    result = pytester.runpytest_subprocess("-p", "utg", "-v")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*plugins:*utg-pytest*"])
    result.stdout.no_fnmatch_line("*utg summary*")


def test_help_lists_every_option_and_ini_key(pytester: pytest.Pytester) -> None:
    from utg_pytest.settings import OPTIONS

    result = pytester.runpytest("--help")
    for option in OPTIONS:
        result.stdout.fnmatch_lines([f"*{option.cli}*"])
        result.stdout.fnmatch_lines([f"*{option.ini} (*"])


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--utg-temperature", "hot"], "*--utg-temperature: 'hot' is not a number*"),
        (["--utg-prompt", "cot"], "*--utg-prompt: 'cot' is not one of roleswap, instruct, template*"),
        (
            ["--utg-logs", "nowhere/*.jsonl"],
            "*--utg-logs *nowhere/*.jsonl: no log file (.jsonl, .jsonl.gz, .json, *) found there*",
        ),
    ],
)
def test_bad_command_line_is_a_usage_error(pytester: pytest.Pytester, args: list[str], message: str) -> None:
    result = pytester.runpytest(*args)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([message])


def test_bad_ini_value_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nutg_max_probes = -3\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*ini option utg_max_probes = '-3': -3 is below the minimum of 1*"])


@pytest.mark.parametrize("gguf", [False, True], ids=["default model", "a model given by absolute path"])
def test_node_ids_are_stable_and_readable(
    pytester: pytest.Pytester, small_log: Path, gguf_path: Path, gguf: bool
) -> None:
    """A model path elsewhere on disk moves pytest's rootdir; the probe ids must not move with it."""
    model = ("--utg-gguf", str(gguf_path)) if gguf else ()
    result = pytester.runpytest("--utg-logs", str(small_log), "--collect-only", "-q", "--utg-probe", "last", *model)
    result.stdout.fnmatch_lines(
        [
            "logs.jsonl::support-001::turn4",
            "logs.jsonl::shopping-002::turn3",
            "utg::gate::semantic_similarity",
            "utg::gate::lexical_similarity",
            "utg::gate::skill",
            "utg::gate::echo_rate",
            "utg::gate::followup_rate",
            "7 tests collected*",
        ]
    )
    assert result.ret == pytest.ExitCode.OK


def test_utg_marker_selects_only_generated_items(pytester: pytest.Pytester, small_log: Path) -> None:
    pytester.makepyfile("def test_unit(): pass")
    result = pytester.runpytest("--utg-logs", str(small_log), "--collect-only", "-q", "-m", "not utg")
    result.stdout.fnmatch_lines(["test_utg_marker*::test_unit", "1/11 tests collected (10 deselected)*"])


def test_readme_option_table_lists_every_option_with_its_default() -> None:
    from conftest import ROOT

    from utg_pytest.settings import OPTIONS

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for option in OPTIONS:
        default = "off" if option.flag else "" if option.default in (None, ()) else f"`{option.default}`"
        assert f"| `{option.cli}` | `{option.ini}` | {default} |" in readme, option.cli


def test_a_large_log_takes_the_bulk_path_and_still_names_its_bad_line(pytester: pytest.Pytester) -> None:
    import json

    from utg_pytest.ingest import BULK_FROM_BYTES

    filler = "how do I reset the router after the update " * 8
    line = json.dumps(
        {"id": "{}", "messages": [{"role": "user", "content": filler}, {"role": "assistant", "content": "which one?"}]}
    )
    rows, number = [], 0
    while sum(map(len, rows)) < BULK_FROM_BYTES:
        number += 1
        probe = {"role": "user", "content": f"the white one, number {number}"}
        rows.append(line.replace("{}", f"c{number}", 1)[:-2] + ", " + json.dumps(probe) + "]}\n")
    rows[40] = '{"id": "c41", "messages": [{"role": "moderator", "content": "x"}]}\n'
    log = pytester.path / "big.jsonl"
    log.write_text("".join(rows), encoding="utf-8")
    result = pytester.runpytest("--utg-logs", str(log), "--collect-only", "-q", "--utg-max-probes", "3")
    result.stdout.fnmatch_lines(["*big.jsonl:41: /messages/0/role: 'moderator' is not one of*"])
    collected = [text for text in result.outlines if text.startswith("big.jsonl::c")]
    assert len(collected) == 3
    assert all(text.endswith("::turn2") for text in collected)


def test_an_output_that_cannot_be_written_is_a_usage_error_before_any_generation(
    pytester: pytest.Pytester, small_log: Path
) -> None:
    (pytester.path / "notes.txt").write_text("a file, not a folder\n")
    (pytester.path / "reports").mkdir()
    result = pytester.runpytest("--utg-logs", "logs.jsonl", "--utg-results", "notes.txt/run.jsonl", "--utg-html",
                                "reports", "--utg-save-run", "notes.txt")  # fmt: skip
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*cannot write the run's outputs: --utg-results */notes.txt/run.jsonl: */notes.txt "
                                 "is a file, not a directory; --utg-html */reports: is a directory; --utg-save-run "
                                 "*/notes.txt: is a file, not a directory"])  # fmt: skip
    assert "generating predictions" not in result.stdout.str()
