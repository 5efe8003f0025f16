"""Plausibility labels: is a predicted user turn a genuine follow-up to the assistant's last message, or one of the
failure modes the user-turn-generation method names (restating the earlier request, speaking as the assistant, an
unrelated request), or a closing, or degenerate output?

The heuristic classifier is deterministic and needs no extra model: surface rules for degenerate output, closings and
assistant-style phrasing, rapidfuzz overlap with the earlier user turns, and sentence-embedding similarity to the
context for grounding. Its accuracy is measured on a hand-labelled set kept apart from the fixtures
(tests/data/plausibility, benchmarks/labels.py).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from utg_pytest.model import Message

GENUINE = "genuine_followup"
RESTATEMENT = "restatement"
IDENTITY_DRIFT = "identity_drift"
IRRELEVANT = "irrelevant"
CLOSING = "closing"
DEGENERATE = "degenerate"
CONTEXT = 6
"""Messages of context a label is given against, by the heuristic classifier or the LLM judge: the recent exchange a
follow-up reacts to."""
LABELS: tuple[str, ...] = (GENUINE, RESTATEMENT, IDENTITY_DRIFT, IRRELEVANT, CLOSING, DEGENERATE)
HEURISTIC = "heuristic"
VERSION = 2
"""The rules' revision, recorded with every run: label rates of runs labelled by different rules are not compared."""

Semantic = Callable[[str, str], float]
"""Cosine similarity of two texts (see scoring.embeddings); only ever asked about the prediction and context texts."""


@dataclass(frozen=True)
class Label:
    label: str
    reason: str


@dataclass(frozen=True)
class Thresholds:
    """Cut-offs of the heuristic classifier, chosen on the development half of the labelled set."""

    copy: float = 0.80
    """Lexical similarity to the assistant's last message above which the prediction is a copy of it."""
    restated_lexical: float = 0.72
    restated_semantic: float = 0.65
    """Similarity to an earlier user message above which the prediction restates it..."""
    restated_margin: float = 0.10
    """...provided it is at least this much closer to that message than to the assistant's reply."""
    unrelated: float = 0.20
    """Semantic similarity to every recent message below which the prediction is unrelated to the conversation."""
    new_request: float = 0.25
    """A question or request this far from the assistant's last message (and not close to the user's earlier turns)
    asks something new rather than following up."""
    explaining_words: int = 14
    """A statement this long with no first person and no question reads as the assistant explaining."""


def _vocabulary(words: str) -> frozenset[str]:
    return frozenset(words.split())


TEMPLATE_TOKENS = re.compile(r"<\|[a-z_]+\|>|\[/?INST\]|</?s>|<\|im_|<start_of_turn>|<end_of_turn>", re.IGNORECASE)
WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)
SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")
DANGLING = _vocabulary("the a an of and or my your but because if")
"""Words a finished message does not end on; prepositions are left out ("can't sign in", "what is it for")."""
ANSWER_OPENERS = _vocabulary("yes yeah yep yup no nope nah sure ok okay sí si ja nein oui non maybe")
ANSWER_PAIRS = frozenset(
    ("not yet", "i think", "i guess", "i do", "i don't", "i have", "i haven't", "i did", "i didn't")
)
STOPWORDS = _vocabulary(
    "the a an of and or my your but because if is are was were be been it its this that these those to in on at for "
    "with from by as do does did have has had can could would should will what which when where who why how you i "
    "we they he she me us them there here not no yes any some one all just also then than about into out up down"
)
GRATITUDE = _vocabulary("thanks thank thx ty cheers bye goodbye gracias merci danke grazie obrigado adios adiós")
TROUBLE = _vocabulary(
    "but still not doesn't didn't don't can't won't isn't wasn't however except only error problem issue again wrong"
)
REQUEST_OPENERS = _vocabulary("how what what's where when which who why can could do does is are should would will may")
INSTRUCTIONS = _vocabulary(
    "try please turn make create upgrade leave use check go click open restart insert run add mix chill follow "
    "contact install replace select enable disable update unplug plug hold press tap set call visit ensure remember"
)
CONDITIONAL_INSTRUCTION = re.compile(
    r"^\s*(for|if|when|after|before|once|to)\b[^,.?]{0,80},\s*(" + "|".join(sorted(INSTRUCTIONS)) + r")\b",
    re.IGNORECASE,
)
CLOSING_WORDS = _vocabulary(
    """thanks thank you thx ty cheers bye goodbye ok okay k kk got it perfect great awesome cool nice alright all right
    that's thats that all i needed need for the help your so much very lot a again appreciate it have good day
    everything sorted works working now solved fixed will do sounds fine understood makes sense gracias muchas
    merci beaucoup danke vielen dank schön adios adiós au revoir tschüss bueno bien super exactly yes yep great!
    wonderful brilliant excellent helpful really this was that's have nice weekend take care see later you've been
    done then"""
)
ASSISTANT_OPENERS = re.compile(
    r"^\s*(sure[,!.]|certainly|of course[,!.]|absolutely[,!.]|great question|good question|happy to help|"
    r"i'?d be (happy|glad)|i would be (happy|glad)|i can help|i understand (your|that you)|i apologi[sz]e|"
    r"i'?m sorry (for|to hear|about the)|sorry for the (inconvenience|trouble|confusion)|"
    r"thank you for (reaching out|contacting|your patience|the details|providing|sharing)|thanks for (reaching out|"
    r"contacting|your patience|providing|sharing)|here'?s |here is |here are |to (do|fix|resolve|change) (this|that)|"
    r"you can |you could |you should |you'?ll need|you will need|you need to |first,|step 1|no problem[,!.]|"
    r"yes,? you can|it (sounds|looks) like you)",
    re.IGNORECASE,
)
ASSISTANT_PHRASES = re.compile(
    r"as an ai|language model|i'?d be happy to|feel free to|let me know if|hope (this|that) helps|"
    r"is there anything else|could you (please )?(provide|share|tell me|confirm|send)|please provide|"
    r"can you (please )?(provide|share|confirm) (your|the)|i recommend|i'?d recommend|i suggest|here are (some|a few)|"
    r"follow these steps|in summary|to summari[sz]e|\bhappy to help\b|i can assist|how (can|may) i (help|assist)|"
    r"(^|\n)\s*(\d+[.)]|[-*•]) ",
    re.IGNORECASE,
)
FIRST_PERSON = _vocabulary("i i'm i've i'd i'll me my mine myself we our us")
SECOND_PERSON = _vocabulary("you your you're you'll you've yours yourself")


