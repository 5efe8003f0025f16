"""The HTML report: one self-contained page that a real headless Chromium opens offline without an error or a request,
with its plots drawn, its verdicts, slices and transcripts shown, and log text (a slice's value too) escaped.

With UTG_SCREENSHOT=path the browser test also saves a full-page screenshot of the sample report there (how
docs/report.png is made); otherwise nothing is written outside tmp_path."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from test_report_markdown import HOSTILE_SLICE, SCRIPT, SLICED, Runs, header, hostile, run, runs, unsliced

from utg_pytest import baseline, slicing
from utg_pytest.model import ProbeResult
from utg_pytest.record import RunRecord
from utg_pytest.report import html

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Dialog, Route

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PLOTS = 5 + len(SLICED.fields)
"""Score distributions, the paired scatter, the sweep, the grounding gap, the history trend and one per slice field."""


@pytest.fixture(scope="module")
def sample() -> Runs:
    return runs()


@pytest.fixture(scope="module")
def page_html(sample: Runs) -> str:
    return html.render(sample.new, sample.comparison, sample.history, top=4)


@pytest.fixture(scope="module")
def hostile_html(sample: Runs) -> str:
    """The sample with the billing slice's value made of markup, a pipe and a newline."""
    record = hostile(sample.new)
    return html.render(record, baseline.compare(hostile(sample.base), record))


def errored(record: RunRecord) -> RunRecord:
    probes = tuple(
        replace(
            p,
            result=ProbeResult(p.probe_id, None, None, {}, error=f"timeout <i>{i}</i>"),
            passed=None,
            sweep={},
            shuffled=None,
        )
        for i, p in enumerate(record.probes)
    )
    return replace(record, probes=probes)


def without_references(record: RunRecord) -> RunRecord:
    return replace(record, probes=tuple(replace(p, result=replace(p.result, references={})) for p in record.probes))


def test_log_text_is_escaped_and_the_page_has_no_script(page_html: str) -> None:
    assert SCRIPT not in page_html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page_html
    assert "<b>after</b>" not in page_html
    assert "&lt;b&gt;after&lt;/b&gt;" in page_html
    assert "<script" not in page_html.lower()


def test_the_page_refers_to_nothing_outside_itself(page_html: str) -> None:
    references = re.findall(r"""\b(?:src|href|action)\s*=\s*["']?([^"'\s>]*)""", page_html)
    assert references
    assert all(ref.startswith(("#", "data:")) for ref in references), set(references)
    assert "@import" not in page_html
    assert not re.search(r"url\((?!#)", page_html)
    assert page_html.count("<svg") == PLOTS
    ids = re.findall(r'\bid="([^"]+)"', page_html)
    assert len(ids) == len(set(ids)), "inline SVGs must not share ids"


def test_the_page_is_deterministic(sample: Runs, page_html: str) -> None:
    again = runs()
    assert html.render(again.new, again.comparison, again.history, top=4) == page_html


@pytest.mark.parametrize(
    "record",
    [
        pytest.param(RunRecord(header("2026-12-01T00:00:00+00:00"), ()), id="empty"),
        pytest.param(errored(run("2026-12-01T00:00:00+00:00")), id="every-probe-errored"),
        pytest.param(without_references(run("2026-12-01T00:00:00+00:00")), id="no-references"),
    ],
)
def test_degenerate_runs_render(record: RunRecord) -> None:
    page = html.render(record, "the baseline <b>could not</b> be compared")
    assert 'class="banner fail"' in page
    assert '<div class="error">drift not judged: the baseline &lt;b&gt;could not&lt;/b&gt; be compared</div>' in page
    if not record.probes:
        assert "No probes in this run" in page
        assert "<svg" not in page
    elif not record.figures.scored:
        assert "No probe produced a prediction." in page
        assert "<svg" not in page
        assert page.count("timeout &lt;i&gt;") == len(record.probes)
    else:
        assert "No reference predictor scores in this record" in page
        assert 'aria-label="distributions"' in page


