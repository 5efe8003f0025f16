"""Verify the planted-PII corpus: parsing, schema, spans, checksums, canonical forms, stray PII, counts.

    python benchmarks/data/pii/check_corpus.py            # exit 1 on any error
    python benchmarks/data/pii/check_corpus.py --counts   # also print the count tables (markdown)

Uses only the standard library plus, when importable, jsonschema (schema check), python-stdnum (independent
re-validation of every checksum) and phonenumbers (is_valid_number for every phone). Missing ones are reported
as skipped, not as passed.
"""

from __future__ import annotations

import argparse
import importlib
import ipaddress
import json
import re
import sys
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pii_formats as pf

HERE = Path(__file__).resolve().parent
SCHEMA = HERE.parents[2] / "schemas" / "conversation.schema.json"

KINDS = {"email", "phone", "payment_card", "iban", "ipv4", "ipv6", "us_ssn", "national_id", "secret"}
HARDS = {
    None,
    "split_turns",
    "split_turns_gap",
    "line_break",
    "zero_width",
    "fullwidth",
    "nbsp",
    "case_variant",
    "message_start",
    "message_end",
    "whole_message",
    "punctuation",
    "quotes",
    "json",
    "code",
    "url",
    "tool_call_args",
    "obfuscated",
}
CARD_RULES = {  # brand -> (prefix regex, allowed lengths)
    "visa": (r"4", {13, 16, 19}),
    "mastercard": (r"5[1-5]", {16}),
    "mastercard_2series": (r"2(?:22[1-9]|2[3-9]\d|[3-6]\d\d|7[01]\d|720)", {16}),
    "amex": (r"3[47]", {15}),
    "discover": (r"6(?:011|4[4-9]|5|22(?:12[6-9]|1[3-9]\d|[2-8]\d\d|9[01]\d|92[0-5]))", {16, 19}),
    "jcb": (r"35(?:2[89]|[3-8]\d)", {16, 19}),
    "maestro": (r"(?:5018|5020|5038|5893|6304|6759|676[1-3])", {12, 13, 14, 15, 16, 17, 18, 19}),
    "diners": (r"3(?:0[0-5]|[689])", {14}),
    "unionpay": (r"62", {16, 17, 18, 19}),
}
IBAN_LEN = {"DE": 22, "GB": 22, "FR": 27, "NL": 18, "ES": 24}
SECRET_RE = {
    "openai_key": r"sk-(?:proj-)?[A-Za-z0-9_-]{20,}T3BlbkFJ[A-Za-z0-9_-]{20,}",
    "github_token": r"(?:gh[pousr]_[A-Za-z0-9]{36}|github_pat_[A-Za-z0-9]{22}_[A-Za-z0-9]{59})",
    "aws_access_key_id": r"AKIA[A-Z2-7]{16}",
    "aws_secret_access_key": r"[A-Za-z0-9/+]{40}",
    "slack_token": r"xox[bp]-\d{10,13}-\d{10,13}(?:-\d{10,13})?-[A-Za-z0-9]{24,32}",
    "stripe_key": r"sk_live_[A-Za-z0-9]{24,}",
    "google_api_key": r"AIza[A-Za-z0-9_-]{35}",
    "jwt": r"eyJ[A-Za-z0-9_-]+\.eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+",
    "private_key_pem": r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]+-----END [A-Z ]*PRIVATE KEY-----",
    "credential_url": r"[a-z][a-z0-9+.-]*://[^\s:@/]+:[^\s@/]+@[^\s/]+\S*",
    "generic_token": r"[A-Za-z0-9+/_=-]{32,}",
}


def optional(name: str) -> Any:
    try:
        return importlib.import_module(name)
    except ImportError:
        return None


