"""Checksums, validators and text transforms shared by make_corpus.py and check_corpus.py.

Standard library only, so the corpus can be rebuilt and checked without extra packages.
check_corpus.py additionally cross-checks with python-stdnum and phonenumbers when they are importable.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import math
import re
import unicodedata
from collections import Counter
from urllib.parse import unquote, urlsplit

# Invisible characters a guard must strip before matching (NFKC keeps all of them).
ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
ZW_RE = re.compile("[" + ZERO_WIDTH + "]")


# ---------------------------------------------------------------- generic checksums
def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return total % 10 == 0


def luhn_digit(payload: str) -> str:
    for d in "0123456789":
        if luhn_ok(payload + d):
            return d
    raise AssertionError("unreachable")


def iban_to_int(iban: str) -> int:
    s = iban[4:] + iban[:4]
    return int("".join(str(int(c, 36)) for c in s))


def iban_ok(iban: str) -> bool:
    return iban_to_int(iban) % 97 == 1


def iban_make(cc: str, bban: str) -> str:
    check = 98 - iban_to_int(cc + "00" + bban) % 97
    return f"{cc}{check:02d}{bban}"


_VH_D = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 2, 3, 4, 0, 6, 7, 8, 9, 5],
    [2, 3, 4, 0, 1, 7, 8, 9, 5, 6],
    [3, 4, 0, 1, 2, 8, 9, 5, 6, 7],
    [4, 0, 1, 2, 3, 9, 5, 6, 7, 8],
    [5, 9, 8, 7, 6, 0, 4, 3, 2, 1],
    [6, 5, 9, 8, 7, 1, 0, 4, 3, 2],
    [7, 6, 5, 9, 8, 2, 1, 0, 4, 3],
    [8, 7, 6, 5, 9, 3, 2, 1, 0, 4],
    [9, 8, 7, 6, 5, 4, 3, 2, 1, 0],
]
_VH_P = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9],
    [1, 5, 7, 6, 2, 8, 3, 0, 9, 4],
    [5, 8, 0, 3, 7, 9, 6, 1, 4, 2],
    [8, 9, 1, 6, 0, 4, 3, 5, 2, 7],
    [9, 4, 5, 3, 1, 2, 6, 8, 7, 0],
    [4, 2, 8, 6, 5, 7, 3, 9, 0, 1],
    [2, 7, 9, 3, 8, 0, 6, 4, 1, 5],
    [7, 0, 4, 6, 9, 1, 3, 2, 5, 8],
]
_VH_INV = [0, 4, 3, 2, 1, 5, 6, 7, 8, 9]


def verhoeff_ok(digits: str) -> bool:
    c = 0
    for i, ch in enumerate(reversed(digits)):
        c = _VH_D[c][_VH_P[i % 8][int(ch)]]
    return c == 0


def verhoeff_digit(payload: str) -> str:
    c = 0
    for i, ch in enumerate(reversed(payload)):
        c = _VH_D[c][_VH_P[(i + 1) % 8][int(ch)]]
    return str(_VH_INV[c])


def mod11_10_digit(payload: str) -> str:
    """ISO 7064 Mod 11,10 (German Steuer-IdNr)."""
    p = 10
    for ch in payload:
        s = (int(ch) + p) % 10 or 10
        p = (2 * s) % 11
    return str((11 - p) % 10)


# ---------------------------------------------------------------- national ids
SSN_BLACKLIST = {"078051120", "219099999", "457555462"}


def us_ssn_ok(s: str) -> bool:
    d = re.sub(r"[\s-]", "", s)
    if not re.fullmatch(r"\d{9}", d):
        return False
    area, group, serial = d[:3], d[3:5], d[5:]
    if area in ("000", "666") or area[0] == "9" or group == "00" or serial == "0000":
        return False
    return d not in SSN_BLACKLIST


NINO_FIRST = "ABCEGHJKLMNOPRSTWXYZ"
NINO_SECOND = "ABCEGHJKLMNPRSTWXYZ"
NINO_BAD_PREFIX = {"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"}


def uk_nino_ok(s: str) -> bool:
    s = re.sub(r"\s", "", s).upper()
    m = re.fullmatch(r"([A-Z])([A-Z])(\d{6})([A-D])", s)
    if not m:
        return False
    a, b = m.group(1), m.group(2)
    return a in NINO_FIRST and b in NINO_SECOND and (a + b) not in NINO_BAD_PREFIX


def uk_nhs_digit(payload9: str) -> str | None:
    r = sum(int(c) * w for c, w in zip(payload9, range(10, 1, -1), strict=True)) % 11
    check = 11 - r
    if check == 11:
        return "0"
    if check == 10:
        return None
    return str(check)


def uk_nhs_ok(s: str) -> bool:
    d = re.sub(r"[\s-]", "", s)
    return bool(re.fullmatch(r"\d{10}", d)) and uk_nhs_digit(d[:9]) == d[9]


DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"


def es_dni_ok(s: str) -> bool:
    s = re.sub(r"[\s.-]", "", s).upper()
    m = re.fullmatch(r"(\d{8})([A-Z])", s)
    return bool(m) and DNI_LETTERS[int(m.group(1)) % 23] == m.group(2)


def es_nie_ok(s: str) -> bool:
    s = re.sub(r"[\s.-]", "", s).upper()
    m = re.fullmatch(r"([XYZ])(\d{7})([A-Z])", s)
    if not m:
        return False
    n = int(str("XYZ".index(m.group(1))) + m.group(2))
    return DNI_LETTERS[n % 23] == m.group(3)


def fr_nir_key(first13: str) -> str:
    s = first13.replace("2A", "19", 1) if first13[5:7] == "2A" else first13
    s = s.replace("2B", "18", 1) if first13[5:7] == "2B" else s
    return f"{97 - int(s) % 97:02d}"


def fr_nir_ok(s: str) -> bool:
    s = re.sub(r"[\s.]", "", s).upper()
    if len(s) != 15 or not re.fullmatch(r"[12]\d{4}(\d\d|2A|2B)\d{8}", s):
        return False
    return fr_nir_key(s[:13]) == s[13:]


def in_aadhaar_ok(s: str) -> bool:
    d = re.sub(r"[\s-]", "", s)
    return bool(re.fullmatch(r"[2-9]\d{11}", d)) and d != d[::-1] and verhoeff_ok(d)


def br_cpf_digits(first9: str) -> str:
    d = [int(c) for c in first9]
    r1 = (sum(x * w for x, w in zip(d, range(10, 1, -1), strict=True)) * 10) % 11 % 10
    d.append(r1)
    r2 = (sum(x * w for x, w in zip(d, range(11, 1, -1), strict=True)) * 10) % 11 % 10
    return f"{r1}{r2}"


def br_cpf_ok(s: str) -> bool:
    d = re.sub(r"[\s.-]", "", s)
    return bool(re.fullmatch(r"\d{11}", d)) and len(set(d)) > 1 and br_cpf_digits(d[:9]) == d[9:]


def de_idnr_ok(s: str) -> bool:
    d = re.sub(r"\s", "", s)
    if not re.fullmatch(r"[1-9]\d{10}", d):
        return False
    reps = [c for c in Counter(d[:10]).values() if c > 1]
    return len(reps) == 1 and reps[0] in (2, 3) and mod11_10_digit(d[:10]) == d[10]


# odd-position values of the codice fiscale check character, for 0-9 then A-Z
_CF_ODD_VALUES = "1 0 5 7 9 13 15 17 19 21 1 0 5 7 9 13 15 17 19 21 2 4 18 20 11 3 6 8 12 14 16 10 22 25 24 23"
_CF_ODD = dict(zip("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ", map(int, _CF_ODD_VALUES.split()), strict=True))
CF_MONTHS = "ABCDEHLMPRST"


def it_cf_char(first15: str) -> str:
    total = 0
    for i, ch in enumerate(first15):
        if i % 2 == 0:
            total += _CF_ODD[ch]
        else:
            total += int(ch) if ch.isdigit() else ord(ch) - 65
    return chr(65 + total % 26)


def it_cf_ok(s: str) -> bool:
    s = re.sub(r"\s", "", s).upper()
    if not re.fullmatch(r"[A-Z]{6}\d{2}[ABCDEHLMPRST]\d{2}[A-Z]\d{3}[A-Z]", s):
        return False
    day = int(s[9:11])
    return (1 <= day <= 31 or 41 <= day <= 71) and it_cf_char(s[:15]) == s[15]


def nl_bsn_ok(s: str) -> bool:
    d = re.sub(r"[\s.]", "", s)
    if not re.fullmatch(r"\d{9}", d):
        return False
    total = sum(int(c) * w for c, w in zip(d[:8], range(9, 1, -1), strict=True)) - int(d[8])
    return total % 11 == 0 and d != "000000000"


def in_pan_ok(s: str) -> bool:
    # 4th character: holder type (P = person); 5th: initial of surname; digits not 0000.
    return bool(re.fullmatch(r"[A-Z]{3}[ABCFGHLJPTK][A-Z](?!0000)\d{4}[A-Z]", s.upper()))


# ---------------------------------------------------------------- other validators
def ip_public(s: str) -> bool:
    ip = ipaddress.ip_address(s)
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped.is_global
    return ip.is_global and not ip.is_multicast


def shannon(s: str) -> float:
    n = len(s)
    return -sum(c / n * math.log2(c / n) for c in Counter(s).values())


B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def base62(n: int, width: int) -> str:
    out = ""
    while n:
        n, r = divmod(n, 62)
        out = B62[r] + out
    return out.rjust(width, "0")


def b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


def jwt_parts_ok(token: str) -> bool:
    parts = token.split(".")
    if len(parts) != 3:
        return False
    header = json.loads(b64url_decode(parts[0]))
    payload = json.loads(b64url_decode(parts[1]))
    return "alg" in header and isinstance(payload, dict) and len(b64url_decode(parts[2])) >= 32


def cred_url_ok(url: str) -> bool:
    u = urlsplit(url)
    return bool(u.scheme and u.hostname and u.username and u.password)


# ---------------------------------------------------------------- ASN.1 / PEM
def der_read(buf: bytes, pos: int = 0) -> tuple[int, bytes, int]:
    """One TLV at pos: (tag, value, next_pos)."""
    tag = buf[pos]
    length = buf[pos + 1]
    pos += 2
    if length & 0x80:
        n = length & 0x7F
        length = int.from_bytes(buf[pos : pos + n], "big")
        pos += n
    return tag, buf[pos : pos + length], pos + length


def der_children(value: bytes) -> list[tuple[int, bytes]]:
    out = []
    pos = 0
    while pos < len(value):
        tag, v, pos = der_read(value, pos)
        out.append((tag, v))
    return out


P256_P = 2**256 - 2**224 + 2**192 + 2**96 - 1
P256_A = P256_P - 3
P256_G = (
    0x6B17D1F2E12C4247F8BCE6E563A440F277037D812DEB33A0F4A13945D898C296,
    0x4FE342E2FE1A7F9B8EE7EB4A7C0F9E162BCE33576B315ECECBB6406837BF51F5,
)
P256_N = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def p256_mul(k: int) -> tuple[int, int]:
    def add(a: tuple[int, int] | None, b: tuple[int, int] | None) -> tuple[int, int] | None:
        if a is None:
            return b
        if b is None:
            return a
        if a[0] == b[0] and (a[1] + b[1]) % P256_P == 0:
            return None
        if a == b:
            lam = (3 * a[0] * a[0] + P256_A) * pow(2 * a[1], -1, P256_P) % P256_P
        else:
            lam = (b[1] - a[1]) * pow(b[0] - a[0], -1, P256_P) % P256_P
        x = (lam * lam - a[0] - b[0]) % P256_P
        return x, (lam * (a[0] - x) - a[1]) % P256_P

    result: tuple[int, int] | None = None
    addend: tuple[int, int] | None = P256_G
    while k:
        if k & 1:
            result = add(result, addend)
        addend = add(addend, addend)
        k >>= 1
    assert result is not None
    return result


def pem_body(pem: str) -> tuple[str, bytes]:
    m = re.fullmatch(r"-----BEGIN ([A-Z ]+)-----\n([A-Za-z0-9+/=\n]+?)\n-----END \1-----", pem.strip())
    if not m:
        raise ValueError("not a PEM block")
    return m.group(1), base64.b64decode(m.group(2).replace("\n", ""), validate=True)


def _int(v: bytes) -> int:
    return int.from_bytes(v, "big")


def rsa_pkcs1_ok(der: bytes) -> bool:
    _tag, seq, _ = der_read(der)
    ints = [_int(v) for t, v in der_children(seq) if t == 0x02]
    _, n, e, d, p, q, dp, dq, qi = ints
    lam = (p - 1) * (q - 1) // math.gcd(p - 1, q - 1)
    return n == p * q and e * d % lam == 1 and dp == d % (p - 1) and dq == d % (q - 1) and qi * q % p == 1


def pem_ok(pem: str) -> bool:
    """Structural and mathematical check of the private keys the corpus uses."""
    label, der = pem_body(pem)
    if label == "RSA PRIVATE KEY":
        return rsa_pkcs1_ok(der)
    if label == "EC PRIVATE KEY":
        _, seq, _ = der_read(der)
        kids = der_children(seq)
        d = _int(kids[1][1])
        pub = der_children(kids[3][1])[0][1][1:]  # [1] EXPLICIT BIT STRING, drop unused-bits byte
        x, y = p256_mul(d)
        return 0 < d < P256_N and pub == b"\x04" + x.to_bytes(32, "big") + y.to_bytes(32, "big")
    if label == "PRIVATE KEY":
        _, seq, _ = der_read(der)
        kids = der_children(seq)
        oid = der_children(kids[1][1])[0][1]
        if oid == bytes.fromhex("2a864886f70d010101"):  # rsaEncryption
            return rsa_pkcs1_ok(kids[2][1])
        if oid == bytes.fromhex("2b6570"):  # Ed25519
            inner = der_children(kids[2][1])
            return inner[0][0] == 0x04 and len(inner[0][1]) == 32
    return False


# ---------------------------------------------------------------- canonical forms
def strip_invisible(s: str) -> str:
    return ZW_RE.sub("", unicodedata.normalize("NFKC", s))


_OBF_AT = re.compile(r"\s*(?:\[\s*at\s*\]|\(\s*at\s*\)|\{\s*at\s*\}|\s+at\s+)\s*", re.I)
_OBF_DOT = re.compile(r"\s*(?:\[\s*dot\s*\]|\(\s*dot\s*\)|\{\s*dot\s*\}|\s+dot\s+)\s*", re.I)


def canon_email(s: str) -> str:
    s = unquote(strip_invisible(s)).strip()
    s = _OBF_AT.sub("@", s)
    s = _OBF_DOT.sub(".", s)
    return s.replace("\n", "").lower()


def canon_digits(s: str) -> str:
    return re.sub(r"\D", "", strip_invisible(s))


def canon_alnum(s: str) -> str:
    return re.sub(r"[^0-9A-Za-z]", "", strip_invisible(s)).upper()


def canon_secret(s: str) -> str:
    s = strip_invisible(s)
    if "\\n" in s:  # PEM pasted inside a JSON string
        s = json.loads('"' + s + '"')
    return s.replace("\r", "")
