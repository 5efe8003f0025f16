"""Contact data: e-mail addresses, plain or obfuscated, and phone numbers, confirmed by libphonenumber (imported on
first use) or by their shape and a keyword."""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from functools import cache
from types import ModuleType

from utg_pytest.pii.context import Candidate, Text
from utg_pytest.pii.lazy import Lazy

PHONE_REGIONS = ("US", "CA", "GB", "DE", "FR", "IN", "JP", "BR", "AU", "ES", "IT", "NL")
"""Regions whose national formats are recognised; numbers written with + or 00 are recognised for every region."""

_PHONE_WORDS = Lazy(
    r"phone|\btel\b|tel:|telef|t[ée]l[ée]phone|mobil|\bcell|\bcall|\bring\b|\btext me|\bsms\b"
    r"|whatsapp|\bfax\b|contact|\breach|number|nummer|num[ée]ro",
    re.I,
)


# e-mail: found from each at-sign outwards, so that long runs of word characters cost linear time
_AT = Lazy(r"@|%40|\s*[\[({<]\s*at\s*[\])}>]\s*|\s+at\s+", re.I)
_LOCAL = Lazy(r"\w(?:[\w.+'-]{0,62}\w)?\Z")
OBFUSCATED_DOT = r"\s*[\[({<]\s*dot\s*[\])}>]\s*|\s+dot\s+"
_TLD = r"(?:[^\W\d_]{2,63}|xn--[\w-]{1,59})(?![\w-])"
_DOMAIN = Lazy(rf"(?:[\w-]{{1,63}}(?:\.|{OBFUSCATED_DOT})){{1,8}}{_TLD}", re.I)
_DOMAIN_IN_WORDS = Lazy(rf"(?:[\w-]{{1,63}}(?:{OBFUSCATED_DOT})){{1,8}}{_TLD}", re.I)


def emails(t: Text) -> Iterator[Candidate]:
    for at in _AT.finditer(t.s):
        a, b = at.span()
        local = _LOCAL.search(t.s, max(0, a - 64), a)
        in_words = at.group().strip().isalpha()
        domain = (_DOMAIN_IN_WORDS if in_words else _DOMAIN).match(t.s, b)
        if local and domain:
            yield local.start(), domain.end(), "email", "address" if at.group() == "@" else "obfuscated"


# phones: candidates by shape, then libphonenumber, then a fallback on shape and keywords
_PHONE_SEPARATOR = r"(?:(?:[ .\-/]|\r?\n)(?:\([0-9]{1,4}\) ?)?|\([0-9]{1,4}\) ?)"
"""Between digit groups: a space, dot, dash, slash or line break, or a trunk or area code in parentheses."""
_PHONE = Lazy(
    r"(?:\+|(?<![0-9])00(?=[1-9]))?(?:\([0-9]{1,5}\) ?)?[0-9]{1,15}"
    rf"(?:{_PHONE_SEPARATOR}[0-9]{{1,15}}){{0,7}}"
    r"(?:\s*(?:ext\.?|extension|x)\s*[0-9]{1,6}(?![0-9]))?",
    re.I,
)
EXTENSION = Lazy(r"\s*(?:ext\.?|extension|x)\s*[0-9]{1,6}$", re.I)
_DATE = Lazy(
    r"(?:19|20)[0-9]{2}([-./])(?:0?[1-9]|1[0-2])\1(?:0?[1-9]|[12][0-9]|3[01])(?![0-9])"
    r"|(?<![0-9])(?:0?[1-9]|[12][0-9]|3[01])([-./])(?:0?[1-9]|[12][0-9]|3[01])\2(?:19|20)[0-9]{2}"
)
_NOT_PHONE = Lazy(r"[0-9]{5}-[0-9]{4}|(?:19|20)[0-9]{2}-(?:19|20)[0-9]{2}")
"""A US ZIP+4 code, a range of years."""
_THOUSANDS = Lazy(r"[1-9][0-9]{0,2}(?: [0-9]{3}){2,}")
"""15 000 000: a quantity, not a phone, unless libphonenumber says otherwise."""
_NANP_SHAPE = Lazy(r"(?:\+?1[ .-]?)?(?:\([2-9][0-9]{2}\) ?|[2-9][0-9]{2}[ .-])[0-9]{3}[ .-][0-9]{4}")