stdnum = {
    n: optional(f"stdnum.{n}")
    for n in [
        "luhn",
        "iban",
        "us.ssn",
        "gb.nhs",
        "es.dni",
        "es.nie",
        "fr.nir",
        "in_.aadhaar",
        "in_.pan",
        "br.cpf",
        "de.idnr",
        "it.codicefiscale",
        "nl.bsn",
        "verhoeff",
        "isbn",
        "imei",
    ]
}
phonenumbers = optional("phonenumbers")
jsonschema = optional("jsonschema")

errors: list[str] = []
skipped: Counter[str] = Counter()
crosschecked: Counter[str] = Counter()
own_rules_only: Counter[str] = Counter()  # kinds python-stdnum has no module for


def err(msg: str) -> None:
    errors.append(msg)


def load(path: Path) -> list[dict[str, Any]]:
    rows = []
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as e:
                err(f"{path.name}:{n}: not JSON: {e}")
    return rows


def field_text(conv: dict[str, Any], idx: int, fieldname: str) -> str:
    msg = conv["messages"][idx]
    if fieldname == "content":
        return str(msg["content"])
    m = re.fullmatch(r"tool_calls\[(\d+)\]\.function\.arguments", fieldname)
    if not m:
        raise KeyError(fieldname)
    return str(msg["tool_calls"][int(m.group(1))]["function"]["arguments"])


# ---------------------------------------------------------------- per-kind validity
def stdnum_check(mod: str, value: str) -> None:
    m = stdnum.get(mod)
    if m is None:
        skipped[f"stdnum.{mod}"] += 1
        return
    crosschecked[f"stdnum.{mod}"] += 1
    if not m.is_valid(value):
        err(f"stdnum.{mod} rejects {value!r}")


NAT = {
    "uk_nino": (pf.uk_nino_ok, None),
    "uk_nhs": (pf.uk_nhs_ok, "gb.nhs"),
    "es_dni": (pf.es_dni_ok, "es.dni"),
    "es_nie": (pf.es_nie_ok, "es.nie"),
    "fr_nir": (pf.fr_nir_ok, "fr.nir"),
    "in_aadhaar": (pf.in_aadhaar_ok, "in_.aadhaar"),
    "in_pan": (pf.in_pan_ok, "in_.pan"),
    "br_cpf": (pf.br_cpf_ok, "br.cpf"),
    "de_idnr": (pf.de_idnr_ok, "de.idnr"),
    "it_codicefiscale": (pf.it_cf_ok, "it.codicefiscale"),
    "nl_bsn": (pf.nl_bsn_ok, "nl.bsn"),
}