def _words(text: str) -> list[str]:
    return [w.lower() for w in WORD.findall(text)]


def degenerate_reason(text: str) -> str | None:
    stripped = text.strip()
    if not stripped:
        return "empty"
    if TEMPLATE_TOKENS.search(stripped):
        return "leaked chat-template tokens"
    visible = [c for c in stripped if not c.isspace()]
    letters = sum(c.isalpha() for c in visible)
    if letters / len(visible) < 0.5:
        return "mostly not letters"
    words = _words(stripped)
    if not words:
        return "no words"
    tokens = stripped.lower().split()
    if (len(words) >= 6 and len(set(words)) / len(words) < 0.4) or (
        len(tokens) >= 6 and len(set(tokens)) / len(tokens) < 0.4
    ):
        return "repetition loop"
    sentences = [s.strip().lower() for s in SENTENCE_SPLIT.split(stripped) if s.strip()]
    if len(sentences) >= 3 and len(set(sentences)) <= len(sentences) / 2:
        return "the same sentence repeated"
    vowelless = sum(1 for w in words if len(w) > 3 and not re.search(r"[aeiouyàâäéèêëîïôöùûüáíóúæøå]", w))
    if vowelless / len(words) > 0.4:
        return "not language"
    if stripped[-1] not in ".!?)\"'…:;":
        last = stripped.split()[-1].lower()
        if last in DANGLING or stripped.endswith((",", "-")):
            return "stops mid-sentence"
        if len(words[-1]) >= 2 and any(w != words[-1] and w.startswith(words[-1]) for w in words[:-1]):
            return "cut off mid-word"
    return None


def is_closing(text: str) -> bool:
    """Thanks, goodbye or a bare acknowledgement, with nothing asked and (almost) nothing said besides: either every
    word is a closing word, or a short message thanks and reports no trouble."""
    if "?" in text or "¿" in text:
        return False
    words = _words(text)
    if not words or len(words) > 14:
        return False
    outside = [w for w in words if w not in CLOSING_WORDS]
    if len(outside) <= (1 if len(words) >= 4 else 0):
        return True
    return len(words) <= 8 and bool(GRATITUDE & set(words)) and not TROUBLE & set(words) and not _has_digits(text)


def _has_digits(text: str) -> bool:
    return any(c.isdigit() for c in text)


SERVICE_ACTION = re.compile(
    r"\b(i|we)('ve| have|'ll| will| can| could)( \w+){1,5} (you|your)\b|^\s*to \w+ (your|the|a|this)\b|"
    r"\bwe (can|cannot|can't|will|'ll|are unable|do not|don't|offer|recommend)\b|^\s*unfortunately\b",
    re.IGNORECASE,
)


