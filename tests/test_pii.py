"""The PII guard: what it finds, what it must leave alone, where its offsets point, and what redaction keeps."""

from __future__ import annotations

import itertools
import json
import random
import re
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from utg_pytest import pii
from utg_pytest.ingest import load
from utg_pytest.model import Message

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "benchmarks" / "data" / "pii"


def hits(text: str, context: str = "") -> list[tuple[str, str]]:
    """(kind, covered text) of each hit."""
    return [(h.kind, text[h.start : h.end]) for h in pii.detect(text, context=context)]


def luhn_complete(prefix: str) -> str:
    """`prefix` and the check digit that makes it pass Luhn."""
    for digit in "0123456789":
        number = prefix + digit
        total = sum(
            (d * 2 - 9 if d * 2 > 9 else d * 2) if i % 2 else d for i, d in enumerate(map(int, reversed(number)))
        )
        if total % 10 == 0:
            return number
    raise AssertionError("unreachable: one digit always completes a Luhn number")


def wide(text: str) -> str:
    """The full-width form of ASCII text, as East Asian input methods type it."""
    return "".join(chr(ord(c) + 0xFEE0) for c in text)


def user(*texts: str) -> tuple[Message, ...]:
    return tuple(Message("user", t) for t in texts)


# --- what is found, per kind: each case would catch a finder that lost a format ---------------------------------------