def validate_planted(row: dict[str, Any]) -> None:
    kind, sub, norm, value = row["kind"], row["subkind"], row["normalized"], row["value"]
    where = f"{row['conversation_id']}[{row['message_index']}] {kind}/{sub} {value!r}"
    if kind == "email":
        if pf.canon_email(value) != norm.lower():
            err(f"{where}: canonical form {pf.canon_email(value)!r} != normalized {norm!r}")
        if not re.fullmatch(r"[^\s@]+@[^\s@]+\.[^\s@.]{2,}", norm):
            err(f"{where}: normalized e-mail malformed")
        domain = norm.split("@")[1]
        try:
            ace = domain.encode("idna").decode()
        except UnicodeError:
            err(f"{where}: domain not IDNA-encodable")
            return
        tld = ace.rsplit(".", 1)[1]
        reserved = re.search(r"(^|\.)example\.(com|org|net)$", ace) or tld in ("example", "test", "invalid")
        reserved = reserved or tld.startswith("xn--")  # IANA IDN test TLDs (.испытание, .测试, ...)
        if not reserved:
            err(f"{where}: domain {domain} is not a reserved/documentation domain")
    elif kind == "phone":
        if phonenumbers is None:
            skipped["phonenumbers"] += 1
            return
        text = pf.strip_invisible(value).replace("\n", " ")
        n = phonenumbers.parse(text, row["region"])
        crosschecked["phonenumbers"] += 1
        e164 = phonenumbers.format_number(n, phonenumbers.PhoneNumberFormat.E164)
        if not phonenumbers.is_valid_number(n):
            err(f"{where}: phonenumbers says not valid")
        if row["region"] != phonenumbers.region_code_for_number(n):
            err(f"{where}: region {row['region']} != {phonenumbers.region_code_for_number(n)}")
        if e164 != norm:
            err(f"{where}: E.164 {e164} != normalized {norm}")
    elif kind == "payment_card":
        if pf.canon_digits(value) != norm:
            err(f"{where}: digits {pf.canon_digits(value)} != {norm}")
        if not pf.luhn_ok(norm):
            err(f"{where}: Luhn fails")
        prefix, lengths = CARD_RULES[sub]
        if not re.match(prefix, norm) or len(norm) not in lengths:
            err(f"{where}: {sub} prefix/length rule fails")
        stdnum_check("luhn", norm)
    elif kind == "iban":
        if pf.canon_alnum(value) != norm:
            err(f"{where}: canonical {pf.canon_alnum(value)} != {norm}")
        if not pf.iban_ok(norm) or IBAN_LEN.get(norm[:2]) != len(norm):
            err(f"{where}: mod-97 or length fails")
        stdnum_check("iban", norm)
    elif kind in ("ipv4", "ipv6"):
        text = pf.strip_invisible(value)
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            err(f"{where}: not an IP address")
            return
        if ip.version != int(kind[-1]) or not pf.ip_public(text):
            err(f"{where}: wrong version or not public")
        if str(ip) != str(ipaddress.ip_address(norm)):
            err(f"{where}: != normalized")
    elif kind == "us_ssn":
        if pf.canon_digits(value) != norm or not pf.us_ssn_ok(norm):
            err(f"{where}: SSN rule fails")
        stdnum_check("us.ssn", norm)
    elif kind == "national_id":
        ok, mod = NAT[sub]
        canon = pf.canon_alnum(value)
        if canon != norm.upper():
            err(f"{where}: canonical {canon} != {norm}")
        if not ok(norm):
            err(f"{where}: checksum/rule fails")
        if mod:
            stdnum_check(mod, norm)
        else:
            own_rules_only[sub] += 1
    elif kind == "secret":
        canon = pf.canon_secret(value)
        if canon != norm:
            err(f"{where}: canonical secret != normalized")
        if not re.fullmatch(SECRET_RE[sub], norm):
            err(f"{where}: does not match the {sub} shape")
        if sub == "github_token" and norm[:4] in ("ghp_", "gho_"):
            rnd, tail = norm[4:34], norm[34:]
            if pf.base62(zlib.crc32(rnd.encode()), 6) != tail:
                err(f"{where}: CRC32 tail wrong")
        if sub == "jwt" and not pf.jwt_parts_ok(norm):
            err(f"{where}: JWT does not decode")
        if sub == "private_key_pem" and not pf.pem_ok(norm):
            err(f"{where}: PEM key does not verify")
        if sub == "credential_url" and not pf.cred_url_ok(norm):
            err(f"{where}: URL has no user:password")
        if sub in ("generic_token", "aws_secret_access_key"):
            hexy = re.fullmatch(r"[0-9a-f]+", norm)
            limit = 3.0 if hexy else 4.5
            if pf.shannon(norm) < limit:
                err(f"{where}: entropy {pf.shannon(norm):.2f} below {limit}")
    else:
        err(f"{where}: unknown kind")


