"""Canary secrets: with every artefact on and the loudest logging, no API key and no password of a base URL reaches
the terminal, a report, a record, the cache or a log, even when the endpoint quotes them back in its errors, while
generating, while judging, or when the backend fails to start."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any, ClassVar

import pytest
from conftest import LOW_GATES, read_results
from servers import ScriptedModel, chat_reply, serve

MODEL_KEY = "sk-canary-model-7f3a9c01d2"
JUDGE_KEY = "sk-canary-judge-1b2e4d8e77"
PASSWORD = "canarysecret-5c6d"
ENV = {"UTG_TEST_MODEL_KEY": MODEL_KEY, "UTG_TEST_JUDGE_KEY": JUDGE_KEY}


class QuotingEndpoint(ScriptedModel):
    """An endpoint that quotes the caller's Authorization header back in its errors, as some gateways do
    (`401 Incorrect API key provided: Bearer sk-...`): every third generation and judge request, and, when asked, the
    model listing."""

    refuse_listing: ClassVar[bool] = False
    authorizations: ClassVar[set[str]] = set()

    @classmethod
    def reset(cls) -> None:
        cls.authorizations = set()

    def _quote(self, status: int) -> None:
        auth = self.headers.get("Authorization", "")
        self._send(status, {"error": {"message": f"Incorrect API key provided: {auth}", "code": "invalid_api_key"}})

    def do_GET(self) -> None:
        self.authorizations.add(self.headers.get("Authorization", ""))
        if self.refuse_listing:
            self._quote(401)
        else:
            super().do_GET()

    def generate(self, body: dict[str, Any]) -> None:
        self.authorizations.add(self.headers.get("Authorization", ""))
        canonical = json.dumps(body, sort_keys=True)
        if int(hashlib.sha256(canonical.encode()).hexdigest(), 16) % 3 == 0:
            self._quote(400)
        elif "response_format" in body:
            verdict = {"label": "genuine_followup", "plausibility": 4, "reason": "takes up the question"}
            self._send(200, chat_reply(json.dumps(verdict)))
        else:
            self._send(200, chat_reply("ok, and what about the second option?"))


class RefusingListing(QuotingEndpoint):
    refuse_listing = True


def everything_written(root: Path) -> dict[str, bytes]:
    """Every file under the run's directory, as bytes: .gz files decompressed too, SQLite files dumped as SQL too
    (rows could hold a secret in a form the raw pages would split)."""
    found: dict[str, bytes] = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        data = path.read_bytes()
        found[str(path.relative_to(root))] = data
        if path.name.endswith(".gz"):
            found[f"{path.relative_to(root)} (decompressed)"] = gzip.decompress(data)
        if data.startswith(b"SQLite format 3\0"):
            with closing(sqlite3.connect(path)) as db:
                found[f"{path.relative_to(root)} (dump)"] = "\n".join(db.iterdump()).encode()
    return found


WRITTEN = ("out/results.jsonl", "out/junit.xml", "out/report.html", "out/report.md", "out/base.jsonl",
           "out/pytest.log", "step-summary.md", ".utg_cache/generations.sqlite3")  # fmt: skip
"""What `artefacts` has a run write, checked to be there: a secret cannot be found in a file that was never written."""


def leaks(result: pytest.RunResult, root: Path, secrets: list[str]) -> list[str]:
    """Where any of the secrets appears: the run's stdout, stderr, or a file it wrote."""
    assert [name for name in WRITTEN if not (root / name).is_file()] == []
    assert list((root / "out/runs").glob("*.utg-run.jsonl*"))
    places = {"stdout": result.stdout.str().encode(), "stderr": result.stderr.str().encode()}
    places.update(everything_written(root))
    return [f"{secret!r} in {where}" for where, text in places.items() for secret in secrets if secret.encode() in text]


