"""Recall, false positives and cost of the PII guard (utg_pytest.pii) on the planted corpus in benchmarks/data/pii and
on the shipped fixture logs.

    python benchmarks/pii.py [--misses] [--runs 5]

Recall: a planted value is found when a detection in its message and field overlaps its span (a split value: when
both parts are overlapped), whatever the detection's kind; "typed" also asks for the right kind. False positives:
negatives.jsonl rows that a detection overlaps, by negative kind and borderline or not, plus detections that overlap
no row; every detection in fixtures/logs, whose texts are anonymised, so each one is a false positive or a
placeholder to look at. Cost: median time of scan() and of redact() per 1,000 characters, on the corpus (dense with
values) and on the fixtures (almost free of them).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from utg_pytest import pii
from utg_pytest.ingest import load
from utg_pytest.model import Conversation, Message

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "benchmarks" / "data" / "pii"
FIXTURES = ROOT / "fixtures" / "logs"
ARGUMENTS = "tool_calls[0].function.arguments"
TYPED = {"ipv4": "ip_address", "ipv6": "ip_address"}
"""Corpus kinds that the guard names differently."""
STRUCTURED = ("email", "phone", "payment_card", "iban", "ipv4", "ipv6", "us_ssn", "national_id")

Spans = dict[tuple[str, int, str], list[tuple[int, int, str, str]]]
"""(conversation id, message index, field) -> (start, end, kind, rule) of each detection."""


def read(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def messages(conversation: dict[str, Any]) -> tuple[Message, ...]:
    return tuple(
        Message(m["role"], m.get("content") or "", bool(m.get("tool_calls"))) for m in conversation["messages"]
    )


def arguments(conversation: dict[str, Any]) -> Iterator[tuple[int, str, str]]:
    """(message index, text, context) of each tool call's arguments, which the guard sees as a text of its own."""
    for index, m in enumerate(conversation["messages"]):
        for call in m.get("tool_calls") or []:
            context = conversation["messages"][index - 1].get("content") or "" if index else ""
            yield index, call["function"]["arguments"], context


def detections(conversations: list[dict[str, Any]]) -> Spans:
    found: Spans = defaultdict(list)
    for c in conversations:
        for f in pii.scan(messages(c)):
            found[(c["id"], f.message, "content")].append((f.start, f.end, f.kind, f.rule))
        for index, text, context in arguments(c):
            for h in pii.detect(text, context=context):
                found[(c["id"], index, ARGUMENTS)].append((h.start, h.end, h.kind, h.rule))
    return found


def covered(found: Spans, key: tuple[str, int, str], start: int, end: int, kind: str | None = None) -> bool:
    return any(s < end and start < e and (kind is None or k == kind) for s, e, k, _ in found.get(key, []))


def found_row(row: dict[str, Any], found: Spans, typed: bool = False, either: bool = False) -> bool:
    kind = TYPED.get(row["kind"], row["kind"]) if typed else None
    if row["start"] is None:
        parts = [
            covered(found, (row["conversation_id"], p["message_index"], row["field"]), p["start"], p["end"], kind)
            for p in row["parts"]
        ]
        return any(parts) if either else all(parts)
    return covered(found, (row["conversation_id"], row["message_index"], row["field"]), row["start"], row["end"], kind)


def recall(truth: list[dict[str, Any]], found: Spans, show_misses: bool) -> None:
    by_kind: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in truth:
        by_kind[row["kind"]].append(row)
    print(f"recall on planted.jsonl ({len(truth)} values; typed = the detection also has the right kind)")
    print(f"  {'kind':<14}{'n':>5}{'found':>7}{'recall':>9}{'typed':>9}")
    for kind in sorted(by_kind):
        rows = by_kind[kind]
        hit = sum(found_row(r, found) for r in rows)
        typed = sum(found_row(r, found, typed=True) for r in rows)
        print(f"  {kind:<14}{len(rows):>5}{hit:>7}{hit / len(rows):>9.3f}{typed / len(rows):>9.3f}")
    structured = [r for r in truth if r["kind"] in STRUCTURED]
    hit = sum(found_row(r, found) for r in structured)
    macro = statistics.mean(sum(found_row(r, found) for r in rows) / len(rows) for rows in by_kind.values())
    print(f"  structured kinds: {hit}/{len(structured)} = {hit / len(structured):.3f}; macro average {macro:.3f}")
    split = [r for r in truth if r["start"] is None]
    both, either = sum(found_row(r, found) for r in split), sum(found_row(r, found, either=True) for r in split)
    print(f"  split values: {both}/{len(split)} with both parts covered, {either}/{len(split)} with either part")
    hard: dict[str, list[bool]] = defaultdict(list)
    for row in truth:
        hard[row["hard"] or "(none)"].append(found_row(row, found))
    weak = [f"{h} {sum(v)}/{len(v)}" for h, v in sorted(hard.items()) if not all(v)]
    print(f"  hard cases below 1.0: {', '.join(weak) or 'none'}")
    misses = [r for r in truth if not found_row(r, found)]
    if show_misses:
        for r in misses:
            print(f"    MISS {r['conversation_id']}#{r['message_index']} {r['kind']}/{r['subkind']} {r['format']}")
            print(f"         hard={r['hard']} value={r['value']!r}")


def spurious(truth: list[dict[str, Any]], found: Spans) -> Counter[str]:
    """Detections in planted.jsonl that overlap no planted value."""
    spans: dict[tuple[str, int, str], list[tuple[int, int]]] = defaultdict(list)
    for row in truth:
        for part in row["parts"] if row["start"] is None else [row]:
            key = (row["conversation_id"], part["message_index"], row["field"])
            spans[key].append((part["start"], part["end"]))
    extra: Counter[str] = Counter()
    for key, hits in found.items():
        for s, e, kind, rule in hits:
            if not any(s < b and a < e for a, b in spans.get(key, [])):
                extra[f"{kind}/{rule}"] += 1
    return extra