FOUND = [
    ("email", "write to {} please", "rui.costa+news@mail.example.org"),
    ("email", "it's {}.", "sean.o'neill@example.ie"),
    ("email", "my address is {}", "иван@пример.испытание"),
    ("email", "reach me at {} thanks", "mara.lind [at] example [dot] com"),
    ("email", "reach me at {} thanks", "tkoenig(at)example.org"),
    ("email", "mail {} today", "lars AT example DOT org"),
    ("email", "https://x.example/?to={}&x=1", "ana.ruiz%40example.com"),
    ("email", "[mail](mailto:{})", "kofi@example.com"),
    ("phone", "call me on {} after six", "+44 20 7946 0958"),
    ("phone", "call me on {} after six", "020 7946 0958"),
    ("phone", "call me on {} after six", "+1-415-555-2671 x23"),
    ("phone", "{} is my number", "(415) 555-2671"),
    ("phone", "Telefon: {}", "0049 30 1234567"),
    ("phone", "mon portable : {}", "06 12 34 56 78"),
    ("phone", "{}, got it", "+91-98765-43210"),
    ("phone", "ring {}", "+86 138 0013 8000"),
    ("phone", "ring {}", "+55 (11) 91234-5678"),
    ("phone", "{}", "+81 90-1234-5678"),
    ("phone", "ring {}", "+44 (0)20 7946 0140"),
    ("phone", "Telefon {} bitte", "040/123456"),
    ("phone", "phone: {}", "555-123-4567"),
    ("payment_card", "card {} exp 12/29", "4111 1111 1111 1111"),
    ("payment_card", "{}", "4111-1111-1111-1111"),
    ("payment_card", "use {}.", "4111.1111.1111.1111"),
    ("payment_card", "pay with {}", "3782 822463 10005"),
    ("payment_card", "pay with {}", "2221 0000 0000 0009"),
    ("payment_card", "pay with {}", "6011111111111117"),
    ("payment_card", "pay with {}", "3530 1113 3330 0000"),
    ("payment_card", "pay with {}", "6304 5479 3894 0575 880"),
    ("iban", "IBAN {} thanks", "DE89 3704 0044 0532 0130 00"),
    ("iban", "{}", "GB29NWBK60161331926819"),
    ("iban", "my iban: {}", "gb29nwbk60161331926819"),
    ("ip_address", "login from {} failed", "81.2.69.142"),
    ("ip_address", "curl http://{}:8080/", "46.103.174.176"),
    ("ip_address", "from {}", "2a00:1450:4001:81b::200e"),
    ("ip_address", "from {}", "::ffff:81.2.69.142"),
    ("us_ssn", "SSN={}", "415-75-7723"),
    ("us_ssn", "ok here you go: {}", "886 20 3361"),
    ("us_ssn", "social security number:{};ok", "573737034"),
    ("national_id", "my NHS number is {}", "943 476 5919"),
    ("national_id", "BSN: {}", "111222333"),
    ("national_id", "{} is my CPF", "390.533.447-05"),
    ("national_id", "Steuer-ID {}", "36574261809"),
    ("national_id", "they wrote {}, which is right", "2341 2341 2346"),
    ("national_id", "NIR {}", "2 95 10 99 126 111 93"),
    ("national_id", "DNI {}", "54362315-K"),
    ("national_id", "{} is the NIE", "X2482300W"),
    ("national_id", "codice fiscale {}", "rccmnl83s18d969h"),
    ("national_id", "PAN {}", "ACUPA7085R"),
    ("national_id", "is it {}?", "AB 12 34 56 C"),
    ("secret", "key: {}", "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7cDe"),
    ("secret", "export GITHUB_TOKEN={}", "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"),
    ("secret", "aws_access_key_id = {}", "AKIAIOSFODNN7EXAMPLE"),
    ("secret", "SLACK={}", "xoxb-105151555460-0345284520379-RRTN3s20OeWf0ByVVuVEcz99"),
    ("secret", "stripe {}", "sk_live_KJgOFofZDVfLEAujCqXU3cMY"),
    ("secret", "maps {}", "AIzaiED1LdVFp7aXWLVQXEcVcY7YMNIryffnuNi"),
    ("secret", "Authorization: Bearer {}", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1c3IxMjMifQ.c2lnbmF0dXJlc2lnbmF0dXJl"),
    ("secret", "DATABASE_URL={}", "postgres://app:s3cr3t-Pw@db.example.net:5432/orders"),
    ("secret", "my secret is {} ok", "iTsBCJMQ263RsSZDFvzpIRYZlvtuyJ3KJSSa0AfPl3CYPXlJ"),
    ("secret", "SERVICE_TOKEN={}", "33ddc3e0566088000988028e24cde4058d3f9d7fe989cad121bbef11bf5512cf"),
    ("secret", "password: {}", "hunter2!x"),
    (
        "secret",
        "{}\nthanks",
        "-----BEGIN RSA PRIVATE KEY-----\nMIICXQIBAAKBgQDU+8RYe/oGBUDJ6ilTT\n-----END RSA PRIVATE KEY-----",
    ),
]


@pytest.mark.parametrize(("kind", "template", "value"), FOUND)
def test_each_format_is_found_with_its_exact_span(kind: str, template: str, value: str) -> None:
    text = template.format(value)
    assert (kind, value) in hits(text)


NOT_PII = [
    "my router is 192.168.0.1 and the NAS 10.0.0.5",
    "ping 127.0.0.1, then 192.0.2.1, 198.51.100.7 and 203.0.113.42",
    "docs use 2001:db8::1 and ::1 and fe80::1ff:fe23:4567:890a",
    "metadata at 169.254.169.254, CGNAT 100.64.0.1, mask 255.255.255.0, mDNS 224.0.0.251",
    "<EMAIL> [NAME] {{phone}} <PHONE_1> *** [ORDER_ID] ${API_KEY} %EMAIL% <IP_ADDRESS> [REDACTED]",
    "card on file: XXXX-XXXX-XXXX-1234 or **** **** **** 4242, key sk-... or sk_live_****",
    "commit a08210d5a5a3e4d0025068cd4ba771263200e2b2 fixed it",
    "request_id=1aca29b0-3c59-40a9-a471-56a2c1e6746c and {5a2313fc-d54c-47fa-aeb7-ed787ad3125f}",
    "md5 0cc175b9c0f1b6a831c399e269772661, sha256 0c9d4714d89ee55adb811f329964849b7e12eb0bda1de7e72403e1d5d9f89c97",
    "integrity sha512-XRcglhh3p2lHAu4gFg75i5owZ3/uttIZh11iKj+W2fqc4Iu8OvwIHkDSftaw4gURo0WA2fT2oguwTa4HChLwJw==",
    "is IMEI 35-209900-176148-1 blocked? and IMEI 490154203237518?",
    "my order 4789 5454 3794 3817 still says processing",
    '{"order_id": "5590-9952-8265-8745"}',
    "the course book is ISBN 9784409868874, or ISBN 0-306-40615-2",
    "after upgrading to 4.2.1.8 nothing starts; firmware 81.12.3.40 only",
    "I get 123-45-6789 when I try; routing 021000021",
    "the error happened at 1773480413 on 2026-03-14T09:26:53Z, 14.03.2026",
    "ORD-2026-004817, INV-2026-000123, W1234567890, #100238475, 112-4839201-5567830",
    "prices $1,299.99, 1.234.567,89 EUR, ₹2,49,999 and CHF 3'450.00",
    "versions 10.0.19045.3693, Chrome 126.0.6478.127, Python 3.11.7",
    "math 4111*1111, (415 - 555) * 2671, 12345 + 67890 = 80235, 2^64 = 18446744073709551616",
    "the number of users grew from 2 000 to 15 000 000",
    "Copyright (C) 2008-2011; Boston, MA 02110-1301",
    "class PPDocLayoutV4MultiscaleDeformableAttention and 0123456789ABCDEFGHJKMNPQRSTVWXYZ",
    "pwd = os.getcwd(); password = ${DB_PASSWORD}",
    "tracking number 7489 2183 4421, Carrier reference: 0150 1234 5678 90",
    "0.340359081555988 and 13.4556900439941",
]


@pytest.mark.parametrize("text", NOT_PII)
def test_lookalikes_are_not_hits(text: str) -> None:
    """Private and documentation addresses, placeholders, hashes, ids, versions, dates, prices and code."""
    assert hits(text) == []


def test_a_bare_nine_digit_number_is_an_ssn_only_next_to_ssn_words() -> None:
    assert hits("it is 573737034") == []
    assert hits("it is 573737034", context="What is your SSN?") == [("us_ssn", "573737034")]
    scanned = pii.scan((Message("assistant", "Can you confirm your social security number?"), *user("573737034")))
    assert [(f.message, f.kind) for f in scanned] == [(1, "us_ssn")]


def test_weak_checksum_ids_need_their_keyword() -> None:
    """An NHS number, BSN or compact CPF passes its checksum by chance once in 11 or 100 numbers: without its word,
    a ten-digit epoch or an order number would be flagged."""
    assert hits("it is 9434765919") == []
    assert hits("NHS 9434765919") == [("national_id", "9434765919")]
    assert hits("ok 39053344705") == []
    assert hits("CPF 39053344705") == [("national_id", "39053344705")]


def test_a_luhn_number_without_an_issuer_prefix_is_not_a_card() -> None:
    number = luhn_complete("957960758005352")
    assert hits(f"where is {number[:4]} {number[4:8]} {number[8:12]} {number[12:]}?") == []
    assert hits("pay with " + luhn_complete("411111111111111")) == [("payment_card", "4111111111111111")]


def test_a_card_label_outweighs_an_order_label() -> None:
    assert hits("for the order use card 4111 1111 1111 1111") == [("payment_card", "4111 1111 1111 1111")]


def test_a_card_next_to_other_numbers_is_still_found() -> None:
    text = "paid 12 4111 1111 1111 1111 77 times"
    assert any(kind == "payment_card" and "4111 1111 1111 1111" in found for kind, found in hits(text))


# --- offsets map back to the original text ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "value"),
    [
        ("ﬁne, card ", "\u3000".join(wide(g) for g in ("4111", "1111", "1111", "1111"))),
        ("e\u0301e\u0301 mail ", "dev.\u200bops_42@example.org"),
        ("① ② ③ ", wide("mina.park@example.com")),
        ("call ", "+\u20604420\u200c79460123"),
        ("SSN ", wide("217-61-8225")),
        ("IBAN ", "DE63 \ufeff2189 877\u200d5 \u200b6424 0694 60"),
        ("Aadhaar ", "".join(chr(0x660 + int(d)) for d in "234123412346")),
    ],
)
def test_offsets_point_into_the_original_text(prefix: str, value: str) -> None:
    """Ligatures that expand, combining marks, full-width forms, zero-width characters and other scripts' digits
    before or inside the value: the hit still spans exactly the value as written."""
    text = f"{prefix}{value} thanks"
    found = pii.detect(text)
    assert [(h.start, h.end) for h in found] == [(len(prefix), len(prefix) + len(value))]


