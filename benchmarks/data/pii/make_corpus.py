"""Generate the planted-PII benchmark corpus and its hard negatives (deterministic, standard library only).

    python benchmarks/data/pii/make_corpus.py      # rewrites the six data files next to this script
    python benchmarks/data/pii/check_corpus.py     # verifies them

Every planted value is format-valid (Luhn, mod-97, Verhoeff, ...) but fictional: reserved e-mail domains,
drama/fictional phone ranges where libphonenumber accepts them, published test card numbers and random
values elsewhere. The texts are templates written for this corpus.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import math
import random
import re
import string
import sys
import uuid
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pii_formats as pf

HERE = Path(__file__).resolve().parent
SEED = 20260822
rng = random.Random(SEED)

NBSP_CHARS = ["\u00a0", "\u202f", "\u2009"]
ZW_CHARS = ["\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"]


# ====================================================================== planted values
@dataclass
class V:
    kind: str
    subkind: str
    text: str  # as written (after hard-case transforms)
    norm: str  # canonical value the checksum is computed on
    fmt: str
    hard: str | None = None
    role: str | None = None
    region: str | None = None  # phones: region to parse national formats with
    note: str | None = None
    pieces: list[str] = field(default_factory=list)  # split values
    joiner: str = " "
    label: str = ""


def rand_digits(n: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(n))


def rand_str(alphabet: str, n: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(n))


def group(s: str, sizes: list[int], sep: str) -> str:
    out, i = [], 0
    for n in sizes:
        out.append(s[i : i + n])
        i += n
    if i < len(s):
        out.append(s[i:])
    return sep.join(x for x in out if x)


# ---------------------------------------------------------------- e-mail
def emails() -> list[V]:
    E = []

    def add(text: str, norm: str, fmt: str, hard: str | None = None) -> None:
        E.append(V("email", fmt, text, norm.lower(), fmt, hard=hard))

    for local, dom in [
        ("mara.lindqvist", "example.com"),
        ("tkowalski", "example.org"),
        ("priya.raman", "example.net"),
        ("j.okafor", "example.com"),
        ("sean.o'neill", "example.com"),
        ("hr-payroll", "example.org"),
        ("Lukas.Brandt", "Example.com"),
        ("a_nakamura", "example.net"),
        ("camille.roux", "example.com"),
        ("dev.ops_42", "example.org"),
    ]:
        add(f"{local}@{dom}", f"{local}@{dom}", "plain")
    for local, dom in [
        ("dana+billing", "example.com"),
        ("rui.costa+newsletter", "example.org"),
        ("m.haddad+tickets", "example.net"),
        ("ines+2026", "example.com"),
        ("ops+alerts", "mail.example.org"),
        ("k.mensah+travel", "example.com"),
    ]:
        add(f"{local}@{dom}", f"{local}@{dom}", "plus_addressing")
    for local, dom in [
        ("olga.petrova", "eu.mail.example.com"),
        ("noreply-bookings", "notifications.example.net"),
        ("f.bianchi", "staff.uni.example.org"),
        ("amir.s", "corp.example.com"),
        ("h.tanaka", "jp.support.example.net"),
        ("b.adeyemi", "lagos.office.example.org"),
    ]:
        add(f"{local}@{dom}", f"{local}@{dom}", "subdomain")
    for text, fmt in [
        ("kontakt@m\u00fcller-bau.example", "idn_domain"),
        ("info@b\u00fccherstube.example", "idn_domain"),
        ("jos\u00e9.garc\u00eda@example.com", "idn_local"),
        (
            "\u0438\u0432\u0430\u043d@\u043f\u0440\u0438\u043c\u0435\u0440.\u0438\u0441\u043f\u044b\u0442\u0430\u043d\u0438\u0435",
            "idn_full",
        ),
        ("\u7528\u6237@\u4f8b\u5b50.\u6d4b\u8bd5", "idn_full"),
        ("anna@xn--mller-kva.example", "idn_punycode"),
        ("\u00e7a\u011fla@\u00f6rnek.example", "idn_full"),
    ]:
        add(text, text, fmt)
    for text, norm in [
        ("mara.lind [at] example [dot] com", "mara.lind@example.com"),
        ("r.singh [at] example [dot] net", "r.singh@example.net"),
        ("events [at] mail [dot] example [dot] org", "events@mail.example.org"),
        ("yusuf.demir[at]example[dot]com", "yusuf.demir@example.com"),
        ("leila.n [ at ] example [ dot ] org", "leila.n@example.org"),
    ]:
        add(text, norm, "obfuscated_brackets", "obfuscated")
    for text, norm in [
        ("tkoenig(at)example.org", "tkoenig@example.org"),
        ("a.moreau(at)example(dot)com", "a.moreau@example.com"),
        ("support (at) example (dot) net", "support@example.net"),
        ("wei.zhang(at)example.com", "wei.zhang@example.com"),
    ]:
        add(text, norm, "obfuscated_parens", "obfuscated")
    for text, norm in [
        ("p.okonkwo at example dot com", "p.okonkwo@example.com"),
        ("lars AT example DOT org", "lars@example.org"),
    ]:
        add(text, norm, "obfuscated_words", "obfuscated")
    add("mina.park\uff20example.com", "mina.park@example.com", "fullwidth_at", "fullwidth")
    add(fullwidth("yuki.sato@example.net"), "yuki.sato@example.net", "fullwidth_all", "fullwidth")
    add("kofi.boateng@example.com", "kofi.boateng@example.com", "mailto_markdown", "url")
    add("lena.vogel@example.org", "lena.vogel@example.org", "mailto_markdown", "url")
    add("ana.ruiz%40example.com", "ana.ruiz@example.com", "url_query_encoded", "url")
    add("t.nguyen@example.net", "t.nguyen@example.net", "url_query", "url")
    add("billing@acme-widgets.test", "billing@acme-widgets.test", "reserved_tld")
    add("s.ivanova@clinic.example", "s.ivanova@clinic.example", "reserved_tld")
    return E


def fullwidth(s: str, digits_only: bool = False) -> str:
    out = []
    for ch in s:
        if ch == " ":
            out.append("\u3000" if not digits_only else " ")
        elif "!" <= ch <= "~" and (not digits_only or ch.isdigit()):
            out.append(chr(ord(ch) + 0xFEE0))
        else:
            out.append(ch)
    return "".join(out)


# ---------------------------------------------------------------- phones
PHONES: list[tuple[str, str, str]] = [
    # (as written, region for national formats, format)
    ("(212) 555-0147", "US", "national_parens"),
    ("415.555.0132", "US", "national_dots"),
    ("312-555-0190", "US", "national_dashes"),
    ("+1 (646) 555-0111", "US", "international_parens"),
    ("+1-213-555-0172", "US", "international_dashes"),
    ("1-800-555-0199", "US", "national_tollfree"),
    ("617 555 0188", "US", "national_spaces"),
    ("(202) 555-0176 ext. 12", "US", "extension"),
    ("+1 305 555 0164", "US", "international_spaced"),
    ("+1.503.555.0139", "US", "international_dots"),
    ("020 7946 0321", "GB", "national_spaces"),
    ("0113 496 0555", "GB", "national_spaces"),
    ("0161 496 0782", "GB", "national_spaces"),
    ("+44 113 496 0019", "GB", "international_spaced"),
    ("07400 123456", "GB", "national_mobile"),
    ("+44 7457 123987", "GB", "international_spaced"),
    ("(0117) 496 0123", "GB", "national_parens"),
    ("+44 (0)20 7946 0140", "GB", "trunk_0_in_parens"),
    ("0131 496 0234", "GB", "national_spaces"),
    ("030 12345678", "DE", "national_spaces"),
    ("0151 23456789", "DE", "national_mobile"),
    ("+49 160 98765432", "DE", "international_spaced"),
    ("0049 30 1234567", "DE", "idd_00"),
    ("+49 (0)30 2345 6789", "DE", "trunk_0_in_parens"),
    ("040/123456", "DE", "slash"),
    ("0221-9876543", "DE", "national_dashes"),
    ("01 99 00 45 67", "FR", "national_spaces"),
    ("06 12 34 56 78", "FR", "national_spaces"),
    ("+33 6 45 78 12 90", "FR", "international_spaced"),
    ("07.81.23.45.67", "FR", "national_dots"),
    ("0033 6 98 76 54 32", "FR", "idd_00"),
    ("+33 (0)1 99 00 34 56", "FR", "trunk_0_in_parens"),
    ("01-99-00-12-34", "FR", "national_dashes"),
    ("+91 98765 43210", "IN", "international_spaced"),
    ("+91-99012-34567", "IN", "international_dashes"),
    ("098450 12345", "IN", "national_spaces"),
    ("022 2345 6789", "IN", "national_spaces"),
    ("9123456780", "IN", "national_nospace"),
    ("080-4123-4567", "IN", "national_dashes"),
    ("+55 11 98888-1234", "BR", "international_spaced"),
    ("(11) 91234-5678", "BR", "national_parens"),
    ("(21) 2345-6789", "BR", "national_parens"),
    ("+55 (21) 98765-4321", "BR", "international_parens"),
    ("(31) 99876-5432", "BR", "national_parens"),
    ("090-1234-5678", "JP", "national_dashes"),
    ("03-1234-5678", "JP", "national_dashes"),
    ("+81 90-8765-4321", "JP", "international_dashes"),
    ("080-2345-6789", "JP", "national_dashes"),
    ("06-6123-4567", "JP", "national_dashes"),
    ("+81 80 3456 7812", "JP", "international_spaced"),
    ("+61 491 570 156", "AU", "international_spaced"),
    ("(02) 5550 4321", "AU", "national_parens"),
    ("+34 612 34 56 78", "ES", "international_spaced"),
    ("+31 6 12345678", "NL", "international_spaced"),
    ("+39 02 1234 5678", "IT", "international_spaced"),
    ("+12125550183", "US", "e164_nospace"),
    ("+442079460123", "GB", "e164_nospace"),
    ("+4917612345678", "DE", "e164_nospace"),
    ("+33698123456", "FR", "e164_nospace"),
    ("+919812345670", "IN", "e164_nospace"),
    ("+5521998765432", "BR", "e164_nospace"),
    ("+818034567891", "JP", "e164_nospace"),
    ("+61491570157", "AU", "e164_nospace"),
]


COUNTRY_CODE = {
    "US": "1",
    "GB": "44",
    "DE": "49",
    "FR": "33",
    "IN": "91",
    "BR": "55",
    "JP": "81",
    "AU": "61",
    "ES": "34",
    "NL": "31",
    "IT": "39",
}


def e164(text: str, region: str) -> str:
    """E.164 form of the numbers in PHONES (enough rules for these formats; check_corpus.py re-derives it)."""
    main = text.split("ext")[0].replace("(0)", "")
    digits = pf.canon_digits(main)
    if main.startswith("+"):
        return "+" + digits
    if main.startswith("00"):
        return "+" + digits[2:]
    if region == "US":
        return "+1" + (digits[1:] if len(digits) == 11 else digits)
    if region in ("IT", "ES"):
        return "+" + COUNTRY_CODE[region] + digits
    return "+" + COUNTRY_CODE[region] + (digits[1:] if digits.startswith("0") else digits)


def phones() -> list[V]:
    out = []
    for text, region, fmt in PHONES:
        out.append(V("phone", region.lower(), text, e164(text, region), fmt, region=region))
    return out


# ---------------------------------------------------------------- payment cards
def card(prefix: str, length: int) -> str:
    body = prefix + rand_digits(length - len(prefix) - 1)
    return body + pf.luhn_digit(body)


def card_layout(num: str, brand: str) -> list[int]:
    if brand == "amex":
        return [4, 6, 5]
    if brand == "diners":
        return [4, 6, 4]
    if len(num) == 19:
        return [4, 4, 4, 4, 3]
    if len(num) == 13:
        return [4, 4, 5]
    return [4, 4, 4, 4]


def cards() -> list[V]:
    specs: list[tuple[str, str, str]] = [  # (brand, number, origin)
        ("visa", "4111111111111111", "test"),
        ("visa", "4242424242424242", "test"),
        ("visa", "4012888888881881", "test"),
        ("visa", "4000056655665556", "test"),
        ("visa", "4222222222222", "test"),
        ("mastercard", "5555555555554444", "test"),
        ("mastercard", "5105105105105100", "test"),
        ("mastercard", "5200828282828210", "test"),
        ("mastercard_2series", "2223003122003222", "test"),
        ("mastercard_2series", "2221000000000009", "test"),
        ("amex", "378282246310005", "test"),
        ("amex", "371449635398431", "test"),
        ("discover", "6011111111111117", "test"),
        ("discover", "6011000990139424", "test"),
        ("jcb", "3530111333300000", "test"),
        ("jcb", "3566002020360505", "test"),
        ("diners", "36227206271667", "test"),
    ]
    for prefix, n in [("4", 9), ("51", 1), ("52", 1), ("53", 1), ("54", 2), ("55", 1)]:
        for _ in range(n):
            specs.append(("visa" if prefix == "4" else "mastercard", card(prefix, 16), "random"))
    for prefix in ["2221", "2300", "2499", "2586", "2700", "2720"]:
        specs.append(("mastercard_2series", card(prefix, 16), "random"))
    for prefix in ["34", "37", "37", "34"]:
        specs.append(("amex", card(prefix, 15), "random"))
    for prefix in ["6011", "644", "65", "649"]:
        specs.append(("discover", card(prefix, 16), "random"))
    for prefix in ["3528", "3541", "3589"]:
        specs.append(("jcb", card(prefix, 16), "random"))
    for prefix in ["6759", "5018", "6304", "5020", "6761"]:
        specs.append(("maestro", card(prefix, 19), "random"))
    specs.append(("unionpay", card("62", 19), "random"))
    out = []
    seps = ["", " ", "-"]
    for i, (brand, num, origin) in enumerate(specs):
        sep = seps[i % 3]
        if i in (7, 29):
            sep = "."
        text = group(num, card_layout(num, brand), sep) if sep else num
        sep_name = {"": "nosep", " ": "spaces", "-": "dashes", ".": "dots"}[sep]
        out.append(V("payment_card", brand, text, num, f"{brand}_{len(num)}_{sep_name}", note=origin))
    return out


# ---------------------------------------------------------------- IBAN
FR_RIB = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "12345678912345678923456789")


def fr_bban() -> str:
    bank, branch = rand_digits(5), rand_digits(5)
    acct = rand_digits(10) + rng.choice("0123456789ABCDEFGH")
    key = 97 - (89 * int(bank) + 15 * int(branch) + 3 * int(acct.translate(FR_RIB))) % 97
    return f"{bank}{branch}{acct}{key:02d}"


def es_bban() -> str:
    def dc(s: str) -> str:
        w = [1, 2, 4, 8, 5, 10, 9, 7, 3, 6]
        r = 11 - sum(int(c) * x for c, x in zip(s, w, strict=True)) % 11
        return str({11: 0, 10: 1}.get(r, r))

    bank, office, acct = rand_digits(4), rand_digits(4), rand_digits(10)
    return bank + office + dc("00" + bank + office) + dc(acct) + acct


def ibans() -> list[V]:
    raw = [
        "DE89370400440532013000",
        "GB29NWBK60161331926819",
        "FR1420041010050500013M02606",
        "NL91ABNA0417164300",
        "ES9121000418450200051332",
    ]
    for _ in range(4):
        raw.append(pf.iban_make("DE", rand_digits(18)))
        raw.append(pf.iban_make("GB", rng.choice(["NWBK", "BARC", "LOYD", "MIDL", "HBUK"]) + rand_digits(14)))
        raw.append(pf.iban_make("FR", fr_bban()))
        raw.append(pf.iban_make("NL", rng.choice(["ABNA", "INGB", "RABO", "TRIO", "KNAB"]) + rand_digits(10)))
        raw.append(pf.iban_make("ES", es_bban()))
    out = []
    for i, iban in enumerate(raw):
        grouped = i % 2 == 0
        text = group(iban, [4] * 9, " ") if grouped else iban
        out.append(V("iban", iban[:2].lower(), text, iban, "grouped4" if grouped else "compact"))
    return out


# ---------------------------------------------------------------- IP addresses
def ips() -> list[V]:
    out = []
    firsts = [23, 31, 37, 46, 51, 62, 77, 81, 86, 91, 93, 109, 151, 176, 185, 194, 212]
    while len(out) < 14:
        ip = f"{rng.choice(firsts)}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        if pf.ip_public(ip) and ip not in {v.text for v in out}:
            out.append(V("ipv4", "public", ip, ip, "dotted"))
    prefixes = ["2a02:c7f", "2a01:4f8", "2600:1700", "2605:a601", "2400:4050", "2a00:23c5", "2c0f:f4c0", "2804:14c"]
    six = []
    for pre in prefixes:
        tail = [f"{rng.getrandbits(16):x}" for _ in range(6)]
        six.append(pre + ":" + ":".join(tail))
    fmts = ["full", "full", "compressed", "compressed", "uppercase", "leading_zeros", "compressed", "full"]
    for addr, fmt in zip(six, fmts, strict=True):
        ip = ipaddress.IPv6Address(addr)
        if fmt == "compressed":
            packed = bytearray(ip.packed)
            packed[8:14] = b"\x00" * 6
            text = str(ipaddress.IPv6Address(bytes(packed)))
        elif fmt == "uppercase":
            text = str(ip).upper()
        elif fmt == "leading_zeros":
            text = ip.exploded
        else:
            text = str(ip)
        assert pf.ip_public(text), text
        out.append(V("ipv6", "public", text, str(ipaddress.IPv6Address(text)), fmt))
    out.append(V("ipv6", "public", f"::ffff:{out[3].text}", f"::ffff:{out[3].text}", "ipv4_mapped"))
    out.append(V("ipv6", "public", "2a02:8108:1ac0:51fe::2f", "2a02:8108:1ac0:51fe::2f", "compressed"))
    out.append(V("ipv6", "public", "2001:4ca0:6fff:3::a1", "2001:4ca0:6fff:3::a1", "compressed"))
    out.append(V("ipv6", "public", "2606:4700:3108::ac42:2b07", "2606:4700:3108::ac42:2b07", "compressed"))
    return out


# ---------------------------------------------------------------- SSN and other national ids
def ssns() -> list[V]:
    out = []
    fmts = ["dashes", "dashes", "spaces", "compact", "dashes"]
    while len(out) < 14:
        area = rng.randint(1, 899)
        d = f"{area:03d}{rng.randint(1, 99):02d}{rng.randint(1, 9999):04d}"
        if not pf.us_ssn_ok(d):
            continue
        fmt = fmts[len(out) % len(fmts)]
        text = {"dashes": f"{d[:3]}-{d[3:5]}-{d[5:]}", "spaces": f"{d[:3]} {d[3:5]} {d[5:]}", "compact": d}[fmt]
        out.append(V("us_ssn", "us_ssn", text, d, fmt))
    return out


def nino() -> str:
    while True:
        a, b = rng.choice(pf.NINO_FIRST), rng.choice(pf.NINO_SECOND)
        if a + b not in pf.NINO_BAD_PREFIX:
            return a + b + rand_digits(6) + rng.choice("ABCD")


def nhs() -> str:
    while True:
        p = str(rng.randint(4, 9)) + rand_digits(8)
        c = pf.uk_nhs_digit(p)
        if c is not None:
            return p + c


def dni() -> str:
    n = f"{rng.randint(10_000_000, 99_999_999)}"
    return n + pf.DNI_LETTERS[int(n) % 23]


def nie() -> str:
    p = rng.choice("XYZ")
    n = rand_digits(7)
    return p + n + pf.DNI_LETTERS[int(str("XYZ".index(p)) + n) % 23]


def nir(dept: str | None = None) -> str:
    dept = dept or f"{rng.choice([d for d in range(1, 96) if d != 20]):02d}"
    first = f"{rng.randint(1, 2)}{rng.randint(50, 99):02d}{rng.randint(1, 12):02d}{dept}{rng.randint(1, 990):03d}"
    first += f"{rng.randint(1, 999):03d}"
    return first + pf.fr_nir_key(first)


def aadhaar() -> str:
    while True:
        p = str(rng.randint(2, 9)) + rand_digits(10)
        n = p + pf.verhoeff_digit(p)
        if n != n[::-1]:
            return n


def cpf() -> str:
    p = rand_digits(9)
    return p + pf.br_cpf_digits(p)


def idnr() -> str:
    while True:
        digits = rng.sample(string.digits, 9)
        rep = rng.choice(digits)
        body = digits + [rep] * rng.choice([1, 2])
        body = body[:10] if len(body) > 10 else body
        if len(body) < 10:
            continue
        rng.shuffle(body)
        s = "".join(body)
        if s[0] != "0" and pf.de_idnr_ok(s + pf.mod11_10_digit(s)):
            return s + pf.mod11_10_digit(s)


def codice_fiscale() -> str:
    cons = "BCDFGLMNPRSTVZ"
    sur = rand_str(cons, 2) + rng.choice("AEIOU")
    name = rand_str(cons, 3)
    yy = f"{rng.randint(60, 99):02d}"
    month = rng.choice(pf.CF_MONTHS)
    day = rng.randint(1, 28) + rng.choice([0, 40])
    place = rng.choice(["H501", "F205", "L219", "A944", "F839", "G273"])
    first = f"{sur}{name}{yy}{month}{day:02d}{place}"
    return first + pf.it_cf_char(first)


def bsn() -> str:
    while True:
        p = str(rng.randint(1, 9)) + rand_digits(7)
        c = sum(int(x) * w for x, w in zip(p, range(9, 1, -1), strict=True)) % 11
        if c < 10:
            return p + str(c)


def pan() -> str:
    return (
        rand_str(string.ascii_uppercase, 3)
        + "P"
        + rng.choice(string.ascii_uppercase)
        + rand_digits(4).replace("0000", "1234")
        + rng.choice(string.ascii_uppercase)
    )


def national_ids() -> list[V]:
    out = []

    def add(sub: str, norm: str, text: str, fmt: str) -> None:
        out.append(V("national_id", sub, text, norm, fmt))

    for i in range(8):
        n = nino()
        if i % 2:
            add("uk_nino", n, n, "compact")
        else:
            add("uk_nino", n, f"{n[:2]} {n[2:4]} {n[4:6]} {n[6:8]} {n[8]}", "spaced")
    for i in range(5):
        n = nhs()
        add("uk_nhs", n, f"{n[:3]} {n[3:6]} {n[6:]}" if i % 2 == 0 else n, "spaced" if i % 2 == 0 else "compact")
    for i in range(6):
        n = dni()
        add("es_dni", n, n if i % 3 else f"{n[:8]}-{n[8]}", "compact" if i % 3 else "dash_letter")
    for _ in range(3):
        n = nie()
        add("es_nie", n, n, "compact")
    for i in range(6):
        n = nir("2A" if i == 5 else None)
        if i % 2 == 0:
            add("fr_nir", n, f"{n[0]} {n[1:3]} {n[3:5]} {n[5:7]} {n[7:10]} {n[10:13]} {n[13:]}", "spaced")
        else:
            add("fr_nir", n, n, "compact")
    for i in range(6):
        n = aadhaar()
        add("in_aadhaar", n, f"{n[:4]} {n[4:8]} {n[8:]}" if i % 3 else n, "spaced" if i % 3 else "compact")
    for _ in range(3):
        n = pan()
        add("in_pan", n, n, "compact")
    for i in range(8):
        n = cpf()
        add(
            "br_cpf",
            n,
            f"{n[:3]}.{n[3:6]}.{n[6:9]}-{n[9:]}" if i % 2 == 0 else n,
            "dotted" if i % 2 == 0 else "compact",
        )
    for i in range(4):
        n = idnr()
        add("de_idnr", n, f"{n[:2]} {n[2:5]} {n[5:8]} {n[8:]}" if i % 2 else n, "spaced" if i % 2 else "compact")
    for _ in range(4):
        n = codice_fiscale()
        add("it_codicefiscale", n, n, "compact")
    for i in range(4):
        n = bsn()
        add("nl_bsn", n, f"{n[:4]}.{n[4:6]}.{n[6:]}" if i == 1 else n, "dotted" if i == 1 else "compact")
    return out


# ---------------------------------------------------------------- secrets
ALNUM = string.ascii_letters + string.digits
B64URLISH = ALNUM + "-_"
B64 = ALNUM + "+/"


def der_len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    b = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(b)]) + b


def der(tag: int, value: bytes) -> bytes:
    return bytes([tag]) + der_len(len(value)) + value


def der_int(n: int) -> bytes:
    b = n.to_bytes(n.bit_length() // 8 + 1, "big")
    return der(0x02, b)


def is_probable_prime(n: int) -> bool:
    if n < 2:
        return False
    for p in (2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37):
        if n % p == 0:
            return n == p
    d, s = n - 1, 0
    while d % 2 == 0:
        d //= 2
        s += 1
    for _ in range(24):
        a = rng.randrange(2, n - 2)
        x = pow(a, d, n)
        if x in (1, n - 1):
            continue
        for _ in range(s - 1):
            x = x * x % n
            if x == n - 1:
                break
        else:
            return False
    return True


def prime(bits: int) -> int:
    while True:
        c = rng.getrandbits(bits) | (1 << (bits - 1)) | (1 << (bits - 2)) | 1
        if is_probable_prime(c):
            return c


def rsa_der(bits: int = 1024) -> bytes:
    e = 65537
    while True:
        p, q = prime(bits // 2), prime(bits // 2)
        lam = (p - 1) * (q - 1) // math.gcd(p - 1, q - 1)
        if p != q and math.gcd(e, lam) == 1:
            break
    if p < q:
        p, q = q, p
    d = pow(e, -1, lam)
    fields = [0, p * q, e, d, p, q, d % (p - 1), d % (q - 1), pow(q, -1, p)]
    return der(0x30, b"".join(der_int(x) for x in fields))


def pem(label: str, body: bytes) -> str:
    b64 = base64.b64encode(body).decode()
    lines = [b64[i : i + 64] for i in range(0, len(b64), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----"


def pem_keys() -> list[tuple[str, str]]:
    rsa_oid = der(0x30, der(0x06, bytes.fromhex("2a864886f70d010101")) + der(0x05, b""))
    keys = [("rsa_pkcs1", pem("RSA PRIVATE KEY", rsa_der())), ("rsa_pkcs1", pem("RSA PRIVATE KEY", rsa_der()))]
    pk8 = der(0x30, der_int(0) + rsa_oid + der(0x04, rsa_der()))
    keys.append(("rsa_pkcs8", pem("PRIVATE KEY", pk8)))
    for _ in range(2):
        d = rng.randrange(1, pf.P256_N)
        x, y = pf.p256_mul(d)
        pub = b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")
        sec1 = der(
            0x30,
            der_int(1)
            + der(0x04, d.to_bytes(32, "big"))
            + der(0xA0, der(0x06, bytes.fromhex("2a8648ce3d030107")))
            + der(0xA1, der(0x03, b"\x00" + pub)),
        )
        keys.append(("ec_sec1", pem("EC PRIVATE KEY", sec1)))
    seed = bytes(rng.getrandbits(8) for _ in range(32))
    ed = der(0x30, der_int(0) + der(0x30, der(0x06, bytes.fromhex("2b6570"))) + der(0x04, der(0x04, seed)))
    keys.append(("ed25519_pkcs8", pem("PRIVATE KEY", ed)))
    return keys


def jwt() -> str:
    def enc(obj: dict[str, Any]) -> str:
        raw = json.dumps(obj, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    iat = rng.randint(1_760_000_000, 1_790_000_000)
    head = enc({"alg": "HS256", "typ": "JWT"})
    body = enc({"sub": f"usr_{rand_str(ALNUM, 10)}", "iat": iat, "exp": iat + 3600, "scope": "chat:write"})
    key = bytes(rng.getrandbits(8) for _ in range(32))
    sig = hmac.new(key, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}." + base64.urlsafe_b64encode(sig).decode().rstrip("=")


def github_classic(prefix: str = "ghp_") -> str:
    rnd = rand_str(ALNUM, 30)
    return prefix + rnd + pf.base62(zlib.crc32(rnd.encode()), 6)


def secrets() -> list[V]:
    out = []

    def add(sub: str, text: str, fmt: str = "raw", note: str | None = None) -> None:
        out.append(V("secret", sub, text, text, fmt, note=note))

    for _ in range(5):
        add("openai_key", "sk-" + rand_str(ALNUM, 20) + "T3BlbkFJ" + rand_str(ALNUM, 20), "legacy_sk")
    for _ in range(5):
        add("openai_key", "sk-proj-" + rand_str(B64URLISH, 58) + "T3BlbkFJ" + rand_str(B64URLISH, 58), "sk_proj")
    for _ in range(4):
        add("github_token", github_classic(), "ghp_classic")
    add("github_token", github_classic("gho_"), "gho_oauth")
    for _ in range(3):
        add("github_token", "github_pat_" + rand_str(ALNUM, 22) + "_" + rand_str(ALNUM, 59), "fine_grained_pat")
    for _ in range(4):
        add("aws_access_key_id", "AKIA" + rand_str(string.ascii_uppercase + "234567", 16), "akia")
    add("aws_access_key_id", "AKIAIOSFODNN7EXAMPLE", "akia", note="AWS documentation example key id")
    for _ in range(3):
        add("aws_secret_access_key", rand_str(B64, 40), "base64_40")
    for _ in range(4):
        add("slack_token", f"xoxb-{rand_digits(12)}-{rand_digits(13)}-{rand_str(ALNUM, 24)}", "xoxb")
    add(
        "slack_token",
        f"xoxp-{rand_digits(12)}-{rand_digits(12)}-{rand_digits(13)}-{rand_str('0123456789abcdef', 32)}",
        "xoxp",
    )
    for _ in range(3):
        add("stripe_key", "sk_live_" + rand_str(ALNUM, 24), "sk_live_24")
    add("stripe_key", "sk_live_51" + rand_str(ALNUM, 97), "sk_live_long")
    for _ in range(4):
        add("google_api_key", "AIza" + rand_str(B64URLISH, 35), "aiza")
    for _ in range(5):
        add("jwt", jwt(), "hs256")
    for fmt, key in pem_keys():
        add("private_key_pem", key, fmt)
    for url in [
        f"https://deploy:{rand_str(ALNUM, 14)}@git.internal.example.com/platform/api.git",
        f"postgres://app_rw:{rand_str(ALNUM, 12)}-{rand_str(ALNUM, 6)}@db-prod-01.example.net:5432/orders",
        f"mongodb+srv://analytics:{rand_str(ALNUM, 16)}@cluster0.example.org/reporting?retryWrites=true",
        f"redis://default:{rand_str(ALNUM, 20)}@cache.example.com:6380/0",
        f"ftp://backup:{rand_str(ALNUM, 10)}@files.example.net/nightly/",
        f"amqp://worker:{rand_str(ALNUM, 18)}@mq.example.org:5672/%2F",
        f"https://admin:{rand_str(ALNUM, 9)}!@grafana.example.com/login",
    ]:
        add("credential_url", url, "userinfo_url")
    for n in [40, 44, 48, 64]:
        add("generic_token", rand_str(ALNUM, n), f"base62_{n}")
    add("generic_token", rand_str(B64, 43) + "=", "base64_44")
    add("generic_token", rand_str("0123456789abcdef", 40), "hex_40")
    add("generic_token", rand_str("0123456789abcdef", 64), "hex_64")
    add("generic_token", rand_str(B64URLISH, 32), "base64url_32")
    return out


# ====================================================================== hard cases
# hard-case budget per kind (applied to values that have no intrinsic hard case)
HARD_PLAN: dict[str, dict[str, int]] = {
    "email": dict(
        message_start=2,
        message_end=2,
        whole_message=1,
        punctuation=3,
        quotes=3,
        json=3,
        code=2,
        zero_width=2,
        split_turns=2,
        split_turns_gap=1,
        tool_call_args=1,
        line_break=0,
    ),
    "phone": dict(
        message_start=2,
        message_end=2,
        whole_message=1,
        punctuation=3,
        quotes=2,
        json=4,
        code=2,
        zero_width=3,
        fullwidth=3,
        nbsp=3,
        split_turns=3,
        split_turns_gap=1,
        line_break=2,
        tool_call_args=1,
    ),
    "payment_card": dict(
        message_start=2,
        message_end=2,
        whole_message=1,
        punctuation=3,
        quotes=2,
        json=4,
        code=2,
        zero_width=3,
        fullwidth=3,
        nbsp=2,
        split_turns=4,
        split_turns_gap=1,
        line_break=2,
        tool_call_args=1,
    ),
    "iban": dict(
        message_start=1,
        message_end=2,
        punctuation=2,
        quotes=2,
        json=2,
        code=1,
        zero_width=2,
        fullwidth=2,
        nbsp=1,
        split_turns=2,
        split_turns_gap=1,
        line_break=1,
        case_variant=2,
    ),
    "ipv4": dict(message_end=1, punctuation=2, json=3, code=2, url=3, zero_width=1, fullwidth=1),
    "ipv6": dict(punctuation=1, json=2, code=2, url=2, zero_width=1, quotes=1),
    "us_ssn": dict(
        message_start=1,
        message_end=1,
        punctuation=1,
        quotes=1,
        json=1,
        zero_width=1,
        fullwidth=2,
        split_turns=1,
        tool_call_args=1,
    ),
    "national_id": dict(
        message_start=2,
        message_end=2,
        whole_message=1,
        punctuation=3,
        quotes=3,
        json=5,
        code=3,
        zero_width=3,
        fullwidth=3,
        nbsp=2,
        split_turns=2,
        line_break=1,
        case_variant=3,
        tool_call_args=2,
    ),
    "secret": dict(
        message_start=2,
        message_end=3,
        whole_message=2,
        punctuation=2,
        quotes=3,
        json=7,
        code=14,
        zero_width=3,
        split_turns=1,
        tool_call_args=1,
    ),
}


def compatible(v: V, hard: str) -> bool:
    pemish = v.subkind == "private_key_pem"
    spaced = " " in v.text
    has_sep = any(c in v.text for c in " -.")
    if hard in ("split_turns", "split_turns_gap"):
        if v.kind == "email":
            return v.fmt in ("plain", "plus_addressing", "subdomain")
        if v.kind == "secret":
            return not pemish and v.subkind not in ("jwt", "credential_url") and len(v.text) >= 40
        return has_sep
    if hard == "line_break":
        return spaced
    if hard == "nbsp":
        return spaced and v.kind in ("phone", "payment_card", "iban", "national_id")
    if hard == "fullwidth":
        return v.text.isascii()
    if hard == "zero_width":
        return not pemish and v.text.isascii()
    if hard == "case_variant":
        return any(c.isalpha() for c in v.text) and v.kind in ("iban", "national_id")
    if hard == "url":
        return v.kind in ("ipv4", "ipv6") and v.fmt != "ipv4_mapped"
    if hard in ("tool_call_args", "message_start", "whole_message", "quotes", "punctuation"):
        return not pemish or hard in ("whole_message", "message_start")
    if v.kind == "email" and v.fmt.startswith("idn") and hard in ("json", "code"):
        return True
    return True


def split_value(v: V) -> list[str]:
    t = v.text
    if v.kind == "email":
        at = t.index("@")
        return [t[: at + 1], t[at + 1 :]]
    if v.kind == "secret":
        cut = len(t) // 2
        return [t[:cut], t[cut:]]
    seps = [i for i, c in enumerate(t) if c in " -."]
    cut = seps[len(seps) // 2]
    # keep the separator at the end of the first piece (a typed space is usually lost between turns)
    if t[cut] == " ":
        return [t[:cut], t[cut + 1 :]]
    return [t[: cut + 1], t[cut + 1 :]]


def apply_hard(v: V) -> None:
    h = v.hard
    if h == "zero_width":
        n = 1 if len(v.text) < 12 else rng.choice([1, 2, 3])
        pos = sorted(rng.sample(range(1, len(v.text)), n))
        for p in reversed(pos):
            v.text = v.text[:p] + rng.choice(ZW_CHARS) + v.text[p:]
    elif h == "fullwidth":
        v.text = fullwidth(v.text, digits_only=rng.random() < 0.4)
    elif h == "nbsp":
        v.text = v.text.replace(" ", rng.choice(NBSP_CHARS))
    elif h == "line_break":
        sp = [i for i, c in enumerate(v.text) if c == " "]
        i = sp[len(sp) // 2]
        v.text = v.text[:i] + "\n" + v.text[i + 1 :]
    elif h == "case_variant":
        v.text = v.text.lower()
    elif h in ("split_turns", "split_turns_gap"):
        v.pieces = split_value(v)
        v.joiner = " " if v.kind not in ("email", "secret") and not v.pieces[0].endswith(("-", ".")) else ""
    if v.kind == "email" and v.fmt == "obfuscated_words":
        pass


def assign_hards(values: list[V], plan: dict[str, int]) -> None:
    free = [v for v in values if v.hard is None]
    rng.shuffle(free)
    for hard, count in plan.items():
        for _ in range(count):
            for v in free:
                if v.hard is None and compatible(v, hard):
                    v.hard = hard
                    break
    for v in values:
        apply_hard(v)


def assign_role(v: V) -> None:
    h = v.hard
    if h in ("split_turns", "split_turns_gap", "obfuscated"):
        v.role = "user"
    elif h == "tool_call_args":
        v.role = "assistant"
    elif h == "json":
        v.role = rng.choice(["tool", "tool", "tool", "user", "assistant"])
    elif h == "code":
        v.role = rng.choice(["user", "user", "assistant", "system"] if v.kind == "secret" else ["user", "assistant"])
    elif h == "url":
        v.role = rng.choice(["user", "user", "assistant"])
    elif h == "whole_message":
        v.role = rng.choice(["user", "user", "tool"])
    else:
        v.role = rng.choices(["user", "assistant", "system", "tool"], [60, 20, 9, 11])[0]


# ====================================================================== text templates
LABELS: dict[str, list[str]] = {
    "email": ["email", "e-mail address", "email address", "contact email"],
    "phone": ["number", "phone number", "mobile", "contact number"],
    "payment_card": ["card", "card number", "credit card", "debit card"],
    "iban": ["IBAN", "bank account", "account number (IBAN)"],
    "ipv4": ["IP", "IP address", "public IP"],
    "ipv6": ["IPv6 address", "IP", "address"],
    "us_ssn": ["SSN", "social security number", "social"],
    "uk_nino": ["National Insurance number", "NI number", "NINO"],
    "uk_nhs": ["NHS number"],
    "es_dni": ["DNI", "n\u00famero de DNI"],
    "es_nie": ["NIE"],
    "fr_nir": ["num\u00e9ro de s\u00e9curit\u00e9 sociale", "NIR", "social security number"],
    "in_aadhaar": ["Aadhaar number", "Aadhaar", "UID"],
    "in_pan": ["PAN", "PAN card number"],
    "br_cpf": ["CPF", "n\u00famero do CPF"],
    "de_idnr": ["Steuer-ID", "tax ID", "Steueridentifikationsnummer"],
    "it_codicefiscale": ["codice fiscale", "tax code"],
    "nl_bsn": ["BSN", "burgerservicenummer"],
    "openai_key": ["OpenAI key", "API key", "key"],
    "github_token": ["GitHub token", "PAT", "token"],
    "aws_access_key_id": ["AWS access key", "access key id"],
    "aws_secret_access_key": ["AWS secret", "secret access key"],
    "slack_token": ["Slack bot token", "Slack token"],
    "stripe_key": ["Stripe key", "live secret key"],
    "google_api_key": ["Google API key", "Maps key"],
    "jwt": ["token", "bearer token", "JWT"],
    "private_key_pem": ["private key", "deploy key"],
    "credential_url": ["connection string", "URL", "remote"],
    "generic_token": ["API token", "secret", "access token"],
}
FIELDS: dict[str, str] = {
    "email": "email",
    "phone": "phone",
    "payment_card": "card_number",
    "iban": "iban",
    "ipv4": "client_ip",
    "ipv6": "client_ip",
    "us_ssn": "ssn",
    "uk_nino": "nino",
    "uk_nhs": "nhs_number",
    "es_dni": "dni",
    "es_nie": "nie",
    "fr_nir": "nir",
    "in_aadhaar": "aadhaar",
    "in_pan": "pan",
    "br_cpf": "cpf",
    "de_idnr": "steuer_id",
    "it_codicefiscale": "codice_fiscale",
    "nl_bsn": "bsn",
    "openai_key": "api_key",
    "github_token": "token",
    "aws_access_key_id": "aws_access_key_id",
    "aws_secret_access_key": "aws_secret_access_key",
    "slack_token": "slack_bot_token",
    "stripe_key": "stripe_secret_key",
    "google_api_key": "maps_api_key",
    "jwt": "access_token",
    "private_key_pem": "private_key",
    "credential_url": "database_url",
    "generic_token": "secret",
}


def lab(v: V) -> str:
    key = v.subkind if v.kind in ("national_id", "secret") else v.kind
    return rng.choice(LABELS[key])


def fld(v: V) -> str:
    return FIELDS[v.subkind if v.kind in ("national_id", "secret") else v.kind]


USER_PLAIN = [
    "my {L} is {v} if you need it",
    "ok the {L} is {v}, can you check it",
    "here is the {L}: {v} - please update the account",
    "sorry, typo earlier. the correct {L} is {v} and not the old one",
    "Please note my new {L}: {v} \u2013 the previous one is no longer valid.",
    "for the form you asked about, {L} {v}",
]
USER_KIND: dict[str, list[str]] = {
    "email": [
        "send the invoice to {v} please, not my personal one",
        "can you cc {v} on the ticket",
        "i signed up with {v} but never got the confirmation link",
        "please change the login email to {v}",
    ],
    "phone": [
        "call me back on {v} after 6pm",
        "text me at {v} when the driver is close",
        "best number to reach me tomorrow is {v}",
        "the courier can ring {v}, I'll be home all day",
    ],
    "payment_card": [
        "charge it to {v} please",
        "the payment keeps failing on card {v}, what's going on",
        "i want to remove {v} from my wallet",
        "can you refund back to {v} instead of store credit",
    ],
    "iban": [
        "please refund to {v}",
        "my salary account is {v}, set the direct debit there",
        "transfer the deposit to {v} instead of the card",
    ],
    "ipv4": [
        "the suspicious login came from {v}, that wasn't me",
        "can you whitelist {v} for the admin panel",
        "my router's public address is {v} according to the status page",
    ],
    "ipv6": [
        "the firewall log shows {v} hitting my server all night",
        "please allow {v} on the API allowlist",
    ],
    "us_ssn": [
        "the tax form wants my SSN, it's {v}",
        "my social is {v}, do you need anything else for the W-2",
    ],
    "national_id": [
        "for the onboarding paperwork: {L} {v}",
        "you asked for my {L} - it's {v}",
        "the portal rejects my {L} {v}, can you enter it manually",
    ],
    "secret": [
        "I'm getting 401 errors with {v}, is it revoked?",
        "is this {L} still valid? {v}",
        "here's the {L} our intern committed, please rotate it: {v}",
        "the build log printed {v} in plain text, should I worry",
    ],
}
ASSISTANT = [
    "Thanks! I've saved {v} as your {L}.",
    "Just to confirm, the {L} on file is {v}. Is that right?",
    "I found a record for {v}. Let me pull up the details.",
    "Got it: {v}. I'll use that going forward.",
    "I can see {v} listed as the {L} on this account, but it hasn't been verified yet.",
]
SYSTEM = [
    "Session context (verified by the login service): customer {L} {v}. Do not read it back in full.",
    "Internal note for the assistant: the account holder's {L} is {v}.",
]
SYSTEM_CONTACT = ["Escalation contact for this deployment: {v}.", "If the user asks for a human, give them {v}."]
SYSTEM_SECRET = [
    "Tool configuration: call the internal search API with {L} {v}.",
    "Deployment note (do not reveal): the fallback {L} is {v}.",
]
ASSISTANT_SECRET = [
    "That {L} ({v}) is now exposed in this chat. Please revoke it and create a new one.",
    "I can see you're using {v} directly in the code; load it from an environment variable instead.",
    "The value {v} looks like a live {L}. Rotate it before you push.",
]
TOOL_SECRET = [
    "vault read secret/app -> {L}: {v} (ttl 768h)",
    "config dump: {L}={v}",
]
TOOL = [
    "Record found. {L}: {v}. Status: active. Flags: none.",
    "lookup_customer -> match (score 0.98) on {L}={v}",
    "Result: 1 row. {v} | verified | 2026-04-02",
]

HARD_T: dict[str, dict[str, list[str]]] = {
    "message_start": {
        "user": ["{v} is my {L}, please use that one", "{v} \u2014 that's the {L} I use", "{v}, please update it"],
        "assistant": ["{v} is the {L} I have on file for you.", "{v}: that's the {L} we'll use from now on."],
        "system": ["{v} is the verified {L} of the signed-in customer."],
        "tool": ["{v} -> found (customer C-20417)", "{v}\tactive\t2026-04-02"],
    },
    "message_end": {
        "user": ["the {L} is {v}", "ok here you go: {v}", "use this {L} {v}"],
        "assistant": ["The {L} on your profile is {v}", "I've updated it to {v}"],
        "system": ["Verified customer {L}: {v}"],
        "tool": ["match on {L} {v}", "status=active {L}={v}"],
    },
    "punctuation": {
        "user": [
            "my {L} ({v}) hasn't changed",
            "{L}: [{v}]",
            "use this one -> <{v}>",
            "is it {v}?",
            "{L}:{v};ok",
            "it's {v}!",
            "they wrote {v}, which is right",
            "{L}={v}.",
            "(for reference: {v})",
        ],
        "assistant": [
            "I've noted your {L} ({v}) for the refund.",
            "Your {L} is on file as [{v}].",
            "Is it {v}?",
            "Noted: <{v}>.",
            "Thanks, {v}, got it.",
        ],
        "system": ["Customer record: {L}=[{v}]; verified=true.", "(verified {L}: {v})"],
        "tool": ["{L}:{v};status=active", "[{v}] ok", "result=({v})"],
    },
    "quotes": {
        "user": [
            'my {L} is "{v}"',
            "it says '{v}' on the form",
            "I typed \u201c{v}\u201d and it was rejected",
            "\u00ab{v}\u00bb \u2014 c'est bien \u00e7a",
            "the field shows `{v}`",
            "\u300c{v}\u300d\u3067\u3059",
            "\u201e{v}\u201c steht im Formular",
        ],
        "assistant": [
            'I have "{v}" as your {L}.',
            "The form shows '{v}' - is that still right?",
            "Vous avez indiqu\u00e9 \u00ab{v}\u00bb, c'est bien \u00e7a ?",
            "The field now reads `{v}`.",
        ],
        "system": ['Verified {L}: "{v}".'],
        "tool": ["value='{v}' status=verified", '"{v}"'],
    },
}
URL_T: dict[str, dict[str, list[str]]] = {
    "mailto_markdown": {
        "user": ["my signature says [mail me](mailto:{v}), is that link broken?"],
        "assistant": ["You can also write to our data officer: [email us](mailto:{v})."],
    },
    "url_query_encoded": {
        "user": ["the reset link is https://portal.example.com/reset?email={v}&t=1 but it 404s"],
        "assistant": ["I sent the reset link https://portal.example.com/reset?email={v}&t=1, it expires in an hour."],
    },
    "url_query": {
        "user": ["https://app.example.com/invite?to={v}&role=viewer is the link I got"],
        "assistant": ["Use this link to accept the invite: https://app.example.com/invite?to={v}&role=viewer"],
    },
    "ipv4": {
        "user": [
            "open http://{v}:8080/admin and tell me what you see",
            "my NAS is at ftp://{v}/share, can you reach it",
        ],
        "assistant": ["Try http://{v}:8080/admin from your browser and tell me what loads."],
    },
    "ipv6": {
        "user": ["the dashboard is at https://[{v}]:8443/ and it times out"],
        "assistant": ["Open https://[{v}]:8443/ once the firewall rule is in place."],
    },
}
PEM_T = {
    "user": ["here is the key from the old server, can you tell me what type it is?\n\n{v}\n\nthanks"],
    "assistant": ["This is the key that is installed on the host right now:\n\n{v}\n\nYou should replace it."],
    "system": ["Signing key for webhook payloads (never disclose):\n{v}"],
    "tool": ["$ cat /etc/ssl/private/app.key\n{v}"],
}
SPLIT_FIRST = ["my {L} is {v}", "ok {L}: {v}", "it's {v}"]
SPLIT_SECOND = ["{v}", "{v} sorry, hit enter too early", "{v}"]


def fill(template: str, v: V) -> list[Any]:
    """Template -> segments, with the value object in place of {v}."""
    template = template.replace("{L}", lab(v))
    before, after = template.split("{v}")
    return [before, v, after]


def plain_segments(v: V) -> list[Any]:
    secret = v.kind == "secret"
    if v.role == "assistant":
        return fill(rng.choice(ASSISTANT_SECRET if secret else ASSISTANT), v)
    if v.role == "system":
        pool = SYSTEM_SECRET if secret else SYSTEM + (SYSTEM_CONTACT if v.kind in ("email", "phone") else [])
        return fill(rng.choice(pool), v)
    if v.role == "tool":
        return fill(rng.choice(TOOL_SECRET if secret else TOOL), v)
    pool = USER_PLAIN + USER_KIND.get(v.kind if v.kind != "us_ssn" else "us_ssn", [])
    if v.kind == "national_id":
        pool = USER_PLAIN + USER_KIND["national_id"]
    return fill(rng.choice(pool), v)


def json_segments(v: V) -> list[Any]:
    f = fld(v)
    if v.subkind == "private_key_pem":
        v.text = json.dumps(v.text)[1:-1]  # escaped newlines, as it would sit in a JSON string
    if v.role == "tool":
        return [f'{{"status": "ok", "record": {{"id": {rng.randint(1000, 99999)}, "{f}": "', v, '", "verified": true}}']
    if v.role == "assistant":
        return [
            'Here is the request body I will send:\n```json\n{\n  "' + f + '": "',
            v,
            '",\n  "source": "chat"\n}\n```',
        ]
    return ['this is the payload we post: {"' + f + '": "', v, '", "channel": "web"} and it fails with 422']


CODE_INTRO = {
    "user": ["", "this is what I have:\n", "my config:\n", "why does this fail?\n"],
    "assistant": ["Put it in your config like this:\n", "Here is the corrected version:\n"],
    "system": ["Deployment configuration for this assistant:\n"],
    "tool": ["read_file returned:\n"],
}
ENV_NAMES = {
    "openai_key": "OPENAI_API_KEY",
    "github_token": "GITHUB_TOKEN",
    "aws_access_key_id": "AWS_ACCESS_KEY_ID",
    "aws_secret_access_key": "AWS_SECRET_ACCESS_KEY",
    "slack_token": "SLACK_BOT_TOKEN",
    "stripe_key": "STRIPE_SECRET_KEY",
    "google_api_key": "GOOGLE_MAPS_KEY",
    "generic_token": "SERVICE_TOKEN",
}


def code_segments(v: V) -> list[Any]:
    f = fld(v)
    intro = rng.choice(CODE_INTRO[v.role or "user"])
    if v.kind == "secret":
        sub = v.subkind
        if sub == "private_key_pem":
            return [intro + "```\n", v, "\n```"]
        if sub == "credential_url":
            return [intro + "```yaml\nservices:\n  api:\n    environment:\n      DATABASE_URL: ", v, "\n```"]
        if sub == "jwt":
            return [
                intro + '```bash\ncurl -s https://api.example.com/v2/me \\\n  -H "Authorization: Bearer ',
                v,
                '"\n```',
            ]
        style = rng.choice(["env", "python", "js", "toml"])
        if style == "env":
            return [intro + f"```\nDEBUG=false\n{ENV_NAMES[sub]}=", v, "\nLOG_LEVEL=info\n```"]
        if style == "python":
            return [intro + '```python\nimport os\n\nclient = Client(api_key="', v, '", timeout=30)\n```']
        if style == "js":
            return [intro + "```js\nconst cfg = {\n  region: 'eu-west-1',\n  " + f + ": '", v, "',\n};\n```"]
        return [intro + '```toml\n[service]\nname = "billing"\n' + f + ' = "', v, '"\n```']
    style = rng.choice(["python", "sql", "csv", "yaml"])
    if style == "python":
        return [intro + '```python\ncustomer = {"id": 7731, "' + f + '": "', v, '"}\nsave(customer)\n```']
    if style == "sql":
        return [intro + f"```sql\nUPDATE customers SET {f} = '", v, "' WHERE id = 7731;\n```"]
    if style == "csv":
        return [intro + f"```\nid,{f},status\n7731,", v, ",pending\n```"]
    return [intro + f"```yaml\ncontact:\n  {f}: ", v, "\n  preferred: true\n```"]


def segments_for(v: V) -> list[Any]:
    h = v.hard
    role = v.role or "user"
    if h == "message_start":
        return fill(rng.choice(HARD_T[h][role]), v)[1:]
    if h == "message_end":
        return fill(rng.choice(HARD_T[h][role]), v)[:2]
    if h == "whole_message":
        return [v]
    if h in ("punctuation", "quotes"):
        return fill(rng.choice(HARD_T[h][role]), v)
    if h == "json":
        return json_segments(v)
    if h == "code":
        return code_segments(v)
    if h == "url":
        key = v.kind if v.kind in ("ipv4", "ipv6") else v.fmt
        return fill(rng.choice(URL_T[key][role]), v)
    if v.subkind == "private_key_pem":
        return fill(rng.choice(PEM_T[role]), v)
    return plain_segments(v)


# ====================================================================== conversations
@dataclass
class Msg:
    role: str
    segs: list[Any]
    tool_args: list[Any] | None = None
    tool_name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


class Part:
    def __init__(self, v: Any, idx: int) -> None:
        self.v, self.idx = v, idx


DOMAINS = {
    "banking": ("You are the assistant for Harbourline Bank. Verify identity before discussing accounts.", "en-GB"),
    "shopping": ("You are the shopping assistant for Northwind Home. Be friendly and concise.", "en-US"),
    "support": ("You are the support assistant for Acme Telecom. Be concise.", "en-US"),
    "travel": ("You are the virtual assistant for SkyLine Airways.", "en-GB"),
    "hr": ("You are PeopleDesk, the HR onboarding assistant for Globex. Collect only what the form needs.", "en-GB"),
    "health": ("You are the booking assistant for Vitalis clinics. You do not give medical advice.", "en-GB"),
    "devops": ("You are DevHelper, a coding assistant. Warn users when they paste credentials.", "en-US"),
    "tax": ("You are TaxPal, an assistant for filing personal tax returns.", "en-US"),
}
KIND_DOMAINS = {
    "email": ["support", "shopping", "travel", "hr"],
    "phone": ["support", "travel", "health", "shopping"],
    "payment_card": ["banking", "shopping", "travel"],
    "iban": ["banking", "hr"],
    "ipv4": ["devops", "support"],
    "ipv6": ["devops", "support"],
    "us_ssn": ["tax", "hr", "banking"],
    "national_id": ["hr", "health", "tax", "banking"],
    "secret": ["devops"],
}
OPENERS = {
    "banking": [
        "hi, i need to update my payment details",
        "hello, a transfer of mine bounced",
        "can you help me with a refund",
    ],
    "shopping": ["hey, question about my order", "i need to change how i pay", "hi! my checkout keeps failing"],
    "support": [
        "my account details are wrong",
        "hi, i moved and need to update my contact info",
        "nobody called me back",
    ],
    "travel": [
        "i need to change my booking contact",
        "hi, my flight got moved",
        "can you update the passenger details",
    ],
    "hr": ["hi, i'm starting on monday and need to finish the onboarding form", "payroll asked me for more details"],
    "health": ["i want to book an appointment", "hello, i need to update my patient record"],
    "devops": [
        "our deploy is broken",
        "quick question about credentials in our repo",
        "auth errors since this morning",
    ],
    "tax": ["i'm filling in my return", "the form keeps rejecting my details"],
}
ACKS = [
    "Thanks, noted. Anything else I can help with?",
    "Thank you. I've passed that on to the team.",
    "Understood. Give me a moment to check.",
    "Thanks for confirming. That's updated now.",
    "I'd recommend not sharing that in chat next time, but I've recorded it.",
]
USER_PROMPTS = [
    "can you confirm what you have on file?",
    "what details do you have for me?",
    "did that go through?",
    "ok what's next",
]
GAP_ASK = ["Go on, I only received the first part.", "I think the message got cut off - can you send the rest?"]


def exchange(v: V) -> list[Msg]:
    """Messages that plant one value (system-role values are handled by the caller)."""
    h = v.hard
    if h in ("split_turns", "split_turns_gap"):
        first = fill(rng.choice(SPLIT_FIRST), v)
        first = [first[0], Part(v, 0)]
        second = fill(rng.choice(SPLIT_SECOND), v)
        second = [Part(v, 1), second[2]]
        msgs = [Msg("user", first)]
        if h == "split_turns_gap":
            msgs.append(Msg("assistant", [rng.choice(GAP_ASK)]))
        msgs += [Msg("user", second), Msg("assistant", [rng.choice(ACKS)])]
        return msgs
    if h == "tool_call_args":
        name = f"update_{fld(v)}"
        return [
            Msg("user", [rng.choice(["please update it to the one I gave you", "yes, save it"])]),
            Msg(
                "assistant",
                [""],
                tool_args=['{"customer_id": "C-' + rand_digits(6) + '", "' + fld(v) + '": "', v, '"}'],
                tool_name=name,
            ),
            Msg("tool", ['{"ok": true}'], tool_name=name),
            Msg("assistant", ["Done, it's updated."]),
        ]
    segs = segments_for(v)
    if v.role == "user":
        return [Msg("user", segs), Msg("assistant", [rng.choice(ACKS)])]
    if v.role == "assistant":
        return [Msg("user", [rng.choice(USER_PROMPTS)]), Msg("assistant", segs)]
    if v.role == "tool":
        name = f"lookup_{fld(v)}"
        return [
            Msg("user", [rng.choice(USER_PROMPTS)]),
            Msg("assistant", [""], tool_args=['{"customer_id": "C-' + rand_digits(6) + '"}'], tool_name=name),
            Msg("tool", segs, tool_name=name),
            Msg("assistant", [rng.choice(["I've checked the record.", "The lookup came back fine.", "Found it."])]),
        ]
    raise AssertionError(v.role)


def render(cid: str, domain: str, msgs: list[Msg], sys_values: list[V], truth: list[dict[str, Any]]) -> dict[str, Any]:
    prompt, locale = DOMAINS[domain]
    sys_segs: list[Any] = [prompt]
    extra_sys: list[Msg] = []
    for v in sys_values:
        if v.hard in ("message_start", "whole_message", "message_end"):
            extra_sys.append(Msg("system", segments_for(v)))  # needs a message of its own
        else:
            sys_segs += [" ", *segments_for(v)]
    all_msgs = [Msg("system", sys_segs), *extra_sys, *msgs]
    out_msgs = []
    parts: dict[int, list[dict[str, Any]]] = {}
    call_n = 0
    for i, m in enumerate(all_msgs):
        content, spans = assemble(m.segs)
        d: dict[str, Any] = {"role": m.role, "content": content}
        if m.tool_args is not None:
            call_n += 1
            args, arg_spans = assemble(m.tool_args)
            d["tool_calls"] = [
                {"id": f"call_{call_n}", "type": "function", "function": {"name": m.tool_name, "arguments": args}}
            ]
            for obj, s, e in arg_spans:
                truth.append(truth_row(cid, i, obj, s, e, "tool_calls[0].function.arguments"))
        if m.role == "tool":
            d["tool_call_id"] = f"call_{call_n}"
            d["name"] = m.tool_name
        for obj, s, e in spans:
            if isinstance(obj, Part):
                parts.setdefault(id(obj.v), []).append(
                    {"v": obj.v, "message_index": i, "start": s, "end": e, "text": content[s:e]}
                )
            else:
                truth.append(truth_row(cid, i, obj, s, e, "content"))
        out_msgs.append(d)
    for plist in parts.values():
        v = plist[0]["v"]
        row = truth_row(cid, plist[0]["message_index"], v, None, None, "content")
        row["value"] = v.joiner.join(p["text"] for p in plist)
        row["parts"] = [{k: p[k] for k in ("message_index", "start", "end", "text")} for p in plist]
        row["note"] = "split across two messages; see parts for exact spans" + (f"; {v.note}" if v.note else "")
        truth.append(row)
    return {
        "id": cid,
        "messages": out_msgs,
        "metadata": {
            "domain": domain,
            "channel": rng.choice(["app", "web"]),
            "locale": locale,
            "benchmark": "pii-planted",
            "synthetic": True,
        },
        "timestamp": f"2026-{rng.randint(1, 8):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:"
        f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}Z",
    }


def assemble(segs: list[Any]) -> tuple[str, list[tuple[Any, int, int]]]:
    out, spans, pos = [], [], 0
    for s in segs:
        if isinstance(s, str):
            text, obj = s, None
        elif isinstance(s, Part):
            text, obj = s.v.pieces[s.idx], s
        else:
            text, obj = s.text, s
        if obj is not None:
            spans.append((obj, pos, pos + len(text)))
        out.append(text)
        pos += len(text)
    return "".join(out), spans


def truth_row(cid: str, idx: int, v: Any, s: int | None, e: int | None, fieldname: str) -> dict[str, Any]:
    if isinstance(v, NV):
        return {
            "conversation_id": cid,
            "message_index": idx,
            "field": fieldname,
            "kind": v.kind,
            "value": v.text,
            "start": s,
            "end": e,
            "borderline": v.borderline,
            "passes_checks": v.passes,
            "note": v.note,
        }
    row = {
        "conversation_id": cid,
        "message_index": idx,
        "field": fieldname,
        "kind": v.kind,
        "subkind": v.subkind,
        "format": v.fmt,
        "value": v.text,
        "normalized": v.norm,
        "start": s,
        "end": e,
        "hard": v.hard,
        "role": v.role,
    }
    if v.region:
        row["region"] = v.region
    if v.note and not v.pieces:
        row["note"] = v.note
    return row


def build_planted() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    by_kind = {
        "email": emails(),
        "phone": phones(),
        "payment_card": cards(),
        "iban": ibans(),
        "ssn": ssns(),
        "national_id": national_ids(),
        "secret": secrets(),
    }
    ip_vals = ips()
    by_kind["ipv4"] = [v for v in ip_vals if v.kind == "ipv4"]
    by_kind["ipv6"] = [v for v in ip_vals if v.kind == "ipv6"]
    by_kind["us_ssn"] = by_kind.pop("ssn")
    values: list[V] = []
    for kind, vals in by_kind.items():
        assign_hards(vals, HARD_PLAN[kind])
        values += vals
    for v in values:
        assign_role(v)
    # pack into conversations: group by domain, 3-6 values each
    buckets: dict[str, list[V]] = {}
    for v in values:
        buckets.setdefault(rng.choice(KIND_DOMAINS[v.kind]), []).append(v)
    convs, truth = [], []
    n = 0
    for domain in DOMAINS:
        vals = buckets.get(domain, [])
        rng.shuffle(vals)
        while vals:
            take = min(len(vals), rng.randint(3, 6))
            chunk, vals = vals[:take], vals[take:]
            n += 1
            cid = f"pii-{n:03d}"
            sys_vals = [v for v in chunk if v.role == "system"]
            msgs = [Msg("user", [rng.choice(OPENERS[domain])]), Msg("assistant", ["Sure, I can help with that."])]
            for v in chunk:
                if v.role != "system":
                    msgs += exchange(v)
            convs.append(render(cid, domain, msgs, sys_vals, truth))
    return convs, truth


# ====================================================================== negatives
@dataclass
class NV:
    kind: str
    text: str
    borderline: bool = False
    note: str | None = None
    passes: list[str] = field(default_factory=list)


def isbn10(core: str) -> str:
    s = sum(int(c) * w for c, w in zip(core, range(10, 1, -1), strict=True))
    c = (11 - s % 11) % 11
    return core + ("X" if c == 10 else str(c))


def ean13(core12: str) -> str:
    s = sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(core12))
    return core12 + str((10 - s % 10) % 10)


def upc_a(core11: str) -> str:
    s = sum(int(c) * (3 if i % 2 == 0 else 1) for i, c in enumerate(core11))
    return core11 + str((10 - s % 10) % 10)


def s10(serial8: str, country: str, service: str) -> str:
    w = [8, 6, 4, 2, 3, 5, 9, 7]
    c = 11 - sum(int(d) * x for d, x in zip(serial8, w, strict=True)) % 11
    c = {10: 0, 11: 5}.get(c, c)
    return f"{service}{serial8}{c}{country}"


def imei() -> str:
    tac = rng.choice(["35", "86", "01", "49"]) + rand_digits(6)
    body = tac + rand_digits(6)
    return body + pf.luhn_digit(body)


def luhn_16_order(prefix: str) -> str:
    return card(prefix, 16)


def checks_passed(text: str) -> list[str]:
    """Which strong PII validators this negative value happens to satisfy (recorded, not avoided)."""
    out = []
    for run in re.findall(r"\d[\d \-.]*\d", text):
        d = re.sub(r"\D", "", run)
        if 13 <= len(d) <= 19 and pf.luhn_ok(d):
            out.append("luhn")
        if len(d) == 12 and pf.in_aadhaar_ok(d):
            out.append("verhoeff_aadhaar")
        if len(d) == 11 and pf.br_cpf_ok(d):
            out.append("cpf")
        if len(d) == 10 and pf.uk_nhs_ok(d):
            out.append("nhs_mod11")
        if len(d) == 9 and pf.us_ssn_ok(d) and re.fullmatch(r"\d{3}-\d{2}-\d{4}", run):
            out.append("ssn_dashed")
    for m in re.findall(r"\b\d{1,3}(?:\.\d{1,3}){3}\b", text):
        try:
            if pf.ip_public(m):
                out.append("public_ipv4_shape")
        except ValueError:
            pass
    return sorted(set(out))


def negatives_values() -> dict[str, list[NV]]:
    def hexs(n: int) -> str:
        return rand_str("0123456789abcdef", n)

    vals: dict[str, list[NV]] = {}

    def add(kind: str, text: str, borderline: bool = False, note: str | None = None) -> None:
        vals.setdefault(kind, []).append(NV(kind, text, borderline, note))

    for t in [
        "ORD-2026-004817",
        "#A10-558213",
        "112-4839201-5567830",
        "SO-77120",
        "4500123456",
        "W1234567890",
        "NW-88213-UK",
        "#100238475",
        "PO-2026-0331-17",
        "R-5501-8823-1190",
    ]:
        add("order_id", t)
    for pre in ["4", "5", "8", "9"]:
        n = luhn_16_order(pre)
        add(
            "order_id",
            group(n, [4, 4, 4, 4], " " if pre in "48" else "-"),
            True,
            "16-digit order number that passes Luhn by chance"
            + (" and has a card-like first digit" if pre in "45" else ""),
        )
    for t in [
        "INC0012345",
        "RITM0045123",
        "CHG0034567",
        "PRB0001234",
        "PAY-4821",
        "ZD-448120",
        "CASE-00098123",
        "SR 3-8723456781",
        "REQ000001234567",
        "TKT#20260314-0042",
        "BUG-10293",
    ]:
        add("ticket_id", t)
    add("tracking_number", "1Z999AA10123456784")
    add("tracking_number", s10(rand_digits(8), "GB", "RR"))
    add("tracking_number", s10(rand_digits(8), "DE", "LX"))
    add("tracking_number", "9400 1118 9922 3100 0000 00")
    add("tracking_number", "7489 2183 4421")
    add("tracking_number", "JD014600006281234567")
    add("tracking_number", "0150 1234 5678 90")
    add("tracking_number", "TBA304918273000")
    for i in range(10):
        u = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        add("uuid", u.upper() if i == 3 else ("{" + u + "}" if i == 6 else u))
    for n in [7, 7, 8, 10, 12]:
        add("git_sha", hexs(n))
    for _ in range(5):
        add("git_sha", hexs(40), True, "full 40-hex SHA: high entropy, only the context says it is not a secret")
    for i, core in enumerate(["030640615", "014303174", "080442957", "159486781", "052004443"]):
        n = isbn10(core)
        add("isbn", n if i % 2 else f"{n[0]}-{n[1:4]}-{n[4:9]}-{n[9]}")
    for _ in range(5):
        add("isbn", ean13("978" + rand_digits(9)))
    for i in range(8):
        n = imei()
        add("imei", n if i % 2 else f"{n[:2]}-{n[2:8]}-{n[8:14]}-{n[14]}", True, "IMEI: 15 digits that pass Luhn")
    for t in [
        "2026-03-14T09:26:53Z",
        "2026-03-14 09:26:53.123+01:00",
        "1773480413",
        "1773480413123",
        "Sat, 14 Mar 2026 09:26:53 GMT",
        "20260314",
        "2026-W11",
        "09:26:53",
        "00:15:30.250",
        "2026-03-14T09:26:53.123456789Z",
        "1710408413.5521",
    ]:
        add("timestamp", t)
    for t in [
        "2026-03-14",
        "14/03/2026",
        "03/14/2026",
        "14.03.2026",
        "March 14, 2026",
        "14 Mar 2026",
        "2026/03/14",
        "Q3 2026",
        "FY2025/26",
    ]:
        add("date", t)
    for t in [
        "$1,299.99",
        "\u20ac49,90",
        "\u00a34.95",
        "1.234.567,89 EUR",
        "USD 12,500.00",
        "\u00a5128,000",
        "\u20b92,49,999",
        "R$ 1.299,90",
        "-60.00",
        "CHF 3'450.00",
        "$0.0015",
        "2 x 19.99",
    ]:
        add("price", t)
    for t in [
        "1.2.3",
        "v2.0.0-rc1",
        "10.0.19045.3693",
        "Python 3.11.7",
        "Ubuntu 22.04.4 LTS",
        "Chrome 126.0.6478.127",
        "node v20.11.1",
        "2024.1.3",
        "1.0.0-beta.2+exp.sha.5114f85",
        "0.17.6",
        "build 6.1.7601.24544",
        "API v3",
    ]:
        add("version", t)
    add("version", "4.2.1.8", True, "four-part version that is also a syntactically public IPv4 address")
    add("version", "firmware 81.12.3.40", True, "four-part version that is also a syntactically public IPv4 address")
    for t in [
        "^1.2.0",
        "~2.3.4",
        ">=2.1,<3",
        "~=3.11",
        "1.x || >=2.5.0 || 5.0.0 - 7.2.3",
        "[1.0,2.0)",
        ">= 4.0.0 < 5",
        "<=0.9.12",
    ]:
        add("semver_range", t)
    for t in ["#1a2b3c", "#FFF", "#ff5733cc", "#0B5FFF", "#e0e0e0", "0x1A2B3C", "#663399", "#c0ffee"]:
        add("hex_colour", t)
    add("file_hash", hashlib.md5(b"a").hexdigest(), True, "md5: 32 hex chars")
    add("file_hash", hashlib.md5(bytes(rng.getrandbits(8) for _ in range(8))).hexdigest(), True, "md5: 32 hex chars")
    for _ in range(2):
        add("file_hash", hashlib.sha1(bytes(rng.getrandbits(8) for _ in range(8))).hexdigest(), True, "sha1: 40 hex")
    for _ in range(3):
        add(
            "file_hash",
            hashlib.sha256(bytes(rng.getrandbits(8) for _ in range(8))).hexdigest(),
            True,
            "sha256: 64 hex chars",
        )
    add(
        "file_hash",
        "sha512-" + base64.b64encode(hashlib.sha512(b"left-pad").digest()).decode(),
        True,
        "npm integrity string: base64, high entropy",
    )
    add("file_hash", "sha256:" + hashlib.sha256(b"layer").hexdigest(), True, "container digest")
    for t in [
        "INV-2026-000123",
        "Invoice No. 2026/04/0117",
        "RE-20260314-88",
        "F2026-00042",
        "INV#99120",
        "CN-2026-0007",
        "BILL-3391-A",
    ]:
        add("invoice_number", t)
    for t in ["Room 4.12", "B-204", "room 1207", "Suite 300", "Gate B32", "seat 14C", "Ward 7B", "Lab 2.031"]:
        add("room_number", t)
    for t in [
        "SKU 88-1402-BLK",
        "LAMP-220",
        "B07XJ8C8F5",
        "WH-1000XM5",
        "MPN 90NB0S41-M00570",
        "TSHIRT-M-NAVY",
        "4006381333931",
        upc_a("03600029145"),
        "ISSN 0317-8471",
    ]:
        add("sku", t, t.isdigit() and pf.luhn_ok(t), None)
    for t in [
        "4111*1111",
        "12345 + 67890 = 80235",
        "3.14159265358979",
        "2^64 = 18446744073709551616",
        "1/7 = 0.142857142857",
        "6.022e23",
        "(415 - 555) * 2671",
        "sqrt(2) \u2248 1.41421356237",
        "x = 0x7fffffff",
        "2026 - 1984 = 42",
    ]:
        add("math_expression", t)
    for t in [
        "51.5007, -0.1246",
        "40.7484\u00b0 N, 73.9857\u00b0 W",
        "48\u00b051'29.6\"N 2\u00b017'40.2\"E",
        "-33.8568, 151.2153",
        "geo:37.786971,-122.399677",
        "33T 448304 5411938",
        "lat=35.6586&lon=139.7454",
    ]:
        add("coordinates", t)
    for t in [
        "<EMAIL>",
        "[NAME]",
        "{{phone}}",
        "<PHONE_1>",
        "***",
        "[REDACTED]",
        "XXXX-XXXX-XXXX-1234",
        "**** **** **** 4242",
        "<CARD>",
        "{{ssn}}",
        "%EMAIL%",
        "${API_KEY}",
        "sk-...",
        "YOUR_API_KEY",
        "<IBAN_1>",
        "[EMAIL_ADDRESS]",
        "xxx-xx-xxxx",
        "<IP_ADDRESS>",
        "[PHONE]",
        "sk_live_****",
    ]:
        add("placeholder", t)
    for t in [
        "192.168.0.1",
        "10.0.0.5",
        "172.16.4.20",
        "127.0.0.1",
        "192.0.2.1",
        "198.51.100.7",
        "203.0.113.42",
        "2001:db8::1",
        "::1",
        "fe80::1ff:fe23:4567:890a",
        "fd12:3456:789a::1",
        "0.0.0.0",
        "169.254.169.254",
        "100.64.0.1",
        "255.255.255.0",
        "224.0.0.251",
        "10.0.0.0/8",
        "2001:db8:85a3::8a2e:370:7334",
        "::ffff:192.168.1.10",
        "localhost:8080",
    ]:
        add("non_public_ip", t)
    for t in [
        "HTTP 404",
        "error 0x80070005",
        "port 5432",
        "exit code 137",
        "ERR_CONNECTION_RESET",
        "chmod 0755",
        "E11000 duplicate key",
        "SQLSTATE 23505",
    ]:
        add("misc_code", t)
    add("misc_code", "123-45-6789", True, "the classic placeholder SSN: syntactically valid, used as an example")
    add("misc_code", "routing 021000021", True, "ABA routing number of a bank, 9 digits like a compact SSN")
    for v in (x for vs in vals.values() for x in vs):
        v.passes = checks_passed(v.text)
        if ("luhn" in v.passes or "public_ipv4_shape" in v.passes) and not v.borderline:
            v.borderline = True
            v.note = (v.note + "; " if v.note else "") + "passes " + ",".join(v.passes) + " by chance"
    return vals


NEG_USER: dict[str, list[str]] = {
    "order_id": ["my order {v} still says processing", "I'm asking about order {v}", "where is {v}?"],
    "ticket_id": ["I opened ticket {v} last week", "any update on {v}?", "please reopen {v}"],
    "tracking_number": ["the tracking number is {v}", "{v} shows no movement since Monday"],
    "uuid": ["request id {v} failed", "job {v} is stuck in the queue", "the error page shows trace {v}"],
    "git_sha": ["the regression started at commit {v}", "I reverted {v} and it works again", "HEAD is at {v}"],
    "isbn": ["the course book is ISBN {v}", "do you have ISBN {v} in the library?"],
    "imei": ["the phone's IMEI is {v}", "is IMEI {v} blocked on the network?"],
    "timestamp": ["the error happened at {v}", "log line stamped {v}", "it crashed at {v} again"],
    "date": ["my appointment is on {v}", "delivery was promised for {v}", "can I fly out on {v} instead?"],
    "price": ["I was charged {v}", "it says {v} at checkout", "why is it {v} now?"],
    "version": ["we're on {v}", "the bug appears in {v} only", "after upgrading to {v} nothing starts"],
    "semver_range": ["package.json pins it to {v}", "is {v} too strict?"],
    "hex_colour": ["the brand colour is {v}", "can the header be {v} instead?"],
    "file_hash": ["the checksum of the download is {v}", "my build produced {v}, is that the right artifact?"],
    "invoice_number": ["invoice {v} is wrong", "I paid {v} last week, why is it still open?"],
    "room_number": ["the meeting is in {v}", "I'm staying in {v}", "is {v} step-free?"],
    "sku": ["item {v} is out of stock", "I ordered {v} twice by mistake"],
    "math_expression": ["how do I simplify {v}", "is {v} right?", "my calculator says {v}"],
    "coordinates": ["the pickup point is at {v}", "my GPS says {v}, where is the entrance?"],
    "placeholder": ["the log shows {v} where the value should be", "the template still contains {v}"],
    "non_public_ip": ["the container listens on {v}", "ping {v} times out", "I set the gateway to {v}"],
    "misc_code": ["I get {v} when I try", "the job died with {v}"],
}
NEG_ASSISTANT: dict[str, list[str]] = {
    "order_id": ["Order {v} was dispatched yesterday.", "I can see order {v}; it is waiting for stock."],
    "ticket_id": ["This is tracked under {v}.", "I've linked your chat to {v}."],
    "tracking_number": ["Carrier reference: {v}.", "The parcel with tracking number {v} is at the local depot."],
    "uuid": ["The session id was {v}.", "I've retried job {v}; it is running now."],
    "git_sha": ["The fix landed in {v}.", "Check out {v} and run the tests again."],
    "isbn": ["The edition you need is ISBN {v}.", "ISBN {v} is available as an e-book."],
    "imei": ["The device with IMEI {v} is now unlocked.", "IMEI {v} is not on the blocklist."],
    "timestamp": ["Last sync: {v}.", "The outage began at {v}."],
    "date": ["The offer ends {v}.", "Your new date is {v}."],
    "price": ["The total comes to {v}.", "The refund of {v} is on its way."],
    "version": ["Upgrade to {v} to get the fix.", "The server reports {v}."],
    "semver_range": ["Use {v} in your requirements.", "A range like {v} keeps you on compatible releases."],
    "hex_colour": ["Set the button background to {v}.", "{v} has enough contrast on white."],
    "file_hash": ["Expected digest {v}.", "The published checksum is {v}."],
    "invoice_number": ["I've reissued {v} with the corrected VAT.", "Invoice {v} is marked as paid."],
    "room_number": ["Your seat is {v}.", "Please come to {v}."],
    "sku": ["Do you mean {v}?", "{v} is back in stock on Friday."],
    "math_expression": ["So {v}, as expected.", "Close: {v}."],
    "coordinates": ["Those coordinates ({v}) are in the harbour.", "The meeting point is {v}."],
    "placeholder": ["Our export replaced it with {v}.", "The value was masked as {v} before it reached me."],
    "non_public_ip": ["Point the client at {v}.", "Your router's LAN address is {v}."],
    "misc_code": ["The job failed with {v}.", "{v} usually means the service was stopped."],
}
NEG_PROMPTS = ["any news?", "what do you see on your side?", "and?", "ok, what should I do?"]
NEG_ACKS = ["Thanks, let me check.", "Got it.", "One moment.", "Thanks for the details.", "Let me look into that."]
NEG_DOMAINS = {
    "order_id": "shopping",
    "ticket_id": "support",
    "tracking_number": "shopping",
    "uuid": "devops",
    "git_sha": "devops",
    "isbn": "education",
    "imei": "support",
    "timestamp": "devops",
    "date": "travel",
    "price": "shopping",
    "version": "devops",
    "semver_range": "devops",
    "hex_colour": "devops",
    "file_hash": "devops",
    "invoice_number": "finance",
    "room_number": "travel",
    "sku": "shopping",
    "math_expression": "education",
    "coordinates": "travel",
    "placeholder": "support",
    "non_public_ip": "devops",
    "misc_code": "devops",
}
NEG_SYSTEM = {
    "shopping": "You are the shopping assistant for Northwind Home.",
    "support": "You are the support assistant for Acme Telecom.",
    "devops": "You are DevHelper, a coding assistant.",
    "education": "You are a tutor assistant for LearnPath.",
    "travel": "You are the virtual assistant for SkyLine Airways.",
    "finance": "You are the accounts-payable assistant for Globex.",
}


def neg_snippets(vals: dict[str, list[NV]]) -> list[tuple[str, list[Msg]]]:
    """A few hand-shaped multi-value messages (JSON, code, logs) built from the pools."""

    def pop(kind: str, pred: Any = None) -> NV:
        pool = vals[kind]
        for i in range(len(pool) - 1, -1, -1):
            if pred is None or pred(pool[i].text):
                return pool.pop(i)
        raise LookupError(kind)

    def semver(t: str) -> bool:
        return re.fullmatch(r"v?\d+\.\d+\.\d+", t) is not None

    out: list[tuple[str, list[Msg]]] = []
    pkg = [pop("semver_range"), pop("semver_range"), pop("version", semver)]
    out.append(
        (
            "devops",
            [
                Msg(
                    "user",
                    [
                        'why won\'t npm install this?\n```json\n{\n  "dependencies": {\n    "left-pad": "',
                        pkg[0],
                        '",\n    "chalk": "',
                        pkg[1],
                        '"\n  },\n  "version": "',
                        pkg[2],
                        '"\n}\n```',
                    ],
                ),
                Msg(
                    "assistant",
                    ["Those ranges look fine. Delete node_modules and the lock file, then run `npm install` again."],
                ),
            ],
        )
    )
    log = [
        pop("timestamp", lambda t: "T" in t),
        pop("non_public_ip", lambda t: t[0].isdigit() and "/" not in t),
        pop("uuid", lambda t: t[0] not in "{"),
        pop("non_public_ip", lambda t: ":" in t and "localhost" not in t),
        pop("misc_code", lambda t: t.startswith(("E", "SQL", "exit"))),
    ]
    out.append(
        (
            "devops",
            [
                Msg(
                    "user",
                    [
                        "here's the log\n```\n",
                        log[0],
                        " WARN upstream ",
                        log[1],
                        " request_id=",
                        log[2],
                        " retrying via ",
                        log[3],
                        "\nfatal: ",
                        log[4],
                        "\n```",
                    ],
                ),
                Msg(
                    "assistant",
                    ["The upstream is timing out on the internal network. Check the service on that host first."],
                ),
            ],
        )
    )
    shas = [pop("git_sha"), pop("git_sha"), pop("git_sha")]
    out.append(
        (
            "devops",
            [
                Msg(
                    "user",
                    [
                        "```\n$ git log --oneline -3\n",
                        shas[0],
                        " fix flaky test\n",
                        shas[1],
                        " bump deps\n",
                        shas[2],
                        " initial import\n```\nwhich one broke the build?",
                    ],
                ),
                Msg(
                    "assistant",
                    ["Probably the dependency bump. Run `git bisect` between the first and last commit to confirm."],
                ),
            ],
        )
    )
    order = [
        pop("order_id"),
        pop("sku", lambda t: " " not in t),
        pop("price", lambda t: t[0] in "$\u00a3\u20ac"),
        pop("tracking_number"),
        pop("date", lambda t: re.fullmatch(r"\d{4}-\d\d-\d\d", t)),
    ]
    out.append(
        (
            "shopping",
            [
                Msg("user", ["where is my parcel"]),
                Msg("assistant", [""], tool_args=['{"order_id": "', order[0], '"}'], tool_name="get_order"),
                Msg(
                    "tool",
                    [
                        '{"order_id": "',
                        order[0],
                        '", "items": [{"sku": "',
                        order[1],
                        '", "price": "',
                        order[2],
                        '"}], "tracking": "',
                        order[3],
                        '", "eta": "',
                        order[4],
                        '"}',
                    ],
                    tool_name="get_order",
                ),
                Msg("assistant", ["Your parcel is on its way and should arrive on the date shown in your order page."]),
            ],
        )
    )
    css = [pop("hex_colour", lambda t: t.startswith("#")) for _ in range(3)]
    out.append(
        (
            "devops",
            [
                Msg(
                    "user",
                    [
                        "```css\n.btn { background: ",
                        css[0],
                        "; color: ",
                        css[1],
                        "; border-color: ",
                        css[2],
                        "; }\n```\nthe border doesn't show",
                    ],
                ),
                Msg("assistant", ["You also need `border-style: solid;` and a width; the colour alone draws nothing."]),
            ],
        )
    )
    ph = [pop("placeholder"), pop("placeholder"), pop("placeholder"), pop("placeholder")]
    out.append(
        (
            "support",
            [
                Msg(
                    "system",
                    [
                        "You are the support assistant for Acme Telecom. Customer data in this transcript was "
                        "anonymised: ",
                        ph[0],
                        ", ",
                        ph[1],
                        ", ",
                        ph[2],
                        " and ",
                        ph[3],
                        " are placeholders.",
                    ],
                ),
                Msg("user", ["why can't I see my details?"]),
                Msg("assistant", ["Your details are hidden in this view for privacy. You can see them in the app."]),
            ],
        )
    )
    imeis = [pop("imei"), pop("imei")]
    out.append(
        (
            "support",
            [
                Msg(
                    "user",
                    [
                        "I have two phones on the plan, IMEIs ",
                        imeis[0],
                        " and ",
                        imeis[1],
                        ". one of them won't register",
                    ],
                ),
                Msg("assistant", [""], tool_args=['{"imei": "', imeis[1], '"}'], tool_name="check_device"),
                Msg("tool", ['{"registered": false, "reason": "device not on whitelist"}'], tool_name="check_device"),
                Msg(
                    "assistant",
                    ["The second phone isn't on the network whitelist yet. I've requested it; allow 2 hours."],
                ),
            ],
        )
    )
    hashes = [pop("file_hash", lambda t: re.fullmatch("[0-9a-f]{64}", t)) for _ in range(2)]
    out.append(
        (
            "devops",
            [
                Msg(
                    "user",
                    [
                        "```\n$ sha256sum release.tar.gz\n",
                        hashes[0],
                        "  release.tar.gz\n```\nthe site lists ",
                        hashes[1],
                        " - is my download corrupted?",
                    ],
                ),
                Msg("assistant", ["If the two digests differ, yes: download it again and compare before installing."]),
            ],
        )
    )
    return out


def build_negatives() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    vals = negatives_values()
    convs: list[dict[str, Any]] = []
    truth: list[dict[str, Any]] = []
    n = 0

    def emit(domain: str, msgs: list[Msg]) -> None:
        nonlocal n
        n += 1
        cid = f"neg-{n:03d}"
        all_msgs = msgs if msgs[0].role == "system" else [Msg("system", [NEG_SYSTEM[domain]]), *msgs]
        out_msgs = []
        call_n = 0
        for i, m in enumerate(all_msgs):
            content, spans = assemble(m.segs)
            d: dict[str, Any] = {"role": m.role, "content": content}
            if m.tool_args is not None:
                call_n += 1
                args, arg_spans = assemble(m.tool_args)
                d["tool_calls"] = [
                    {"id": f"call_{call_n}", "type": "function", "function": {"name": m.tool_name, "arguments": args}}
                ]
                for obj, s, e in arg_spans:
                    truth.append(truth_row(cid, i, obj, s, e, "tool_calls[0].function.arguments"))
            if m.role == "tool":
                d["tool_call_id"] = f"call_{call_n}"
                d["name"] = m.tool_name
            for obj, s, e in spans:
                truth.append(truth_row(cid, i, obj, s, e, "content"))
            out_msgs.append(d)
        convs.append(
            {
                "id": cid,
                "messages": out_msgs,
                "metadata": {
                    "domain": domain,
                    "channel": rng.choice(["app", "web"]),
                    "locale": "en-US",
                    "benchmark": "pii-negatives",
                    "synthetic": True,
                },
            }
        )

    for domain, msgs in neg_snippets(vals):
        emit(domain, msgs)
    pool = [v for vs in vals.values() for v in vs]
    rng.shuffle(pool)
    by_domain: dict[str, list[NV]] = {}
    for v in pool:
        by_domain.setdefault(NEG_DOMAINS[v.kind], []).append(v)
    for domain, vs in by_domain.items():
        while vs:
            take = min(len(vs), rng.randint(4, 7))
            chunk, vs = vs[:take], vs[take:]
            msgs: list[Msg] = []
            for v in chunk:
                if rng.random() < 0.7:
                    before, after = rng.choice(NEG_USER[v.kind]).split("{v}")
                    msgs += [Msg("user", [before, v, after]), Msg("assistant", [rng.choice(NEG_ACKS)])]
                else:
                    before, after = rng.choice(NEG_ASSISTANT[v.kind]).split("{v}")
                    msgs += [Msg("user", [rng.choice(NEG_PROMPTS)]), Msg("assistant", [before, v, after])]
            emit(domain, msgs)
    return convs, truth


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    with path.open("w", encoding="utf-8", newline="\n") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")


def main() -> None:
    convs, truth = build_planted()
    write_jsonl(HERE / "planted.jsonl", convs)
    write_jsonl(HERE / "planted_truth.jsonl", truth)
    nconvs, ntruth = build_negatives()
    write_jsonl(HERE / "negatives.jsonl", nconvs)
    write_jsonl(HERE / "negatives_truth.jsonl", ntruth)
    print(
        f"planted: {len(convs)} conversations, {len(truth)} values; negatives: {len(nconvs)} conversations, "
        f"{len(ntruth)} values"
    )


if __name__ == "__main__":
    main()