# ---------------------------------------------------------------- stray-PII sweep
SWEEP = [
    ("email", re.compile(r"[\w.+'%-]+(?:@|%40)[\w-]+(?:\.[\w-]+)+")),
    ("luhn_run", re.compile(r"(?<![\w.])\d(?:[ \-.]?\d){12,18}(?![\w])")),
    ("iban", re.compile(r"\b[A-Za-z]{2}\d{2}(?: ?[A-Za-z0-9]{4}){2,7}(?: ?[A-Za-z0-9]{1,4})?\b")),
    ("ipv4", re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")),
    ("ssn", re.compile(r"\b\d{3}-\d{2}-\d{4}\b")),
    ("secret", re.compile(r"(?:sk-|sk_live_|ghp_|gho_|github_pat_|AKIA|xox[bp]-|AIza|eyJ)[\w\-.]{10,}|-----BEGIN")),
]


def sweep_hits(text: str) -> list[tuple[str, int, int, str]]:
    hits = []
    for name, rx in SWEEP:
        for m in rx.finditer(text):
            s = m.group(0)
            if name == "luhn_run" and not pf.luhn_ok(re.sub(r"\D", "", s)):
                continue
            if name == "iban" and not pf.iban_ok(re.sub(r"\s", "", s).upper()):
                continue
            if name == "ipv4":
                try:
                    if not pf.ip_public(s):
                        continue
                except ValueError:
                    continue
            if name == "ssn" and not pf.us_ssn_ok(s):
                continue
            hits.append((name, m.start(), m.end(), s))
    return hits


def spans_by_field(truth: list[dict[str, Any]]) -> dict[tuple[str, int, str], list[tuple[int, int, dict[str, Any]]]]:
    out: dict[tuple[str, int, str], list[tuple[int, int, dict[str, Any]]]] = {}
    for t in truth:
        if t["start"] is None:
            for p in t["parts"]:
                out.setdefault((t["conversation_id"], p["message_index"], t["field"]), []).append(
                    (p["start"], p["end"], t)
                )
        else:
            out.setdefault((t["conversation_id"], t["message_index"], t["field"]), []).append((t["start"], t["end"], t))
    return out


def all_fields(conv: dict[str, Any]) -> list[tuple[int, str, str]]:
    out = []
    for i, m in enumerate(conv["messages"]):
        out.append((i, "content", str(m.get("content") or "")))
        for k, tc in enumerate(m.get("tool_calls") or []):
            out.append((i, f"tool_calls[{k}].function.arguments", tc["function"]["arguments"]))
    return out


# ---------------------------------------------------------------- file checks
def check_conversations(name: str, convs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    validator = None
    if jsonschema is not None and SCHEMA.exists():
        validator = jsonschema.Draft202012Validator(json.loads(SCHEMA.read_text()))
    else:
        skipped["jsonschema"] += 1
    by_id: dict[str, dict[str, Any]] = {}
    for c in convs:
        if c["id"] in by_id:
            err(f"{name}: duplicate id {c['id']}")
        by_id[c["id"]] = c
        if validator is not None:
            for e in validator.iter_errors(c):
                err(f"{name}: {c['id']}: schema: {e.message}")
        for m in c["messages"]:
            for tc in m.get("tool_calls") or []:
                json.loads(tc["function"]["arguments"])  # arguments must be a JSON string
    return by_id


def check_span(by_id: dict[str, dict[str, Any]], row: dict[str, Any], idx: int, s: int, e: int, text: str) -> None:
    conv = by_id.get(row["conversation_id"])
    if conv is None:
        err(f"truth row for unknown conversation {row['conversation_id']}")
        return
    got = field_text(conv, idx, row["field"])[s:e]
    if got != text:
        err(f"{row['conversation_id']}[{idx}] span {s}:{e} is {got!r}, truth says {text!r}")


def check_planted(by_id: dict[str, dict[str, Any]], truth: list[dict[str, Any]]) -> None:
    for row in truth:
        if row["kind"] not in KINDS:
            err(f"unknown kind {row['kind']}")
        if row["hard"] not in HARDS:
            err(f"unknown hard case {row['hard']}")
        if row["start"] is None:
            parts = row.get("parts") or []
            if len(parts) != 2 or not row.get("note"):
                err(f"{row['conversation_id']}: split value needs 2 parts and a note")
            for p in parts:
                check_span(by_id, row, p["message_index"], p["start"], p["end"], p["text"])
            idxs = [p["message_index"] for p in parts]
            gap = idxs[1] - idxs[0]
            if gap != (1 if row["hard"] == "split_turns" else 2):
                err(f"{row['conversation_id']}: split parts are {gap} messages apart")
            joined = "" if row["kind"] in ("email", "secret") or parts[0]["text"].endswith(("-", ".")) else " "
            if row["value"] != joined.join(p["text"] for p in parts):
                err(f"{row['conversation_id']}: split value != joined parts")
        else:
            check_span(by_id, row, row["message_index"], row["start"], row["end"], row["value"])
            content = field_text(by_id[row["conversation_id"]], row["message_index"], row["field"])
            if row["hard"] in ("message_start", "whole_message") and row["start"] != 0:
                err(f"{row['conversation_id']}: {row['hard']} value not at offset 0")
            if row["hard"] in ("message_end", "whole_message") and row["end"] != len(content):
                err(f"{row['conversation_id']}: {row['hard']} value not at the end")
            if row["hard"] == "zero_width" and not pf.ZW_RE.search(row["value"]):
                err(f"{row['conversation_id']}: zero_width value has no invisible char")
            if row["hard"] == "fullwidth" and row["value"] == pf.strip_invisible(row["value"]):
                err(f"{row['conversation_id']}: fullwidth value unchanged by NFKC")
            if row["hard"] == "line_break" and "\n" not in row["value"]:
                err(f"{row['conversation_id']}: line_break value has no newline")
            role = by_id[row["conversation_id"]]["messages"][row["message_index"]]["role"]
            if role != row["role"]:
                err(f"{row['conversation_id']}: role {role} != truth {row['role']}")
        validate_planted(row)
    # nothing that looks like PII may sit outside a truth span
    spans = spans_by_field(truth)
    for cid, conv in by_id.items():
        for idx, fieldname, text in all_fields(conv):
            for name, s, e, hit in sweep_hits(text):
                if not any(s < te and ts < e for ts, te, _ in spans.get((cid, idx, fieldname), [])):
                    err(f"planted {cid}[{idx}] {fieldname}: unlabelled {name} {hit!r}")


def check_negatives(by_id: dict[str, dict[str, Any]], truth: list[dict[str, Any]]) -> None:
    sys.path.insert(0, str(HERE))
    from make_corpus import checks_passed

    for row in truth:
        check_span(by_id, row, row["message_index"], row["start"], row["end"], row["value"])
        passes = checks_passed(row["value"])
        if passes != row["passes_checks"]:
            err(f"{row['conversation_id']}: passes_checks {row['passes_checks']} != recomputed {passes}")
        if ("luhn" in passes or "public_ipv4_shape" in passes) and not row["borderline"]:
            err(f"{row['conversation_id']}: {row['value']!r} passes {passes} but is not marked borderline")
        if row["kind"] == "imei":
            if not pf.luhn_ok(pf.canon_digits(row["value"])) or len(pf.canon_digits(row["value"])) != 15:
                err(f"{row['value']!r}: IMEI must be 15 digits passing Luhn")
            stdnum_check("imei", pf.canon_digits(row["value"]))
        if row["kind"] == "isbn":
            stdnum_check("isbn", row["value"])
        if row["kind"] == "non_public_ip":
            addr = row["value"].split("/")[0].split("%")[0]
            if addr.startswith("localhost"):
                continue
            if pf.ip_public(addr):
                err(f"{row['value']!r} is a public address")
    spans = spans_by_field(truth)
    for cid, conv in by_id.items():
        for idx, fieldname, text in all_fields(conv):
            for name, s, e, hit in sweep_hits(text):
                covering = [t for ts, te, t in spans.get((cid, idx, fieldname), []) if s < te and ts < e]
                if not covering:
                    err(f"negatives {cid}[{idx}]: stray {name} {hit!r} outside every listed negative")
                elif not any(t["borderline"] for t in covering):
                    err(f"negatives {cid}[{idx}]: {name} {hit!r} inside a negative not marked borderline")


PHONE_REGIONS = ["US", "GB", "DE", "FR", "IN", "BR", "JP", "AU", "ES", "NL", "IT"]


def phone_collisions(truth: list[dict[str, Any]]) -> list[tuple[str, str, list[str]]]:
    """Negatives that phonenumbers' matcher (leniency VALID) finds as a number in some region: informational."""
    if phonenumbers is None:
        skipped["phonenumbers (negative collisions)"] += 1
        return []
    out, seen = [], set()
    for t in truth:
        if t["value"] in seen:
            continue
        seen.add(t["value"])
        regions = [r for r in PHONE_REGIONS if any(True for _ in phonenumbers.PhoneNumberMatcher(t["value"], r))]
        if regions:
            out.append((t["kind"], t["value"], regions))
    return out


def table(title: str, counter: Counter[Any]) -> str:
    lines = [f"| {title} | count |", "|---|---:|"]
    for k, n in sorted(counter.items(), key=lambda kv: (-kv[1], str(kv[0]))):
        lines.append(f"| {k if k is not None else '(none)'} | {n} |")
    lines.append(f"| **total** | **{sum(counter.values())}** |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--counts", action="store_true", help="print markdown count tables")
    ap.add_argument("--strict", action="store_true", help="fail when an optional cross-check had to be skipped")
    args = ap.parse_args()
    planted = check_conversations("planted.jsonl", load(HERE / "planted.jsonl"))
    ptruth = load(HERE / "planted_truth.jsonl")
    negs = check_conversations("negatives.jsonl", load(HERE / "negatives.jsonl"))
    ntruth = load(HERE / "negatives_truth.jsonl")
    check_planted(planted, ptruth)
    check_negatives(negs, ntruth)
    if len(ptruth) < 320:
        err(f"only {len(ptruth)} planted values (need >= 320)")
    if len(ntruth) < 200:
        err(f"only {len(ntruth)} negatives (need >= 200)")
    kinds = Counter(t["kind"] for t in ptruth)
    print(
        f"planted: {len(planted)} conversations, {len(ptruth)} values; "
        f"negatives: {len(negs)} conversations, {len(ntruth)} values "
        f"({sum(t['borderline'] for t in ntruth)} borderline)"
    )
    print("per kind:", dict(sorted(kinds.items())))
    print("cross-checked:", dict(crosschecked))
    if own_rules_only:
        print("checked with this corpus's own rules only (no stdnum module):", dict(own_rules_only))
    if skipped:
        print("SKIPPED (not verified):", dict(skipped))
    if args.counts:
        print()
        print(table("kind", kinds))
        print()
        print(table("kind / subkind", Counter(f"{t['kind']} / {t['subkind']}" for t in ptruth)))
        print()
        print(table("hard case", Counter(t["hard"] for t in ptruth)))
        print()
        print(table("role", Counter(t["role"] for t in ptruth)))
        print()
        print(table("field", Counter(t["field"] for t in ptruth)))
        print()
        print(table("kind / format", Counter(f"{t['kind']} / {t['format']}" for t in ptruth)))
        print()
        print(table("negative kind", Counter(t["kind"] for t in ntruth)))
        print()
        print(table("borderline negative kind", Counter(t["kind"] for t in ntruth if t["borderline"])))
        print()
        coll = phone_collisions(ntruth)
        print(f"negatives that phonenumbers.PhoneNumberMatcher (VALID) matches in some region: {len(coll)}")
        for kind, value, regions in coll:
            print(f"- {kind}: `{value}` ({', '.join(regions)})")
    if args.strict and skipped:
        err(f"--strict: skipped checks {sorted(skipped)}")
    for e in errors:
        print("ERROR:", e)
    print(f"{len(errors)} errors")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
