"""A run is a value: the same probes run serially, across pytest-xdist workers, and as CI shards joined by `utg merge`
give the same per-probe results and verdicts, with one model call per probe; a stored record re-renders as the live
summary."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import LOW_GATES, read_results
from servers import VariedModel, serve

from utg_pytest import cli
from utg_pytest import record as record_module

pytestmark = pytest.mark.slow


def same(left: object, right: object, path: str = "") -> None:
    """Equal, except that numbers may differ by float rounding: the encoder's results move in the seventh digit with
    the composition of its batches, which differs between one process and two, and storing vectors in half precision
    can turn that into a step of the last half-precision digit, up to about 1e-4 on a cosine."""
    if isinstance(left, dict) and isinstance(right, dict):
        assert left.keys() == right.keys(), path
        for key in left:
            same(left[key], right[key], f"{path}/{key}")
    elif isinstance(left, list) and isinstance(right, list):
        assert len(left) == len(right), path
        for index, (a, b) in enumerate(zip(left, right, strict=True)):
            same(a, b, f"{path}/{index}")
    elif isinstance(left, float) and isinstance(right, float):
        assert left == pytest.approx(right, abs=1e-4), path
    else:
        assert left == right, path


def summary_lines(stdout: str) -> list[str]:
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if "utg summary" in line) + 1
    end = next(i for i in range(start, len(lines)) if lines[i].startswith("="))
    return lines[start:end]


def test_serial_xdist_and_merged_shards_agree_probe_for_probe(
    pytester: pytest.Pytester, logs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Gates set so that one passes and one fails: the verdicts must agree, failures included.
    gates = (*LOW_GATES[:2], "--utg-min-lexical", "0.9", *LOW_GATES[4:])
    common = ("--utg-logs", "logs", "--utg-prompt", "roleswap", "--utg-model", "scripted", "--utg-cache-mode", "off")
    outcomes = {}
    with serve(VariedModel) as url:
        args = (*common, "--utg-base-url", url, *gates, "-p", "no:cacheprovider")
        serial = pytester.runpytest(*args, "--utg-results", "serial.jsonl")
        outcomes["serial"] = serial.parseoutcomes()
        expected = len(read_results(pytester.path / "serial.jsonl"))
        assert expected > 20
        assert len(VariedModel.requests) == expected

        VariedModel.requests.clear()
        spread = pytester.runpytest(*args, "-n", "2", "--utg-results", "xdist.jsonl")
        outcomes["xdist"] = spread.parseoutcomes()
        assert len(VariedModel.requests) == expected, "each probe is generated once, by one worker"

        VariedModel.requests.clear()
        for k in (1, 2):
            shard = pytester.runpytest(*args, "--utg-shard", f"{k}/2", "--utg-results", f"shard{k}.jsonl")
            assert shard.ret == 0, "a shard judges no gate: utg merge does"
        assert len(VariedModel.requests) == expected

    root = pytester.path
    capsys.readouterr()
    assert cli.main(["merge", str(root / "shard1.jsonl"), str(root / "shard2.jsonl"), "-o", str(root / "m.jsonl")]) == 1
    merged_stdout = capsys.readouterr().out

    records = {name: record_module.read(root / f"{name}.jsonl") for name in ("serial", "xdist", "m")}
    probes = {name: record_module.canonical(found.probes) for name, found in records.items()}
    assert len(probes["serial"]) == expected
    same(probes["xdist"], probes["serial"])
    same(probes["m"], probes["serial"])
    verdicts = {name: record_module.encode(found.verdicts) for name, found in records.items()}
    same(verdicts["xdist"], verdicts["serial"])
    same(verdicts["m"], verdicts["serial"])
    assert {v["name"]: v["passed"] for v in verdicts["serial"]}["lexical_similarity"] is False

    # The gates fail the run and reach the terminal the same way serially and under xdist.
    assert outcomes["serial"]["failed"] == outcomes["xdist"]["failed"] >= 1
    assert outcomes["serial"]["passed"] == outcomes["xdist"]["passed"] == expected + 4
    spread.stdout.fnmatch_lines(["*FAILED utg::gate::lexical_similarity*"])
    assert spread.ret == serial.ret == pytest.ExitCode.TESTS_FAILED

    # One summary, on the controller, equal to the serial one; `utg report` and `utg merge` print it too.
    live = summary_lines(serial.stdout.str())
    assert summary_lines(spread.stdout.str()) == live
    assert cli.main(["report", str(root / "serial.jsonl")]) == 1
    assert capsys.readouterr().out.splitlines() == live
    assert merged_stdout.splitlines() == live


def test_merge_refuses_an_incomplete_or_foreign_set_of_shards(
    pytester: pytest.Pytester, logs: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    common = ("--utg-logs", "logs", "--utg-prompt", "roleswap", "--utg-model", "scripted", *LOW_GATES)
    with serve(VariedModel) as url:
        for k in (1, 2):
            pytester.runpytest(*common, "--utg-base-url", url, "--utg-shard", f"{k}/3", "--utg-results", f"s{k}.jsonl")
        pytester.runpytest(*common, "--utg-base-url", url, "--utg-shard", "3/3", "--utg-temperature", "0.5",
                           "--utg-results", "s3.jsonl")  # fmt: skip
    root = pytester.path
    capsys.readouterr()
    assert cli.main(["merge", str(root / "s1.jsonl"), str(root / "s2.jsonl")]) == 2
    assert "incomplete: shard(s) 3/3 missing" in capsys.readouterr().err
    assert cli.main(["merge", str(root / "s1.jsonl"), str(root / "s2.jsonl"), str(root / "s3.jsonl")]) == 2
    assert "other settings than" in capsys.readouterr().err
    assert len(read_results(root / "s1.jsonl")) + len(read_results(root / "s2.jsonl")) > 0
