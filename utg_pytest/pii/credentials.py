"""Secrets: API keys by prefix, JWTs, PEM private keys, bearer tokens, credentials in URLs, `password=` values,
and random-looking tokens that are not UUIDs, digests or git SHAs."""

from __future__ import annotations

import itertools
import math
import re
from collections import Counter
from collections.abc import Iterator

from utg_pytest.pii.context import Candidate, Text
from utg_pytest.pii.lazy import Lazy

_SECRET_WORDS = Lazy(
    r"token|secret|passw|\bpwd\b|api.?key|\bkey\b|auth|bearer|credential|private|session|cookie"
    r"|signing",
    re.I,
)
_HASH_WORDS = Lazy(
    r"\bsha|md5|hash|checksum|digest|commit|\bgit\b|revert|\brev\b|artifact|build|checkout|check out"
    r"|cherry|release|integrity",
    re.I,
)

_TOKEN_EDGE = r"(?<![A-Za-z0-9_-])"
_TOKEN_END = r"(?![A-Za-z0-9_-])"
_PREFIXED_SECRET = Lazy(
    _TOKEN_EDGE
    + "(?:"
    + "|".join(
        f"(?P<{rule}>{pattern})"
        for rule, pattern in (
            ("openai_key", r"sk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_-]{20,}"),
            ("github_token", r"gh[pousr]_[A-Za-z0-9]{30,}|github_pat_[A-Za-z0-9_]{22,}"),
            ("aws_access_key_id", r"(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}"),
            ("slack_token", r"xox[abeposr]-[A-Za-z0-9-]{10,}|xapp-[A-Za-z0-9-]{10,}"),
            ("stripe_key", r"[sr]k_(?:live|test)_[A-Za-z0-9]{16,}"),
            ("google_api_key", r"AIza[A-Za-z0-9_-]{35}"),
            ("gitlab_token", r"glpat-[A-Za-z0-9_-]{20,}"),
            ("huggingface_token", r"hf_[A-Za-z0-9]{30,}"),
            ("npm_token", r"npm_[A-Za-z0-9]{36}"),
            ("pypi_token", r"pypi-[A-Za-z0-9_-]{50,}"),
            ("sendgrid_key", r"SG\.[A-Za-z0-9_-]{16,}\.[A-Za-z0-9_-]{16,}"),
            ("jwt", r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
        )
    )
    + ")"
    + _TOKEN_END
)
_BEARER = Lazy(r"\bbearer\s+([A-Za-z0-9._~+/-]{16,}=*)", re.I)
_PEM = Lazy(  # a truncated key, without its END line, takes all the base64-like text after it
    r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----(?:(?!-----END)(?:[A-Za-z0-9+/=\s:,.-]|\\[nr]))*"
    r"(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----)?"
)
_CREDENTIAL_URL = Lazy(
    r"(?<![\w+.-])[a-z][a-z0-9+.-]{1,20}://[^\0\s:/?#@'\"<>]*:[^\0\s/?#@'\"<>]+@[^\0\s'\"<>`)\]}]+", re.I
)
_PASSWORD = Lazy(r"\b(?:password|passwd|pwd|passphrase|pass)[\"']?\s*[:=]\s*[\"']?([^\0\s\"'<>,;]{6,})", re.I)
_PASSWORD_LIKE = Lazy(r"[0-9!@#$%^&*+=?~]")
_NOT_A_PASSWORD = Lazy(r"[A-Z0-9_]+|[*.xX]+|[$%{<].*|.*\(.*")
"""Environment-variable names, masks, template variables and code calls."""
_TOKEN = Lazy(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{32,}={0,2}(?![A-Za-z0-9+/=_-])")
_HEX = Lazy(r"[0-9a-f-]+|[0-9A-F-]+")
_UUID = Lazy(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
_DIGEST_PREFIX = Lazy(r"(?:sha[0-9]+|md5)[-:]", re.I)
_WORDISH = Lazy(r"[A-Z]?[a-z]{3,}")
_PATH_SEGMENT = Lazy(r"/[A-Za-z_-]{3,}(?=/)")


def _path(token: str) -> bool:
    return (token.startswith("/") and "/" in token[1:]) or len(_PATH_SEGMENT.findall(token)) >= 2


def _entropy(text: str) -> float:
    n = len(text)
    return -sum(c / n * math.log2(c / n) for c in Counter(text).values())


def _random_looking(token: str) -> bool:
    """Random base62/base64 rather than an identifier, a path or an alphabet: detect-secrets' 4.5 bits per
    character, or 4.0 with upper case, lower case and digits all present; either way not mostly made of words
    (CamelCase names like PPDocLayoutV4MultiscaleAttention are), and not mostly runs such as 0123...ABC."""
    body = token.rstrip("=")
    if not (any(c.isdigit() for c in body) and any(c.isalpha() for c in body)):
        return False
    if sum(map(len, _WORDISH.findall(body))) >= 0.65 * len(body) or _path(body):
        return False
    if sum(ord(b) - ord(a) == 1 for a, b in itertools.pairwise(body)) >= len(body) / 2:
        return False
    entropy = _entropy(body)
    mixed = any(c.isupper() for c in body) and any(c.islower() for c in body)
    return entropy >= 4.5 or (mixed and entropy >= 4.0)


def secrets(t: Text) -> Iterator[Candidate]:
    s = t.s
    for match in _PEM.finditer(s):
        yield match.start(), match.end(), "secret", "private_key"
    for match in _PREFIXED_SECRET.finditer(s):
        yield match.start(), match.end(), "secret", str(match.lastgroup)
    for match in _BEARER.finditer(s):
        yield match.start(1), match.end(1), "secret", "bearer"
    for match in _CREDENTIAL_URL.finditer(s):
        yield match.start(), match.start() + len(match.group().rstrip(".,;:!?")), "secret", "credential_url"
    for match in _PASSWORD.finditer(s):
        value = match.group(1)
        if _PASSWORD_LIKE.search(value) and not _NOT_A_PASSWORD.fullmatch(value):
            yield match.start(1), match.end(1), "secret", "password"
    for match in _TOKEN.finditer(s):
        token, (a, b) = match.group(), match.span()
        if _DIGEST_PREFIX.match(token):
            continue
        if _UUID.fullmatch(token.strip("{}")):
            continue
        if sum(c.isalnum() for c in token) < 32:
            continue
        if _HEX.fullmatch(token):
            if t.last_end(_SECRET_WORDS, a) > t.last_end(_HASH_WORDS, a):
                yield a, b, "secret", "hex_token"
        elif _random_looking(token):
            yield a, b, "secret", "token"