def assistant_style(text: str, explaining_words: int = Thresholds.explaining_words) -> str | None:
    if ASSISTANT_OPENERS.search(text):
        return "opens like an assistant reply"
    if ASSISTANT_PHRASES.search(text):
        return "uses assistant phrasing"
    if SERVICE_ACTION.search(text):
        return "acts on the user's behalf, as a service agent would"
    words = _words(text)
    second = sum(w in SECOND_PERSON for w in words)
    first = sum(w in FIRST_PERSON for w in words)
    asks = "?" in text
    if not asks and second >= 2 and first == 0:
        return "addresses the user as 'you' without asking anything"
    if words and words[0] in INSTRUCTIONS and first == 0 and not asks and (second or len(words) >= 8):
        return "gives the user instructions"
    if CONDITIONAL_INSTRUCTION.search(text) and first == 0 and not asks:
        return "gives the user instructions"
    if not asks and first == 0 and len(words) >= explaining_words:
        return "explains at length without speaking for itself"
    return None


def asks_something(text: str) -> bool:
    words = _words(text)
    return "?" in text or bool(words and words[0] in REQUEST_OPENERS)


def answers_question(prediction: str, assistant: str) -> bool:
    """The assistant asked something and the prediction opens with an answer to it ("yes, ...", "no, ...")."""
    words = _words(prediction)
    return "?" in assistant and bool(words) and (words[0] in ANSWER_OPENERS or " ".join(words[:2]) in ANSWER_PAIRS)


def shares_specifics(prediction: str, assistant: str) -> bool:
    """Numbers or content words of the assistant's message taken up by the prediction: a question about them is about
    the reply, not a new request, however low the embedding similarity of a short text."""

    def specifics(text: str) -> set[str]:
        return {
            t for t in re.findall(r"[\w.]+", text.lower()) if (t[0].isdigit() or len(t) >= 4) and t not in STOPWORDS
        }

    return bool(specifics(prediction) & specifics(assistant))


def classify(
    prediction: str, context: Sequence[Message], semantic: Semantic, thresholds: Thresholds = Thresholds()
) -> Label:
    from rapidfuzz import fuzz, utils

    reason = degenerate_reason(prediction)
    if reason:
        return Label(DEGENERATE, reason)
    assistant = next((m.text for m in reversed(context) if m.role == "assistant"), "")
    earlier_users = [m.text for m in context if m.role == "user" and m.text.strip()]

    def lexical(a: str, b: str) -> float:
        return float(fuzz.token_sort_ratio(a, b, processor=utils.default_process)) / 100.0

    to_assistant_lexical = lexical(prediction, assistant) if assistant else 0.0
    if to_assistant_lexical >= thresholds.copy:
        return Label(IDENTITY_DRIFT, f"copies the assistant's last message (lexical {to_assistant_lexical:.2f})")
    if is_closing(prediction):
        return Label(CLOSING, "thanks, goodbye or acknowledgement only")
    style = assistant_style(prediction, thresholds.explaining_words)
    if style:
        return Label(IDENTITY_DRIFT, style)
    to_assistant = semantic(prediction, assistant) if assistant else 0.0
    to_users = [semantic(prediction, earlier) for earlier in earlier_users]
    for earlier in reversed(earlier_users):
        restated_lexical = lexical(prediction, earlier)
        restated_semantic = semantic(prediction, earlier)
        closer = max(restated_lexical - to_assistant_lexical, restated_semantic - to_assistant)
        if closer >= thresholds.restated_margin and (
            restated_lexical >= thresholds.restated_lexical or restated_semantic >= thresholds.restated_semantic
        ):
            return Label(
                RESTATEMENT,
                f"restates an earlier user message (lexical {restated_lexical:.2f}, semantic {restated_semantic:.2f})",
            )
    if answers_question(prediction, assistant):
        return Label(GENUINE, "answers the question in the assistant's last message")
    grounding = max([to_assistant, *(semantic(prediction, m.text) for m in context if m.text.strip())])
    if grounding < thresholds.unrelated:
        return Label(IRRELEVANT, f"unrelated to the conversation (best semantic similarity {grounding:.2f})")
    closest_user = max(to_users, default=0.0)
    new = to_assistant < thresholds.new_request and closest_user < thresholds.restated_semantic
    if new and asks_something(prediction) and not shares_specifics(prediction, assistant):
        return Label(IRRELEVANT, f"asks something new, not about the assistant's reply (semantic {to_assistant:.2f})")
    return Label(GENUINE, f"reacts to the assistant's last message (semantic {to_assistant:.2f})")


def context_texts(context: Sequence[Message]) -> list[str]:
    """The texts `classify` may ask `semantic` about besides the prediction, for encoding them up front."""
    return [m.text for m in context if m.text.strip()]
