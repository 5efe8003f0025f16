"""Financial and national numbers: payment cards, IBANs, US SSNs and national ids, each confirmed by a checksum
or python-stdnum's rules (imported on first use), and by a keyword where the digits alone are too weak."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import cache
from types import ModuleType
from typing import NamedTuple

from utg_pytest.pii.context import Candidate, Text
from utg_pytest.pii.lazy import Lazy

_CARD_WORDS = Lazy(r"card|visa|master|amex|credit|debit|\bcc\b|\bpan\b|payment", re.I)
_SSN_WORDS = Lazy(r"\bssn|social|\bss#", re.I)
_ID_WORDS = {
    "uk_nhs": Lazy(r"\bnhs", re.I),
    "nl_bsn": Lazy(r"\bbsn|burgerservice|sofi", re.I),
    "br_cpf": Lazy(r"\bcpf", re.I),
    "de_idnr": Lazy(r"steuer|\bidnr|identifikationsnummer|tax.?id|\btin\b", re.I),
}

_Label = tuple[str, str]
"""A kind and the rule that found it."""


@cache
def _stdnum() -> dict[str, ModuleType]:
    from stdnum import iban
    from stdnum.br import cpf
    from stdnum.de import idnr
    from stdnum.es import dni, nie
    from stdnum.fr import nir
    from stdnum.gb import nhs
    from stdnum.in_ import aadhaar, pan
    from stdnum.it import codicefiscale
    from stdnum.nl import bsn

    return {
        "iban": iban,
        "br_cpf": cpf,
        "de_idnr": idnr,
        "es_dni": dni,
        "es_nie": nie,
        "fr_nir": nir,
        "uk_nhs": nhs,
        "in_aadhaar": aadhaar,
        "in_pan": pan,
        "it_codicefiscale": codicefiscale,
        "nl_bsn": bsn,
    }


def _valid(scheme: str, number: str) -> bool:
    return bool(_stdnum()[scheme].is_valid(number))


# payment cards, SSNs and numeric national ids: runs of digit groups, each contiguous range of groups tried
_DIGIT_RUN = Lazy(r"[0-9]+(?:(?:[ .-]|\r?\n)[0-9]+)*")
_CARD_BRANDS: tuple[tuple[str, str, str, tuple[int, ...]], ...] = (
    ("visa", "4", "4", (13, 16, 19)),
    ("mastercard", "51", "55", (16,)),
    ("mastercard", "2221", "2720", (16,)),
    ("amex", "34", "34", (15,)),
    ("amex", "37", "37", (15,)),
    ("diners", "300", "305", (14, 15, 16, 17, 18, 19)),
    ("diners", "36", "36", (14, 15, 16, 17, 18, 19)),
    ("diners", "38", "39", (14, 15, 16, 17, 18, 19)),
    ("jcb", "3528", "3589", (16, 17, 18, 19)),
    ("discover", "6011", "6011", (16, 17, 18, 19)),
    ("discover", "644", "649", (16, 17, 18, 19)),
    ("discover", "65", "65", (16, 17, 18, 19)),
    ("unionpay", "62", "62", (16, 17, 18, 19)),
    ("mir", "2200", "2204", (16, 17, 18, 19)),
    ("maestro", "5018", "5018", tuple(range(12, 20))),
    ("maestro", "5020", "5020", tuple(range(12, 20))),
    ("maestro", "5038", "5038", tuple(range(12, 20))),
    ("maestro", "5893", "5893", tuple(range(12, 20))),
    ("maestro", "6304", "6304", tuple(range(12, 20))),
    ("maestro", "6759", "6759", tuple(range(12, 20))),
    ("maestro", "6761", "6763", tuple(range(12, 20))),
    ("maestro", "50", "50", (16, 17, 18, 19)),
    ("maestro", "56", "69", (16, 17, 18, 19)),
    ("rupay", "81", "82", (16,)),
)
_SSN_EXAMPLES = frozenset({"123456789", "078051120", "219099999", "457555462"})


def _luhn(digits: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def _card_brand(digits: str) -> str | None:
    for brand, low, high, lengths in _CARD_BRANDS:
        if len(digits) in lengths and low <= digits[: len(low)] <= high:
            return brand
    return None


def _card_grouping(lengths: tuple[int, ...]) -> bool:
    """Unbroken, or in groups of at least three digits (4-4-4-4, 4-6-5, 4-6-4), or in fours with a shorter rest."""
    return len(lengths) == 1 or min(lengths) >= 3 or all(n == 4 for n in lengths[:-1])


def _ssn_valid(digits: str) -> bool:
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    return (
        area not in ("000", "666")
        and area[0] != "9"
        and group != "00"
        and serial != "0000"
        and digits not in _SSN_EXAMPLES
    )


class _Range(NamedTuple):
    """Consecutive digit groups of a run: where they are, their digits, group lengths and the separators between
    them, and whether the run goes on past them with the same separator."""

    start: int
    end: int
    digits: str
    lengths: tuple[int, ...]
    seps: str
    inside_run: bool


def _ranges(t: Text) -> Iterator[_Range]:
    """Each range of up to five consecutive digit groups of a run (a 19-digit card in fours has five) with 9 to 19
    digits, so that a value next to another number is still found; not a lone group that is the fraction or the
    integer part of a decimal."""
    s = t.s
    for run in _DIGIT_RUN.finditer(s):
        base, text = run.start(), run.group()
        groups = [(base + m.start(), base + m.end()) for m in re.finditer("[0-9]+", text)]
        between = [s[groups[k][1] : groups[k + 1][0]] for k in range(len(groups) - 1)]
        for i in range(len(groups)):
            digits = ""
            for j in range(i, min(i + 5, len(groups))):
                start, end = groups[i][0], groups[j][1]
                digits += s[groups[j][0] : end]
                if len(digits) > 19:
                    break
                decimal = (start >= 2 and s[start - 1] == "." and not s[start - 2].isspace()) or (
                    s[end : end + 1] == "." and s[end + 1 : end + 2].isdigit()
                )
                if len(digits) < 9 or (i == j and decimal):
                    continue
                lengths = tuple(b - a for a, b in groups[i : j + 1])
                inside = set(between[i:j]).intersection(between[i - 1 : i] + between[j : j + 1])
                yield _Range(start, end, digits, lengths, "".join(between[i:j]), bool(inside))


def cards(t: Text) -> Iterator[Candidate]:
    s = t.s
    for r in _ranges(t):
        if not (12 <= len(r.digits) <= 19 and _card_grouping(r.lengths) and _luhn(r.digits)):
            continue
        brand = _card_brand(r.digits)
        letters = (r.start > 0 and s[r.start - 1].isalpha()) or (r.end < len(s) and s[r.end].isalpha())
        if brand and not letters and (not t.labelled(r.start) or t.near(_CARD_WORDS, r.start, r.end)):
            yield r.start, r.end, "payment_card", brand


def digit_ids(t: Text) -> Iterator[Candidate]:
    """SSNs and numeric national ids; unlike cards, not within a run that goes on with the same separator (their
    weaker checksums would match somewhere in most long runs), nor labelled or part of a longer identifier."""
    for r in _ranges(t):
        if r.inside_run or t.labelled(r.start) or t.glued(r.start, r.end):
            continue
        for kind, scheme in _numbers(t, r):
            yield r.start, r.end, kind, scheme


def _numbers(t: Text, r: _Range) -> Iterator[_Label]:
    """What digit groups can be by their digits, grouping and the keywords near them."""
    start, end, digits, lengths, seps = r.start, r.end, r.digits, r.lengths, r.seps
    n = len(digits)
    compact = len(lengths) == 1
    uniform = len(set(seps)) <= 1
    if n == 9 and _ssn_valid(digits):
        spaced = lengths == (3, 2, 4) and uniform and seps[0] in "- "
        if spaced or (compact and t.near(_SSN_WORDS, start, end)):
            yield "us_ssn", "us_ssn"
    bsn = n == 9 and (compact or (lengths == (4, 2, 3) and seps == ".."))
    if bsn and t.near(_ID_WORDS["nl_bsn"], start, end) and _valid("nl_bsn", digits):
        yield "national_id", "nl_bsn"
    nhs = n == 10 and (compact or (lengths == (3, 3, 4) and uniform))
    if nhs and t.near(_ID_WORDS["uk_nhs"], start, end) and _valid("uk_nhs", digits):
        yield "national_id", "uk_nhs"
    cpf = n == 11 and ((lengths == (3, 3, 3, 2) and seps == "..-") or compact)
    if cpf and (not compact or t.near(_ID_WORDS["br_cpf"], start, end)) and _valid("br_cpf", digits):
        yield "national_id", "br_cpf"
    idnr = n == 11 and ((lengths == (2, 3, 3, 3) and seps == "   ") or compact)
    if idnr and (not compact or t.near(_ID_WORDS["de_idnr"], start, end)) and _valid("de_idnr", digits):
        yield "national_id", "de_idnr"
    if n == 12 and (compact or (lengths == (4, 4, 4) and uniform)) and _valid("in_aadhaar", digits):
        yield "national_id", "in_aadhaar"


# national ids with letters, and the French NIR (whose department may be 2A/2B)
_ALNUM_IDS: tuple[tuple[str, Lazy], ...] = (
    ("uk_nino", Lazy(r"(?<!\w)([a-z]{2}) ?([0-9]{2}) ?([0-9]{2}) ?([0-9]{2}) ?([a-d])(?!\w)", re.I)),
    ("es_dni", Lazy(r"(?<!\w)([0-9]{8})-?([a-z])(?!\w)", re.I)),
    ("es_nie", Lazy(r"(?<!\w)([xyz])-?([0-9]{7})-?([a-z])(?!\w)", re.I)),
    ("in_pan", Lazy(r"(?<!\w)[a-z]{3}[abcfghljptk][a-z][0-9]{4}[a-z](?!\w)", re.I)),
    (
        "it_codicefiscale",
        Lazy(r"(?<!\w)[a-z]{6}[0-9lmnp-v]{2}[a-ehlmpr-t][0-9lmnp-v]{2}[a-z][0-9lmnp-v]{3}[a-z](?!\w)", re.I),
    ),
    (
        "fr_nir",
        Lazy(r"(?<!\w)[1-478]\s?[0-9]{2}\s?[0-9]{2}\s?(?:[0-9]{2}|2[ab])\s?[0-9]{3}\s?[0-9]{3}\s?[0-9]{2}(?!\w)", re.I),
    ),
)
_DIGIT = Lazy("[0-9]")
_NINO_FIRST, _NINO_SECOND = frozenset("DFIQUV"), frozenset("DFIOQUV")
_NINO_PAIRS = frozenset({"BG", "GB", "KN", "NK", "NT", "TN", "ZZ"})


def alnum_ids(t: Text) -> Iterator[Candidate]:
    if not _DIGIT.search(t.s):  # each of them has digits; six scans of every word would cost more than this one
        return
    for scheme, pattern in _ALNUM_IDS:
        for match in pattern.finditer(t.s):
            number = re.sub(r"[\s-]", "", match.group()).upper()
            if scheme == "uk_nino":
                valid = number[0] not in _NINO_FIRST and number[1] not in _NINO_SECOND and number[:2] not in _NINO_PAIRS
            elif scheme == "it_codicefiscale":
                valid = any(c.isdigit() for c in number) and _valid(scheme, number)
            else:
                valid = _valid(scheme, number)
            if valid and not (scheme == "fr_nir" and t.labelled(match.start())):
                yield match.start(), match.end(), "national_id", scheme


# IBAN: a country code and check digits, then up to 30 letters and digits in groups; every length is tried
_IBAN_START = Lazy(r"(?<![a-z0-9])[a-z]{2}[0-9]{2}(?=[ -]?[a-z0-9])", re.I)
_IBAN_BODY = Lazy(r"(?:[ -]?[a-z0-9]){11,30}", re.I)


def ibans(t: Text) -> Iterator[Candidate]:
    s = t.s
    for start in _IBAN_START.finditer(s):
        body = _IBAN_BODY.match(s, start.end())
        if not body:
            continue
        ends = [m.end() for m in re.finditer("[a-z0-9]", body.group(), re.I)]
        for count in range(len(ends), 10, -1):
            end = start.end() + ends[count - 1]
            if end < len(s) and s[end].isalnum():
                continue
            if _valid("iban", re.sub("[ -]", "", s[start.start() : end]).upper()):
                yield start.start(), end, "iban", start.group()[:2].lower()
                break