@cache
def _phonenumbers() -> ModuleType:
    import phonenumbers

    return phonenumbers


def _phone_regions(written: str) -> tuple[str, ...]:
    """National formats begin with a trunk 0 in most regions; NANP, Spain, Italian mobiles, Brazil (area code in
    parentheses) and Indian mobiles are written without one."""
    first = written.lstrip("(")[0]
    if first == "0":
        return tuple(r for r in PHONE_REGIONS if r not in ("US", "CA", "ES"))
    if first == "1":
        return ("US", "CA", "BR") if written.startswith("(") else ("US", "CA")
    return ("US", "CA", "ES", "IT", "BR", "IN")


def _phone_number(number: str, regions: Sequence[str], valid: bool, grouping: list[int] | None = None) -> bool:
    """Whether `number` is a valid (or only a possible) number in one of `regions`; with `grouping`, also written in
    digit groups of those lengths, as that region formats its numbers."""
    pn = _phonenumbers()
    for region in regions:
        try:
            parsed = pn.parse(number, region)
        except pn.NumberParseException:  # "not a phone number": the answer we asked for, not an error
            continue
        if not (pn.is_valid_number(parsed) if valid else pn.is_possible_number(parsed)):
            continue
        formatted = pn.format_number(parsed, pn.PhoneNumberFormat.NATIONAL)
        if grouping is None or [len(g) for g in re.findall("[0-9]+", formatted)] == grouping:
            return True
    return False


def phones(t: Text) -> Iterator[Candidate]:
    for match in _PHONE.finditer(t.s):
        rule = _phone_rule(t, *match.span())
        if rule:
            yield *match.span(), "phone", rule


def _phone_rule(t: Text, a: int, b: int) -> str | None:
    """How [a, b) is a phone number (international, national, or by the fallback on shape and keywords), if it is."""
    s, written = t.s, t.s[a:b]
    body = EXTENSION.sub("", written)
    groups = re.findall("[0-9]+", body)
    digits = "".join(groups)
    if not 7 <= len(digits) <= 15 or (a and s[a - 1] in "+_$€£¥") or t.glued(a, b) or t.labelled(a):
        return None
    if len(groups) > 1 and not _phone_shaped(body, groups):
        return None
    if written.startswith(("+", "00")):
        international = "+" + digits[2:] if written.startswith("00") else "+" + digits
        return "international" if _phone_number(international + written[len(body) :], ("ZZ",), valid=False) else None
    keyword = t.near(_PHONE_WORDS, a, b, 48, 24)
    if len(groups) == 1 and not written.startswith("(") and not keyword:
        return None
    nanp = bool(_NANP_SHAPE.fullmatch(body))
    shaped = keyword or nanp or written.startswith(("(", "0"))
    if _phone_number(written, _phone_regions(written), True, None if shaped else list(map(len, groups))):
        return "national"
    return "fallback" if (keyword and not _THOUSANDS.fullmatch(body)) or nanp else None


def _phone_shaped(body: str, groups: list[str]) -> bool:
    """Rule out the digit groups that are versions, addresses, dates, decimals, ISBNs, ZIP codes and year ranges
    rather than phones."""
    national = groups[1:] if body.startswith(("+", "00")) else groups
    if "." in body and (min(map(len, national)) < 2 or len(groups) < 3):
        return False
    if len(groups) == 4 and "." in body and all(len(g) <= 3 for g in groups):
        return False
    if body.count("/") > 1 or _DATE.search(body) or _NOT_PHONE.fullmatch(body):
        return False
    if body.startswith(("+", "00")):
        return len(groups[-1]) >= 2
    return (len(groups[0]) >= 2 or groups[0] == "1") and len(groups[-1]) >= 2