# --- conversations: split values, placeholders ------------------------------------------------------------------------


def test_a_value_split_over_two_user_turns_is_found_on_both() -> None:
    conversation = user("my card is 4111 1111", "1111 1111 sorry, hit enter too early")
    assert all(pii.detect(m.text) == [] for m in conversation)
    found = pii.scan(conversation)
    assert [(f.message, f.kind, f.joined) for f in found] == [(0, "payment_card", 1), (1, "payment_card", 0)]
    assert conversation[0].text[found[0].start : found[0].end] == "4111 1111"
    assert conversation[1].text[found[1].start : found[1].end] == "1111 1111"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("it's j.okafor@", "example.com"),
        ("ok CPF: 346.211.", "859-50"),
        ("token: 2338bb88811f460c7d02", "7c815ee0e7996b1f0bcb"),
    ],
)
def test_a_split_value_across_an_assistant_turn_is_found(first: str, second: str) -> None:
    conversation = (Message("user", first), Message("assistant", "I think it got cut off"), Message("user", second))
    assert {(f.message, f.joined) for f in pii.scan(conversation)} == {(0, 2), (2, 0)}


def test_words_at_a_turn_boundary_are_not_joined_into_a_value() -> None:
    """A complete e-mail at the end of one turn and a word starting the next must not fuse into a longer one."""
    conversation = user("write to a.b@example.com", "for the invoice please")
    assert [(f.message, f.joined) for f in pii.scan(conversation)] == [(0, None)]


