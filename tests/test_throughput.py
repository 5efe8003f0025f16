"""The concurrent generation phase against real loopback HTTP servers: concurrency bounds, retries honouring
Retry-After, the token budget, dry runs and progress lines."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from pathlib import Path

import pytest
from conftest import GATES, LOW_GATES, read_results
from servers import FlakyModel, HungryModel, ParrotModel, RateLimitedModel, SlowModel, scripted, serve

from utg_pytest.runner import Limits
from utg_pytest.settings import LimitSettings

PROBES = 5  # in the small_log fixture


def run(pytester: pytest.Pytester, url: str, *extra: str) -> pytest.RunResult:
    return pytester.runpytest(*scripted(url), "--utg-cache-mode", "off", *LOW_GATES, *extra)


@pytest.mark.parametrize("concurrency", [1, 5])
def test_requests_in_flight_never_exceed_the_concurrency(
    pytester: pytest.Pytester, small_log: Path, concurrency: int
) -> None:
    with serve(SlowModel) as url:
        run(pytester, url, "--utg-concurrency", str(concurrency)).assert_outcomes(passed=PROBES + GATES)
    assert len(SlowModel.requests) == PROBES
    if concurrency == 1:
        assert SlowModel.most_in_flight == 1
    else:
        assert 2 <= SlowModel.most_in_flight <= concurrency


def test_a_429_is_retried_after_the_delay_the_server_asks_for(pytester: pytest.Pytester, small_log: Path) -> None:
    out = pytester.path / "results.jsonl"
    with serve(RateLimitedModel) as url:
        run(pytester, url, "--utg-results", str(out)).assert_outcomes(passed=PROBES + GATES)
    assert len(RateLimitedModel.arrivals) == PROBES
    for arrivals in RateLimitedModel.arrivals.values():
        assert len(arrivals) == 2
        assert arrivals[1] - arrivals[0] >= RateLimitedModel.retry_after_s * 0.9
    assert all(record["attempts"] == 2 for record in read_results(out))


def test_server_errors_are_retried_and_then_reported_on_the_probe(pytester: pytest.Pytester, small_log: Path) -> None:
    with serve(FlakyModel) as url:
        run(pytester, url, "--utg-retries", "2").assert_outcomes(passed=PROBES + GATES)
        assert all(count == 3 for count in FlakyModel.seen.values())
        FlakyModel.reset()
        failed = run(pytester, url, "--utg-retries", "1")
    failed.assert_outcomes(errors=PROBES, failed=GATES)
    failed.stdout.fnmatch_lines(["*no prediction: InternalServerError: *try again* (after 2 attempt(s))"])


def test_the_token_budget_stops_calling_the_model_and_says_so(pytester: pytest.Pytester, small_log: Path) -> None:
    out = pytester.path / "results.jsonl"
    budget = 700
    with serve(HungryModel) as url:
        result = run(
            pytester,
            url,
            "--utg-budget-tokens",
            str(budget),
            "--utg-concurrency",
            "1",
            "--utg-max-tokens",
            "16",
            "--utg-results",
            str(out),
        )
    records = read_results(out)
    answered = [r for r in records if r["error"] is None]
    refused = [r for r in records if r["error"] is not None]
    assert len(HungryModel.requests) == len(answered) == 2
    assert sum(r["prompt_tokens"] + r["completion_tokens"] for r in answered) <= budget
    assert all("token budget of 700 reached" in r["error"] for r in refused)
    result.stdout.fnmatch_lines(["tokens: 600 prompt + 10 completion this run*"])


def test_a_dry_run_calls_nothing_and_counts_only_cache_misses(pytester: pytest.Pytester, small_log: Path) -> None:
    base = ("--utg-logs", "logs.jsonl", "--utg-model", "scripted", "--utg-prompt", "roleswap")
    with serve(ParrotModel) as url:
        pytester.runpytest(*base, "--utg-base-url", url, "--utg-max-probes", "2", *LOW_GATES)
        assert len(ParrotModel.requests) == 2
        dry = pytester.runpytest(*base, "--utg-base-url", url, "--utg-dry-run", "--utg-price-input", "2.5")
        assert len(ParrotModel.requests) == 2
    assert dry.ret == pytest.ExitCode.OK
    dry.assert_outcomes()
    dry.stdout.fnmatch_lines(
        [
            "utg dry run: 3 model request(s) would be made (cache hits excluded); nothing was called",
            "  estimated tokens: * prompt (about 4 characters per token) + at most 192 completion (64 per request)",
            "  estimated cost: at most 0.0*",
        ]
    )


def test_progress_lines_report_rate_and_cache_hits(pytester: pytest.Pytester, small_log: Path) -> None:
    with serve(ParrotModel) as url:
        result = run(pytester, url, "--utg-price-input", "1", "--utg-price-output", "2")
    result.stdout.fnmatch_lines(
        [
            "utg: generating predictions (every 10 s)",
            "utg: 5/5 predictions | *.*/s | in *s | 0 error(s) | 0 cached",
            "tokens: 50 prompt + 25 completion this run, est. cost 0.0001",
        ]
    )


@pytest.mark.parametrize(("limit", "tokens"), [({"rpm": 4}, 1), ({"tpm": 400}, 100)])
def test_rate_limits_hold_requests_past_the_allowance(limit: dict[str, int], tokens: int) -> None:
    """The per-minute limits, on a 1-second period so the test is quick: the first four requests (or 400 tokens) pass
    at once, the next ones wait for the bucket to drain."""

    async def paced() -> tuple[float, float]:
        limits = Limits(replace(LimitSettings(), **limit), period_s=1.0)
        started = time.monotonic()
        for _ in range(4):
            await limits.pace(tokens)
        allowed = time.monotonic()
        for _ in range(2):
            await limits.pace(tokens)
        return allowed - started, time.monotonic() - allowed

    burst, held = asyncio.run(paced())
    assert burst < 0.2
    assert held >= 0.4


def test_a_dry_run_counts_the_sweep_and_the_shuffle_control(pytester: pytest.Pytester, small_log: Path) -> None:
    extra = ("--utg-temperatures", "0,1.0", "--utg-control", "shuffle", "--utg-samples", "2")
    dry = pytester.runpytest("--utg-logs", "logs.jsonl", "--utg-dry-run", *extra)
    assert dry.ret == pytest.ExitCode.OK
    dry.stdout.fnmatch_lines(
        ["utg dry run: 30 model request(s) would be made (cache hits excluded); nothing was called"]
    )


class Terminal:
    """Just enough of pytest's terminal reporter to watch the progress display."""

    def __init__(self, tty: bool) -> None:
        self.tty = tty
        self.lines: list[str] = []
        self.rewrites: list[str] = []
        self.written: list[str] = []

    def isatty(self) -> bool:
        return self.tty

    def write_line(self, line: str) -> None:
        self.lines.append(line)

    def rewrite(self, line: str) -> None:
        self.rewrites.append(line)

    def write(self, text: str) -> None:
        self.written.append(text)


def test_a_terminal_gets_one_line_rewritten_in_place_and_a_log_gets_periodic_lines() -> None:
    from utg_pytest.plugin import _progress
    from utg_pytest.runner import Status

    tty, log = Terminal(True), Terminal(False)
    for reporter in (tty, log):
        show = _progress(reporter)  # type: ignore[arg-type]
        for done in range(1, 101):
            show(Status(done, 100, 0, done // 2))
    assert tty.rewrites[-1].startswith("utg: 100/100 predictions |")
    assert tty.rewrites[-1].endswith("| 0 error(s) | 50 cached")
    assert tty.written == ["\n"]
    assert tty.lines == ["utg: generating predictions (live)"]
    assert log.rewrites == []
    assert log.lines[0] == "utg: generating predictions (every 10 s)"
    assert len(log.lines) == 2
    assert log.lines[1].startswith("utg: 100/100 predictions |")