def artefacts(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> tuple[str, ...]:
    """Every output the plugin has, the cache on, and every log pytest can keep, at the most verbose."""
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(pytester.path / "step-summary.md"))
    return (
        *("--utg-logs", "logs.jsonl", "--utg-prompt", "roleswap", "--utg-api-key-env", "UTG_TEST_MODEL_KEY"),
        *("--utg-results", "out/results.jsonl", "--junitxml", "out/junit.xml", "--utg-html", "out/report.html"),
        *("--utg-markdown", "out/report.md", "--utg-save-run", "out/runs", "--utg-update-baseline", "out/base.jsonl"),
        *("--utg-retries", "0", "-vv", "-rA", "--log-level", "DEBUG", "--log-cli-level", "DEBUG"),
        *("--log-file", "out/pytest.log", "--log-file-level", "DEBUG", *LOW_GATES),
    )


def judged_by(url: str, model: bool = True) -> tuple[str, ...]:
    found = ("--utg-judge", "llm", "--utg-judge-base-url", url, "--utg-judge-api-key-env", "UTG_TEST_JUDGE_KEY")
    return (*found, "--utg-judge-model", "scripted") if model else found


def test_no_artefact_holds_a_key_the_endpoint_quotes_while_generating_and_judging(
    pytester: pytest.Pytester, small_log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = artefacts(pytester, monkeypatch)
    with serve(QuotingEndpoint) as url:
        result = pytester.runpytest(*args, "--utg-base-url", url, "--utg-model", "scripted", *judged_by(url))
    assert QuotingEndpoint.authorizations == {f"Bearer {MODEL_KEY}", f"Bearer {JUDGE_KEY}"}
    records = read_results(pytester.path / "out/results.jsonl")
    quoted = [r["error"] for r in records if r["error"]]
    unjudged = [r["unjudged"] for r in records if r["unjudged"]]
    assert quoted
    assert all("Incorrect API key provided: Bearer ***" in e for e in quoted)
    assert unjudged
    assert all("Incorrect API key provided: Bearer ***" in e for e in unjudged)
    assert leaks(result, pytester.path, [MODEL_KEY, JUDGE_KEY]) == []


@pytest.mark.parametrize("who", ["model", "judge"])
def test_a_backend_that_cannot_start_does_not_repeat_the_key_the_endpoint_quoted(
    pytester: pytest.Pytester, small_log: Path, monkeypatch: pytest.MonkeyPatch, who: str
) -> None:
    args = artefacts(pytester, monkeypatch)
    with serve(RefusingListing) as url:
        tested = ("--utg-base-url", url) if who == "model" else ("--utg-base-url", url, "--utg-model", "scripted")
        result = pytester.runpytest(*args, *tested, *judged_by(url, model=False))
    records = read_results(pytester.path / "out/results.jsonl")
    field = "error" if who == "model" else "unjudged"
    reasons = {r[field] for r in records if who == "model" or r["prediction"] is not None}
    assert len(reasons) == 1
    (reason,) = reasons
    assert "could not start" in reason
    assert "Incorrect API key provided: Bearer ***" in reason
    assert leaks(result, pytester.path, [MODEL_KEY, JUDGE_KEY]) == []


def test_the_password_of_a_base_url_is_used_but_never_shown(
    pytester: pytest.Pytester, small_log: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = artefacts(pytester, monkeypatch)
    basic = base64.b64encode(f"user:{PASSWORD}".encode()).decode()
    with serve(QuotingEndpoint) as url:
        secret_url = url.replace("http://", f"http://user:{PASSWORD}@")
        result = pytester.runpytest(*args, "--utg-base-url", secret_url, *judged_by(secret_url, model=False))
    assert QuotingEndpoint.authorizations == {f"Basic {basic}"}
    records = read_results(pytester.path / "out/results.jsonl")
    assert any("Incorrect API key provided: Basic ***" in (r["error"] or "") for r in records)
    assert any(r["prediction"] for r in records)
    result.stdout.fnmatch_lines([f"model: {url}#scripted *"])
    assert leaks(result, pytester.path, [PASSWORD, basic, MODEL_KEY]) == []
