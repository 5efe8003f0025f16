"""The run store and the files a run leaves: --utg-save-run, `utg report --history`, --utg-html, --utg-markdown and
GitHub's job summary, from a real pytest run against a scripted endpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import LOW_GATES
from servers import ParrotModel, VariedModel, serve
from test_drift import arm

from utg_pytest import cli, history
from utg_pytest.record import RecordError
from utg_pytest.settings import DriftSettings


def test_the_store_keeps_every_run_apart_and_reads_them_oldest_first(tmp_path: Path) -> None:
    older = arm([0.4] * 10, created="2026-11-01T10:00:00+00:00")
    newer = arm([0.2] * 10, created="2026-11-02T10:00:00+00:00")
    same_time = arm([0.3] * 10, created="2026-11-02T10:00:00+00:00")
    for found in (newer, older, same_time):
        history.save(tmp_path / "runs", found)
    assert len(list((tmp_path / "runs").iterdir())) == 3
    loaded = history.load(tmp_path / "runs")
    assert [r.header.created for r in loaded] == [older.header.created, *[newer.header.created] * 2]
    assert history.load(tmp_path / "runs", leave_out=older) == loaded[1:]
    rows = history.rows(loaded)
    assert rows[0].semantic == pytest.approx(0.4)
    assert rows[0].followup_rate == pytest.approx(1.0)
    with pytest.raises(RecordError, match="no run store here"):
        history.load(tmp_path / "nowhere")


def test_each_run_is_judged_against_the_one_before_it() -> None:
    runs = [arm([0.4] * 200), arm([0.4] * 200), arm([0.1] * 200)]
    steps = history.steps(runs, DriftSettings())
    assert [history.step_verdict(s) for s in steps] == ["pass", "fail"]
    assert history.step_verdict("scored differently") == "incomparable"


@pytest.mark.slow
def test_runs_saved_to_a_store_show_their_drift_across_releases_in_every_report(
    pytester: pytest.Pytester, logs: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    summary = pytester.path / "step-summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    common = ("--utg-logs", "logs", "--utg-prompt", "roleswap", "--utg-model", "scripted", *LOW_GATES,
              "--utg-save-run", "runs")  # fmt: skip
    with serve(VariedModel) as url:
        first = pytester.runpytest(*common, "--utg-base-url", url, "--utg-html", "v1.html")
    with serve(ParrotModel) as url:
        second = pytester.runpytest(*common, "--utg-base-url", url, "--utg-markdown", "v2.md",
                                    "--utg-step-summary", "auto")  # fmt: skip
    assert first.ret == second.ret == pytest.ExitCode.OK
    stored = sorted((pytester.path / "runs").iterdir())
    assert len(stored) == 2
    page = (pytester.path / "v1.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert "<svg" in page
    comment = (pytester.path / "v2.md").read_text(encoding="utf-8")
    assert comment.count("|") > 20
    appended = summary.read_text(encoding="utf-8")
    assert appended.endswith(comment + "\n")
    assert len(appended) > 1.5 * len(comment)
    capsys.readouterr()
    assert cli.main(["report", "--history", str(pytester.path / "runs")]) == 0
    text = capsys.readouterr().out
    assert "2 saved runs, oldest first" in text
    table = text[text.index("2 saved runs") :].splitlines()
    assert "against previous" in table[1]
    assert table[2].rstrip().endswith("-")
    assert table[3].rstrip().endswith("fail")
    out = pytester.path / "history.html"
    assert cli.main(["report", "--history", str(pytester.path / "runs"), "--format", "html", "-o", str(out)]) == 0
    assert out.read_text(encoding="utf-8").count("<svg") >= 2