def test_failing_probes_are_capped_with_a_note() -> None:
    big = errored(run("2026-12-01T00:00:00+00:00", n=html.FAILING_SHOWN + 12))
    page = html.render(big)
    table = page[page.index('<table id="failing">') :]
    assert table.count("<tr>") == 1 + html.FAILING_SHOWN
    assert "12 more failing probe(s) left out." in page


def test_the_probes_it_gets_most_wrong_are_capped_with_a_note() -> None:
    big = run("2026-12-01T00:00:00+00:00", n=160)
    misses = slicing.worst(big)
    assert len(misses) > html.WORST_SHOWN
    page = html.render(big)
    section = page[page.index('<section id="worst">') :]
    assert section.count('<article class="miss">') == html.WORST_SHOWN
    assert f"{len(misses) - html.WORST_SHOWN} more probe(s) below the best reference left out." in section
    assert f"Probes it gets most wrong ({len(misses)})" in section
    titles = re.findall(r'<article class="miss"><h3>(.*?) <span class="badge fail">([-+.0-9]+)</span>', section)
    assert titles == [(m.probe.probe_id, f"{m.gap:+.3f}") for m in misses[: html.WORST_SHOWN]]


def test_without_slice_fields_the_page_has_no_slices_but_still_the_worst_probes(sample: Runs) -> None:
    plain = unsliced(sample.new)
    page = html.render(plain, sample.comparison, sample.history)
    assert 'id="slices' not in page
    assert 'id="slice-' not in page
    assert "[domain=" not in page
    assert page.count("<svg") == PLOTS - len(SLICED.fields)
    assert '<section id="worst">' in page


def test_a_hostile_slice_value_is_escaped_in_tables_plots_and_banner(hostile_html: str) -> None:
    page = hostile_html
    assert "<script" not in page.lower()
    assert "@import" not in page
    cell = "a | b &lt;script&gt;alert(1)&lt;/script&gt;\nnext `x` @octocat"
    assert f"<td>{cell}</td>" in page, "a newline in a table cell is only white space"
    assert f"semantic_similarity[domain={cell}]" in page[page.index('id="verdict"') :][:4000]
    plot = page[page.index('aria-label="semantic similarity by domain"') :]
    assert "a | b &lt;script&gt;alert(1)&lt;/script&gt;… (n=12)" in plot[: plot.index("</svg>")]


def test_a_slice_whose_interval_misses_its_mean_by_a_rounding_error_still_plots() -> None:
    record = run("2026-12-01T00:00:00+00:00")
    probes = tuple(
        replace(p, result=replace(p.result, scores={**p.result.scores, "semantic": 0.3}))
        if p.slices["domain"] == "billing"
        else p
        for p in record.probes
    )
    billing = next(part for part in slicing.slices(replace(record, probes=probes), "domain") if part.value == "billing")
    semantic = billing.figures.similarity["semantic"]
    assert semantic.ci_high < semantic.mean, "twelve scores of 0.3: the bootstrap bound rounds below the mean"
    page = html.render(replace(record, probes=probes))
    assert page.count('aria-label="semantic similarity by') == len(SLICED.fields)


def test_long_texts_are_capped_with_an_ellipsis() -> None:
    record = errored(run("2026-12-01T00:00:00+00:00"))
    record = replace(record, probes=(replace(record.probes[0], target="y" * 5000), *record.probes[1:]))
    page = html.render(record)
    assert "y" * (html.CELL - 1) + "…" in page
    assert "y" * html.CELL not in page


def test_rendering_leaves_matplotlib_alone_and_importing_does_not_load_it() -> None:
    """In a fresh interpreter: matplotlib is not imported with the report modules, and rendering plots neither
    imports pyplot nor leaves rcParams changed."""
    code = """
import sys
sys.path.insert(0, "tests")
from test_report_markdown import runs
from utg_pytest.report import html, markdown
assert "matplotlib" not in sys.modules
import matplotlib
def settings():  # read raw: reading rcParams["backend"] would import pyplot itself
    return {key: dict.__getitem__(matplotlib.rcParams, key) for key in matplotlib.rcParams}
before = settings()
sample = runs()
html.render(sample.new, sample.comparison, sample.history)
assert "matplotlib.pyplot" not in sys.modules, "pyplot was imported"
assert settings() == before, "rcParams changed"
"""
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: CI must install Debian's chromium (see .ci/run)")
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium to check the HTML report in a browser")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield launched
        launched.close()