def false_positives(conversations: list[dict[str, Any]], truth: list[dict[str, Any]], found: Spans) -> None:
    texts = {c["id"]: c["messages"] for c in conversations}
    rows: dict[tuple[str, bool], list[bool]] = defaultdict(list)
    flagged = []
    for row in truth:
        key = (row["conversation_id"], row["message_index"], row["field"])
        hit = covered(found, key, row["start"], row["end"])
        rows[(row["kind"], row["borderline"])].append(hit)
        if hit:
            flagged.append(row)
    plain = [v for (_, b), vs in rows.items() if not b for v in vs]
    border = [v for (_, b), vs in rows.items() if b for v in vs]
    print(f"false positives on negatives.jsonl ({len(truth)} rows)")
    print(f"  not borderline: {sum(plain)}/{len(plain)} flagged = {sum(plain) / len(plain):.3f} (target 0)")
    print(f"  borderline:     {sum(border)}/{len(border)} flagged = {sum(border) / len(border):.3f} (informational)")
    per_kind = Counter[str]()
    for (kind, _), vs in rows.items():
        per_kind[kind] += sum(vs)
    counts = Counter[str]()
    for (kind, _), vs in rows.items():
        counts[kind] += len(vs)
    print("  flagged by kind: " + ", ".join(f"{k} {per_kind[k]}/{counts[k]}" for k in sorted(counts)))
    for row in flagged:
        kinds = {k for s, e, k, _ in found[(row["conversation_id"], row["message_index"], row["field"])]
                 if s < row["end"] and row["start"] < e}  # fmt: skip
        mark = "borderline" if row["borderline"] else "NOT BORDERLINE"
        print(f"    {mark}: {row['kind']} {row['value']!r} flagged as {', '.join(sorted(kinds))}")
    listed: dict[tuple[str, int, str], list[tuple[int, int]]] = defaultdict(list)
    for row in truth:
        listed[(row["conversation_id"], row["message_index"], row["field"])].append((row["start"], row["end"]))
    unlisted = []
    for key, hits in sorted(found.items()):
        for s, e, kind, rule in hits:
            if not any(s < b and a < e for a, b in listed.get(key, [])):
                m = texts[key[0]][key[1]]
                text = m.get("content") or "" if key[2] == "content" else m["tool_calls"][0]["function"]["arguments"]
                unlisted.append(f"    {key[0]}#{key[1]} {kind}/{rule} {text[s:e]!r}")
    print(f"  detections overlapping no listed negative (filler text): {len(unlisted)}")
    print("\n".join(unlisted), end="\n" if unlisted else "")


def fixture_conversations() -> list[Conversation]:
    """The shipped fixtures as the pipeline reads them: the messages a model would be sent."""
    return list(load(sorted(FIXTURES.glob("*.jsonl"))).conversations())


def fixtures(conversations: list[Conversation]) -> None:
    lines = []
    for c in conversations:
        for f in pii.scan(c.messages):
            text = c.messages[f.message].text[f.start : f.end]
            lines.append(f"    {Path(c.source).name} {c.id}#{f.message} {f.kind}/{f.rule} {text!r}")
    chars = sum(len(m.text) for c in conversations for m in c.messages)
    print(
        f"detections in fixtures/logs ({len(conversations)} anonymised conversations, {chars} characters): {len(lines)}"
    )
    print("\n".join(lines))


def cost(name: str, conversations: list[tuple[Message, ...]], runs: int) -> None:
    """Median time of scan() (detection only) and redact() (detection, replacement and the scan that checks the
    result) over the conversations, per 1,000 characters."""
    chars = sum(len(m.text) for ms in conversations for m in ms)
    figures = []
    for function in (pii.scan, pii.redact):
        times = []
        for _ in range(runs):
            started = time.perf_counter()
            for ms in conversations:
                function(ms)
            times.append(time.perf_counter() - started)
        figures.append(f"{function.__name__}() {statistics.median(times) / chars * 1e6:.2f} ms")
    print(
        f"  {name} ({len(conversations)} conversations, {chars} characters): {', '.join(figures)} per 1,000 characters"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--misses", action="store_true", help="list the planted values that were not found")
    parser.add_argument("--runs", type=int, default=5, help="timed runs for the cost figure")
    args = parser.parse_args()
    started = time.perf_counter()
    planted, planted_truth = read(DATA / "planted.jsonl"), read(DATA / "planted_truth.jsonl")
    negatives, negatives_truth = read(DATA / "negatives.jsonl"), read(DATA / "negatives_truth.jsonl")
    found = detections(planted)
    print(f"first pass (imports and all): {time.perf_counter() - started:.2f} s")
    recall(planted_truth, found, args.misses)
    extra = spurious(planted_truth, found)
    total = sum(len(hits) for hits in found.values())
    print(
        f"  precision on planted.jsonl: {total - sum(extra.values())}/{total} detections overlap a planted value"
        + (f"; the others: {dict(extra)}" if extra else "")
    )
    false_positives(negatives, negatives_truth, detections(negatives))
    logs = fixture_conversations()
    fixtures(logs)
    print(f"cost, median of {args.runs} runs on this machine:")
    cost("planted + negatives", [messages(c) for c in planted + negatives], args.runs)
    cost("fixtures/logs", [c.messages for c in logs], args.runs)


if __name__ == "__main__":
    main()