def test_the_same_value_keeps_its_placeholder_and_others_get_new_ones() -> None:
    conversation = (
        Message("user", "mail me at Mara@Example.com or mara [at] example [dot] com"),
        Message("assistant", "Noted mara@example.com. Your other address, ops@example.org?"),
        Message("user", "yes, and call +44 20 7946 0958 or 020 7946 0958"),
    )
    redacted = pii.redact(conversation)
    assert [m.text for m in redacted.messages] == [
        "mail me at <EMAIL_1> or <EMAIL_1>",
        "Noted <EMAIL_1>. Your other address, <EMAIL_2>?",
        "yes, and call <PHONE_1> or <PHONE_1>",
    ]
    assert redacted.counts == {"email": 4, "phone": 2}
    assert [m.role for m in redacted.messages] == ["user", "assistant", "user"]


def test_placeholders_are_numbered_per_conversation() -> None:
    first = pii.redact(user("a@example.com", "b@example.com"))
    second = pii.redact(user("b@example.com"))
    assert [m.text for m in first.messages] == ["<EMAIL_1>", "<EMAIL_2>"]
    assert [m.text for m in second.messages] == ["<EMAIL_1>"]


def test_new_placeholders_never_reuse_a_number_already_in_the_log() -> None:
    redacted = pii.redact(user("earlier it was <EMAIL_1>", "now it is c@example.com"))
    assert redacted.messages[1].text == "now it is <EMAIL_2>"


def test_both_parts_of_a_split_value_get_its_placeholder_and_it_counts_once() -> None:
    redacted = pii.redact(user("my IBAN is DE89 3704 0044", "0532 0130 00 thanks", "again: DE89370400440532013000"))
    assert [m.text for m in redacted.messages] == ["my IBAN is <IBAN_1>", "<IBAN_1> thanks", "again: <IBAN_1>"]
    assert redacted.counts == {"iban": 2}
    assert pii.counts(redacted.findings) == {"iban": 2}


def test_tool_call_stubs_keep_their_flag() -> None:
    redacted = pii.redact((Message("assistant", "", has_tool_calls=True), Message("tool", "ip 81.2.69.142")))
    assert redacted.messages == (Message("assistant", "", True), Message("tool", "ip <IP_1>"))


# --- what reports can hold --------------------------------------------------------------------------------------------


def test_no_value_appears_in_hits_findings_or_counts() -> None:
    values = ["4111111111111111", "a.person@example.com", "415-75-7723", "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"]
    conversation = user(*(f"here: {v}" for v in values))
    reports = [repr(pii.detect(m.text)) for m in conversation]
    reports += [repr(pii.scan(conversation)), repr(pii.redact(conversation).findings), repr(pii.counts([]))]
    reports.append(repr(pii.redact(conversation)))
    for value in values:
        pieces = {value[i : i + 5] for i in range(len(value) - 4)}
        assert not any(piece in report for piece in pieces for report in reports)