class Opened:
    """A report opened from a file:// URL, with every console error, page error, dialog and other request seen."""

    def __init__(self, browser: Browser, path: Path) -> None:
        self.url = path.as_uri()
        self.problems: list[str] = []
        self.requests: list[str] = []
        self.context = browser.new_context(viewport={"width": 1200, "height": 900})
        self.page = self.context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda error: self.problems.append(f"page error: {error}"))
        self.page.on("dialog", self._dialog)
        self.context.route("**/*", self._route)
        self.page.goto(self.url, wait_until="load")

    def _console(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.problems.append(f"console: {message.text}")

    def _dialog(self, dialog: Dialog) -> None:
        self.problems.append(f"dialog: {dialog.message}")
        dialog.dismiss()

    def _route(self, route: Route) -> None:
        if route.request.url == self.url:
            route.continue_()
        else:
            self.requests.append(route.request.url)
            route.abort()


def test_the_report_works_offline_in_a_real_browser(
    browser: Browser, sample: Runs, page_html: str, tmp_path: Path
) -> None:
    path = tmp_path / "report.html"
    path.write_text(page_html, encoding="utf-8")
    opened = Opened(browser, path)
    page = opened.page

    plots = page.locator("svg.plot")
    assert plots.count() == PLOTS
    for index in range(PLOTS):
        plot = plots.nth(index)
        assert plot.is_visible()
        box = plot.bounding_box()
        assert box is not None
        assert box["width"] > 100
        assert box["height"] > 100
    assert page.locator("svg.plot text").count() > 20, "the plots' text is drawn"
    assert page.locator("script").count() == 0

    gates = page.locator("#gates tbody tr")
    assert gates.count() == len(sample.new.verdicts)
    for index, verdict in enumerate(sample.new.verdicts):
        row = gates.nth(index)
        assert row.locator("td").first.inner_text() == verdict.name
        assert row.get_attribute("class") == f"verdict-{'pass' if verdict.passed else 'fail'}"
    drift = page.locator("#drift tbody tr")
    assert drift.count() == len(sample.comparison.drifts) + 1
    assert drift.last.get_attribute("class") == "verdict-reported"
    semantic = page.locator("#drift tbody tr", has_text="drift::semantic")
    assert semantic.get_attribute("class") == "verdict-fail"
    assert semantic.locator("td").nth(4).inner_text() == f"{sample.comparison.drift('semantic').difference:+.3f}"
    banner = page.locator("#verdict").inner_text()
    assert banner.startswith(
        "utg failed: skill, semantic_similarity[domain=billing], skill[domain=billing], drift::semantic, "
    )
    assert "drift::semantic[domain=billing]" in banner.split("(inconclusive")[0]

    record, settings = sample.new, sample.new.header.settings
    for index, field in enumerate(SLICED.fields):
        found = slicing.slices(record, field)
        rows = page.locator(f"#slices-{index} tbody tr")
        assert rows.count() == len(found)
        for row, part in zip(rows.all(), found, strict=True):
            cells = row.locator("td")
            assert cells.first.inner_text() == part.value + (" *" if part.small else "")
            assert (row.get_attribute("class") or "") == ("small" if part.small else "")
            assert cells.nth(3).inner_text() == f"{part.figures.similarity['semantic'].mean:.3f}"
        assert page.locator(f'svg.plot[aria-label="semantic similarity by {field}"]').is_visible()
    judged = slicing.judge(record, settings.gates, settings.drift.alpha)
    gated = page.locator("#slice-gates tbody tr")
    assert gated.count() == len(judged)
    for row, verdict in zip(gated.all(), judged, strict=True):
        assert row.get_attribute("class") == f"verdict-{verdict.outcome}"
        assert [row.locator("td").nth(i).inner_text() for i in range(3)] == [
            verdict.gate,
            f"{verdict.field}={verdict.value}",
            verdict.outcome,
        ]
    failing = page.locator("#slice-gates tbody tr.verdict-fail", has_text="domain=billing").first
    colour = failing.locator("td").nth(2).evaluate("cell => getComputedStyle(cell).backgroundColor")
    assert colour == "rgb(254, 226, 226)", "the verdict cell is coloured, as in the other gate tables"
    drifts = slicing.drift_by_slice(
        sample.comparison, settings.slices.fields, settings.drift, list(record.header.scorers)
    )
    assert page.locator("#slice-drift tbody tr").count() == len(drifts)

    misses = slicing.worst(record)
    shown = page.locator("#worst .miss")
    assert shown.count() == len(misses) < html.WORST_SHOWN
    worst = shown.first.inner_text()
    first = misses[0]
    assert worst.startswith(f"{first.probe.probe_id} {first.gap:+.3f} {first.score:.3f} against the {first.reference}")
    assert first.probe.context_tail[-1].text in worst
    assert first.probe.target in worst
    assert f"prediction ({first.score:.3f})" in worst
    assert f"{first.reference} {first.reference_score:.3f}" in worst

    regressions = page.locator("#regressions .regression")
    assert regressions.count() == 4
    first, second = regressions.nth(0).inner_text(), regressions.nth(1).inner_text()
    assert "Are you on Wi-Fi or a cable? (context of probe 0)" in first
    assert "it's option a | option b\nthen the second line" in first
    assert "prediction 0 of seed 1" in first
    assert "prediction 0 of seed 2" in first
    assert second.count(SCRIPT) == 2, "the baseline's and the candidate's prediction, as text"
    assert page.locator("#transitions td").count() > 0
    assert page.locator("#history-rows tbody tr").count() == len(sample.history) + 1
    assert page.locator("#history-rows tbody tr").last.locator("td").first.inner_text() == "this run"

    assert opened.problems == []
    assert opened.requests == []
    screenshot = os.environ.get("UTG_SCREENSHOT")
    if screenshot:
        page.screenshot(path=screenshot, full_page=True)
    opened.context.close()


def test_a_hostile_slice_value_stays_text_in_a_real_browser(
    browser: Browser, hostile_html: str, tmp_path: Path
) -> None:
    path = tmp_path / "hostile.html"
    path.write_text(hostile_html, encoding="utf-8")
    opened = Opened(browser, path)
    page = opened.page
    assert page.locator("script").count() == 0
    flat = HOSTILE_SLICE.replace("\n", " ")
    assert page.locator("#slices-0 tbody tr").first.locator("td").first.inner_text() == flat
    assert f"semantic_similarity[domain={flat}]" in page.locator("#verdict").inner_text()
    label = page.locator('svg.plot[aria-label="semantic similarity by domain"] text', has_text="alert(1)")
    assert label.count() == 1
    assert label.first.text_content() == "a | b <script>alert(1)</script>… (n=12)"
    assert opened.problems == [], "no dialog: the alert stayed text"
    assert opened.requests == []
    opened.context.close()


def test_degenerate_reports_open_without_errors(browser: Browser, tmp_path: Path) -> None:
    for name, record in (
        ("empty", RunRecord(header("2026-12-01T00:00:00+00:00"), ())),
        ("errored", errored(run("2026-12-01T00:00:00+00:00"))),
    ):
        path = tmp_path / f"{name}.html"
        path.write_text(html.render(record, "incomparable"), encoding="utf-8")
        opened = Opened(browser, path)
        assert opened.page.locator("#gates tbody tr").count() == len(record.verdicts)
        assert opened.page.locator(".error").inner_text() == "drift not judged: incomparable"
        assert opened.problems == []
        assert opened.requests == []
        opened.context.close()
