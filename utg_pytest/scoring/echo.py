"""Echo detection: is a prediction a near-copy of the assistant's last message?

Parroting the context is the cheapest way to look similar to the real turn, and small models do it often when asked
to speak as the user. A prediction is an echo when, after lower-casing and stripping punctuation, it matches the
assistant message as a whole (Indel ratio) or reproduces a span of it (partial ratio, for predictions of at least
ECHO_MIN_WORDS words, so that a short "ok thanks" is not an echo of a long answer that contains those words).
"""

from __future__ import annotations

ECHO_THRESHOLD = 0.8
ECHO_MIN_WORDS = 6


def echo_score(prediction: str, assistant: str) -> float:
    from rapidfuzz import fuzz, utils

    left = utils.default_process(prediction)
    right = utils.default_process(assistant)
    if not left or not right:
        return 0.0
    whole = fuzz.ratio(left, right) / 100.0
    if len(left.split()) < ECHO_MIN_WORDS:
        return float(whole)
    return float(max(whole, fuzz.partial_ratio(left, right) / 100.0))


def is_echo(prediction: str, assistant: str, threshold: float = ECHO_THRESHOLD) -> bool:
    return echo_score(prediction, assistant) >= threshold