def test_counts_are_by_kind_in_a_fixed_order() -> None:
    found = pii.scan(user("call 020 7946 0958, mail a@example.com, card 4111111111111111, b@example.com"))
    assert list(pii.counts(found).items()) == [("email", 2), ("phone", 1), ("payment_card", 1)]


# --- failing closed ---------------------------------------------------------------------------------------------------


def test_an_error_inside_a_validator_is_not_swallowed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A caller sends nothing when the guard raises; a guard that caught its own errors would pass text unchecked."""
    import phonenumbers

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("metadata missing")

    monkeypatch.setattr(phonenumbers, "parse", broken)
    with pytest.raises(RuntimeError, match="metadata missing"):
        pii.detect("call 020 7946 0958")


def test_importing_the_module_loads_no_validator_library() -> None:
    code = "import sys, utg_pytest.pii; print(sorted(m for m in ('phonenumbers', 'stdnum') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("unit", ["1-", "1 ", "1.", "1\n", "a@", "x at ", "aB3+", "1:", "4111 ", "(1) "])
def test_pathological_input_costs_linear_time(unit: str) -> None:
    """30,000 characters of one repeated pattern (about 0.1 s each): a backtracking regex or a quadratic scan would
    take minutes."""
    started = time.perf_counter()
    pii.detect(unit * (30_000 // len(unit)))
    assert time.perf_counter() - started < 2


# --- properties -------------------------------------------------------------------------------------------------------

FILLER = st.text(
    alphabet=st.sampled_from("abcdefghij XYZ 0123456789 .,:;!?-_/()@#\n\u00e9\u00a0\u200b\uff11"), max_size=60
)
LABEL_BEFORE = re.compile(r"(?i)(order|invoice|imei|isbn|issn|tracking|ticket|ref|serial|receipt|txn)\W*$")


@st.composite
def cards(draw: st.DrawFn) -> str:
    prefix = draw(st.sampled_from(["4", "51", "55", "2221", "2720", "34", "37", "6011", "65", "3530", "62"]))
    length = 15 if prefix in ("34", "37") else draw(st.sampled_from([16, 19])) if prefix in ("4", "62") else 16
    body = draw(st.text(alphabet="0123456789", min_size=length - len(prefix) - 1, max_size=length - len(prefix) - 1))
    number = luhn_complete(prefix + body)
    separator = draw(st.sampled_from(["", " ", "-", "."]))
    groups = [number[:4], number[4:10], number[10:]] if length == 15 else re.findall(".{1,4}", number)
    return separator.join(groups)


@settings(max_examples=150, deadline=None)
@given(before=FILLER, card=cards(), after=FILLER)
def test_a_planted_card_anywhere_is_found_and_covered(before: str, card: str, after: str) -> None:
    assume(not LABEL_BEFORE.search(before))
    text = f"{before} {card} {after}"
    start = len(before) + 1
    assert any(
        h.kind == "payment_card" and h.start <= start and start + len(card) <= h.end for h in pii.detect(text)
    ), text


PLANTS = [
    "4111 1111 1111 1111",
    "a.b+c@example.com",
    "x (at) example (dot) org",
    "+44 20 7946 0958",
    "DE89370400440532013000",
    "81.2.69.142",
    "415-75-7723",
    "AKIAIOSFODNN7EXAMPLE",
    "my card is 4111 1111",
    "1111 1111",
    "<EMAIL_1>",
]


@st.composite
def conversations(draw: st.DrawFn) -> tuple[Message, ...]:
    texts = draw(st.lists(st.lists(st.one_of(FILLER, st.sampled_from(PLANTS)), max_size=5).map(" ".join), max_size=5))
    return tuple(Message(draw(st.sampled_from(["user", "assistant", "tool"])), t) for t in texts)


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(conversation=conversations())
def test_redaction_is_idempotent_and_leaves_nothing_to_find(conversation: tuple[Message, ...]) -> None:
    once = pii.redact(conversation)
    assert pii.scan(once.messages) == []
    assert pii.redact(once.messages).messages == once.messages


@settings(max_examples=120, deadline=None)
@given(conversation=conversations())
def test_findings_are_sorted_disjoint_spans_inside_their_messages(conversation: tuple[Message, ...]) -> None:
    found = pii.scan(conversation)
    for f in found:
        assert 0 <= f.start < f.end <= len(conversation[f.message].text)
        assert f.kind in pii.KINDS
    for f, g in itertools.pairwise(found):
        assert (f.message, f.end) <= (g.message, g.start)


# --- the shipped corpus and fixtures ----------------------------------------------------------------------------------


def read(name: str) -> list[dict[str, Any]]:
    with (CORPUS / name).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def corpus_detections(conversations: list[dict[str, Any]]) -> dict[tuple[str, int, str], list[pii.Hit]]:
    """Detections per (conversation, message, field): scan() over the contents, detect() over tool-call
    arguments, as benchmarks/pii.py scores them."""
    found: dict[tuple[str, int, str], list[pii.Hit]] = {}
    for c in conversations:
        messages = tuple(Message(m["role"], m.get("content") or "") for m in c["messages"])
        for f in pii.scan(messages):
            found.setdefault((c["id"], f.message, "content"), []).append(pii.Hit(f.kind, f.start, f.end, f.rule))
        for index, m in enumerate(c["messages"]):
            for call in m.get("tool_calls") or []:
                key = (c["id"], index, "tool_calls[0].function.arguments")
                found.setdefault(key, []).extend(pii.detect(call["function"]["arguments"]))
    return found


def overlapped(
    found: dict[tuple[str, int, str], list[pii.Hit]], key: tuple[str, int, str], start: int, end: int
) -> bool:
    return any(h.start < end and start < h.end for h in found.get(key, []))


def test_recall_on_the_planted_corpus_is_at_least_99_percent_per_structured_kind() -> None:
    found = corpus_detections(read("planted.jsonl"))
    recall: dict[str, list[bool]] = {}
    for row in read("planted_truth.jsonl"):
        parts = row["parts"] if row["start"] is None else [row]
        hit = all(overlapped(found, (row["conversation_id"], p["message_index"], row["field"]), p["start"], p["end"])
                  for p in parts)  # fmt: skip
        recall.setdefault(row["kind"], []).append(hit)
    structured = ("email", "phone", "payment_card", "iban", "ipv4", "ipv6", "us_ssn", "national_id")
    low = {k: f"{sum(v)}/{len(v)}" for k, v in recall.items() if k in structured and sum(v) < 0.99 * len(v)}
    assert low == {}
    assert sum(recall["secret"]) >= 0.95 * len(recall["secret"])


def test_false_positives_on_the_negative_corpus_stay_within_the_measured_bound() -> None:
    """Measured: no negative that is not borderline is flagged; of the 33 borderline ones (context only tells them
    apart), one is: the unlabelled order number 4789 5454 3794 3817, a Luhn-valid Visa-shaped number."""
    found = corpus_detections(read("negatives.jsonl"))
    flagged = Counter[bool]()
    for row in read("negatives_truth.jsonl"):
        key = (row["conversation_id"], row["message_index"], row["field"])
        flagged[row["borderline"]] += overlapped(found, key, row["start"], row["end"])
    assert flagged[False] == 0
    assert flagged[True] <= 1


def test_the_anonymised_fixture_logs_have_no_hits() -> None:
    logs = load(sorted((ROOT / "fixtures" / "logs").glob("*.jsonl")))
    assert [(c.id, f) for c in logs.conversations() for f in pii.scan(c.messages)] == []


def test_random_text_is_rarely_flagged() -> None:
    """Ten thousand characters of random words and numbers of everyday shapes: what the guard flags in ordinary
    chat it costs the model's context, so the rate is bounded (measured 0)."""
    rng = random.Random(7)
    words = ["the", "order", "is", "late", "at", "2 pm", "room", "12", "v1.2.3", "$4.99", "14/03/2026", "ok", "id"]
    text = " ".join(
        rng.choice(words) if rng.random() < 0.8 else str(rng.randrange(10 ** rng.randrange(1, 9))) for _ in range(2500)
    )
    assert hits(text) == []
