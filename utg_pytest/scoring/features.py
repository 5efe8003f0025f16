"""What the plausibility model reads off a predicted user turn and its context: surface signs of degenerate output,
of the assistant's voice and of a closing, and its lexical and semantic closeness to each kind of context message.

Every feature is a plain float computed from the texts and a `Semantic` similarity, so the model's weights
(labels_model.json) are all that is needed besides the embedder; `NAMES` fixes their order.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Callable, Sequence
from functools import lru_cache

from utg_pytest.model import Message

Semantic = Callable[[str, str], float]
"""Cosine similarity of two texts (see scoring.embeddings); only ever asked about the prediction and context texts."""

WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)
SENTENCE_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")
TERMINAL = ".!?)\"'…:;`*"


def vocabulary(words: str) -> frozenset[str]:
    return frozenset(words.split())


MARKUP = re.compile(
    r"<\|[a-z_]+\|>|\[/?INST\]|</?s>|<\|im_|<start_of_turn>|<end_of_turn>|</?[a-z_]+>|\[[a-z_ ]*name[a-z_ ]*\]|"
    r"\b(user ?name|sender|usuale|chat by the assistant)\s*:",
    re.IGNORECASE,
)
META = re.compile(
    r"\bthe user\b|\buser'?s\b|\bUSER\b|next message|\bthe assistant\b|assistant'?s instructions|"
    r"\bai assistant\b|\bsystem\b\s*\(",
)
SYSTEM_VOICE = re.compile(r"^\s*(you are|you're) (a|an|the|my)\b", re.IGNORECASE)
SERVICE = re.compile(
    r"i'?m (here|ready|happy|glad) to (help|assist)|i'?m (a|an) (helpful |friendly )?(ai|chatbot|assistant|bot)|"
    r"as an? (ai|chatbot|chat assistant|language model|assistant)|how (can|may) i (help|assist)|"
    r"(i'?m|i am) (sorry|afraid),? but|i'?m (unable|not able) to (assist|help|provide)|i can'?t (help|assist)|"
    r"unable to assist|thank you for (your patience|reaching out|contacting)|"
    r"sorry for (any|the) (inconvenience|confusion)|"
    r"let me know if|feel free to|hope (this|that) helps|is there anything else|what'?s your (next )?question|"
    r"i'?ll send you|i('ve| have) (sent|added|updated|booked|cancelled|refunded)|please (provide|share|refer)|"
    r"could you (please )?(provide|share|confirm|tell me)|i recommend|i suggest|here'?s (how|a|an|the|what)|"
    r"here is|you can use|you (need|have|will need|'ll need|should|can|could) to?\b",
    re.IGNORECASE,
)
OPENERS = re.compile(
    r"^\s*(sure[,!.]|certainly|of course|absolutely|great question|good question|exactly[,.!]|"
    r"that'?s (exactly|correct|right)|you'?re right|correct!|no problem|hello!|hi there!|welcome|unfortunately|"
    r"i apologi[sz]e|"
    r"i'?m (so )?sorry (for|to hear|about)|sorry (for|about) the)",
    re.IGNORECASE,
)
APOLOGY = re.compile(r"\s*(i'?m|i am) (so |very |really )?(sorry|afraid)|\s*(sorry|my apologies|apologies)\b", re.I)
GREETING = re.compile(r"\s*(hello|hi|hey|dear|good (morning|afternoon|evening)|greetings)\b", re.I)
FIRST_PERSON = vocabulary("i i'm i've i'd i'll me my mine myself we our us im ive")
SECOND_PERSON = vocabulary("you your you're you'll you've yours yourself")
DEICTIC = vocabulary("that this it those these them there one ones")
QUESTION_OPENERS = vocabulary("how what what's where when which who why can could do does is are should would will")
ANSWER_OPENERS = vocabulary("yes yeah yep yup no nope nah sure ok okay sí si ja nein oui non maybe")
GRATITUDE = vocabulary("thanks thank thx ty cheers bye goodbye gracias merci danke grazie obrigado adios adiós")
CLOSING_WORDS = vocabulary(
    """thanks thank you thx ty cheers bye goodbye ok okay k kk got it perfect great awesome cool nice alright all right
    that's thats that all i needed need for the help your so much very lot a again appreciate it have good day
    everything sorted works working now solved fixed will do sounds fine understood makes sense gracias muchas
    merci beaucoup danke vielen dank schön adios adiós au revoir tschüss bueno bien super exactly yes yep
    wonderful brilliant excellent helpful really this was have nice weekend take care see later you've been
    done then love glad happy i'll i'm make sure keep an eye on try"""
)
TROUBLE = vocabulary(
    "but still not doesn't didn't don't can't won't isn't wasn't however except only error problem issue again wrong"
)
STOPWORDS = vocabulary(
    "the a an of and or my your but because if is are was were be been it its this that these those to in on at for "
    "with from by as do does did have has had can could would should will what which when where who why how you i "
    "we they he she me us them there here not no yes any some one all just also then than about into out up down "
    "i'm it's that's don't can't get got like know want need use using so very really"
)


TEMPLATE_TOKENS = re.compile(r"<\|[a-z_]+\|>|\[/?INST\]|</?s>|<\|im_|<start_of_turn>|<end_of_turn>", re.IGNORECASE)
DANGLING = vocabulary("the a an of and or my your but because if")
"""Words a finished message does not end on; prepositions are left out ("can't sign in", "what is it for")."""
REQUEST_OPENERS = vocabulary("how what what's where when which who why can could do does is are should would will may")
INSTRUCTIONS = vocabulary(
    "try please turn make create upgrade leave use check go click open restart insert run add mix chill follow "
    "contact install replace select enable disable update unplug plug hold press tap set call visit ensure remember"
)
CONDITIONAL_INSTRUCTION = re.compile(
    r"^\s*(for|if|when|after|before|once|to)\b[^,.?]{0,80},\s*(" + "|".join(sorted(INSTRUCTIONS)) + r")\b",
    re.IGNORECASE,
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
SERVICE_ACTION = re.compile(
    r"\b(i|we)('ve| have|'ll| will| can| could)( \w+){1,5} (you|your)\b|^\s*to \w+ (your|the|a|this)\b|"
    r"\bwe (can|cannot|can't|will|'ll|are unable|do not|don't|offer|recommend)\b|^\s*unfortunately\b",
    re.IGNORECASE,
)
EXPLAINING_WORDS = 14
"""A statement this long with no first person and no question reads as the assistant explaining."""


def words(text: str) -> list[str]:
    return [w.lower() for w in WORD.findall(text)]


@lru_cache(maxsize=16384)
def content_words(text: str) -> frozenset[str]:
    """Numbers and longer words, the specifics a reply is about. Remembered: every probe of a conversation looks at
    the messages the probe before it looked at."""
    return frozenset(
        t for t in re.findall(r"[\w.]+", text.lower()) if (t[0].isdigit() or len(t) >= 4) and t not in STOPWORDS
    )


def lexical(a: str, b: str) -> float:
    from rapidfuzz import fuzz, utils

    return float(fuzz.token_sort_ratio(a, b, processor=utils.default_process)) / 100.0


def partial(a: str, b: str) -> float:
    """How well the shorter text matches some stretch of the longer: a copy of part of a message."""
    from rapidfuzz import fuzz, utils

    if min(len(a), len(b)) < 12:
        return 0.0
    return float(fuzz.partial_ratio(a, b, processor=utils.default_process)) / 100.0


def repeated_ngrams(tokens: Sequence[str], n: int = 3) -> int:
    """How often the commonest n-gram occurs, 0 when none repeats: loops repeat a phrase many times."""
    grams = Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    top = max(grams.values(), default=0)
    return top if top > 1 else 0


def ends_unfinished(text: str) -> bool:
    stripped = text.strip()
    return bool(stripped) and stripped[-1] not in TERMINAL


def degenerate_reason(text: str) -> str | None:
    """Output that is degenerate whatever else it is (the readers' first rule): empty, template tokens, not
    language, or a loop. Being cut off is left to the model, since a cut-off reply in the assistant's voice is
    identity drift (see `cut_off_reason`)."""
    stripped = text.strip()
    if not stripped:
        return "empty"
    if TEMPLATE_TOKENS.search(stripped):
        return "leaked chat-template tokens"
    visible = [c for c in stripped if not c.isspace()]
    letters = sum(c.isalpha() for c in visible)
    if letters / len(visible) < 0.5 and "=" not in stripped:
        return "mostly not letters"
    found = words(stripped)
    if not found:
        return "no words"
    tokens = stripped.lower().split()
    if (len(found) >= 6 and len(set(found)) / len(found) < 0.4) or (
        len(tokens) >= 6 and len(set(tokens)) / len(tokens) < 0.4
    ):
        return "repetition loop"
    if repeated_ngrams(found, 4) >= 3:
        return "repetition loop"
    sentences = [s.strip().lower() for s in SENTENCE_SPLIT.split(stripped) if s.strip()]
    if len(sentences) >= 3 and len(set(sentences)) <= len(sentences) / 2:
        return "the same sentence repeated"
    vowelless = sum(1 for w in found if len(w) > 3 and not re.search(r"[aeiouyàâäéèêëîïôöùûüáíóúæøå]", w))
    if vowelless / len(found) > 0.4:
        return "not language"
    return None


def cut_off_reason(text: str) -> str | None:
    stripped = text.strip()
    if not stripped or stripped[-1] in TERMINAL:
        return None
    found = words(stripped)
    last = stripped.split()[-1].lower()
    if last in DANGLING or stripped.endswith((",", "-")):
        return "stops mid-sentence"
    if found and len(found[-1]) >= 2 and any(w != found[-1] and w.startswith(found[-1]) for w in found[:-1]):
        return "cut off mid-word"
    return None


def is_closing(text: str) -> bool:
    """Thanks, goodbye or a bare acknowledgement, with nothing asked and (almost) nothing said besides: either every
    word is a closing word, or a short message thanks and reports no trouble."""
    if "?" in text or "¿" in text:
        return False
    found = words(text)
    if not found or len(found) > 14:
        return False
    outside = [w for w in found if w not in CLOSING_WORDS]
    if len(outside) <= (1 if len(found) >= 4 else 0):
        return True
    return len(found) <= 8 and bool(GRATITUDE & set(found)) and not TROUBLE & set(found) and not _has_digits(text)


def _has_digits(text: str) -> bool:
    return any(c.isdigit() for c in text)


def assistant_style(text: str) -> str | None:
    """Phrasing of a service reply: its openers and stock phrases, acting for the user, instructing or explaining."""
    if ASSISTANT_OPENERS.search(text):
        return "opens like an assistant reply"
    if ASSISTANT_PHRASES.search(text):
        return "uses assistant phrasing"
    if SERVICE_ACTION.search(text):
        return "acts on the user's behalf, as a service agent would"
    found = words(text)
    second = sum(w in SECOND_PERSON for w in found)
    first = sum(w in FIRST_PERSON for w in found)
    asks = "?" in text
    if not asks and second >= 2 and first == 0:
        return "addresses the user as 'you' without asking anything"
    if found and found[0] in INSTRUCTIONS and first == 0 and not asks and (second or len(found) >= 8):
        return "gives the user instructions"
    if CONDITIONAL_INSTRUCTION.search(text) and first == 0 and not asks:
        return "gives the user instructions"
    if not asks and first == 0 and len(found) >= EXPLAINING_WORDS:
        return "explains at length without speaking for itself"
    return None


def surface(prediction: str) -> dict[str, float]:
    stripped = prediction.strip()
    found = words(stripped)
    count = len(found)
    tokens = stripped.lower().split()
    visible = [c for c in stripped if not c.isspace()]
    sentences = [s.strip().lower() for s in SENTENCE_SPLIT.split(stripped) if s.strip()]
    vowelless = sum(1 for w in found if len(w) > 3 and not re.search(r"[aeiouyàâäéèêëîïôöùûüáíóúæøå]", w))
    unfinished = ends_unfinished(stripped)
    first = sum(w in FIRST_PERSON for w in found)
    second = sum(w in SECOND_PERSON for w in found)
    per_word = max(count, 1)
    openers = [opening[0] for opening in (words(s) for s in sentences) if opening]
    per_sentence = max(len(openers), 1)
    return {
        "length": math.log1p(len(stripped)),
        "words": math.log1p(count),
        "unfinished": float(unfinished),
        "unfinished_long": float(unfinished) * min(len(stripped) / 200.0, 1.0),
        "distinct_words": len(set(found)) / count if count else 0.0,
        "distinct_tokens": len(set(tokens)) / len(tokens) if tokens else 0.0,
        "repeated_trigram": math.log1p(repeated_ngrams(found)),
        "loop": float(repeated_ngrams(found) >= 3),
        "repeated_sentences": 1.0 - len(set(sentences)) / len(sentences) if sentences else 0.0,
        "letters": sum(c.isalpha() for c in visible) / len(visible) if visible else 0.0,
        "vowelless": vowelless / count if count else 0.0,
        "lines": math.log1p(stripped.count("\n")),
        "code": float("`" in stripped),
        "markup": float(bool(MARKUP.search(stripped))),
        "meta": float(bool(META.search(stripped))),
        "system_voice": float(bool(SYSTEM_VOICE.search(stripped))),
        "service": min(len(SERVICE.findall(stripped)), 3) / 3.0,
        "opener": float(bool(OPENERS.search(stripped))),
        "apology": float(bool(APOLOGY.match(stripped))),
        "greeting": float(bool(GREETING.match(stripped))),
        "first_person": first / per_word,
        "second_person": second / per_word,
        "no_first_person": float(first == 0),
        "first_person_sentences": sum(w in FIRST_PERSON for w in openers) / per_sentence,
        "second_person_sentences": sum(w in SECOND_PERSON for w in openers) / per_sentence,
        "starts_you": float(bool(found) and found[0] in SECOND_PERSON),
        "question": float("?" in stripped or "¿" in stripped),
        "question_opener": float(bool(found) and found[0] in QUESTION_OPENERS),
        "deictic": sum(w in DEICTIC for w in found) / per_word,
        "gratitude": float(bool(GRATITUDE & set(found))),
        "closing_words": sum(w in CLOSING_WORDS for w in found) / per_word,
        "trouble": float(bool(TROUBLE & set(found))),
        "digits": float(_has_digits(stripped)),
        "cut_off": float(cut_off_reason(stripped) is not None),
        "assistant_style": float(assistant_style(stripped) is not None),
        "closing": float(is_closing(stripped)),
    }


def context_features(prediction: str, context: Sequence[Message], semantic: Semantic, window: int) -> dict[str, float]:
    """Semantic features look at the last `window` messages only (the ones embedded); lexical ones, which detect
    copies, at the whole context: a model often copies the user's first message or the system prompt."""

    def texts(role: str, among: Sequence[Message]) -> list[str]:
        return [m.text for m in among if m.role == role and m.text.strip()]

    recent = context[-window:] if window else ()
    assistants, users, systems = (texts(role, context) for role in ("assistant", "user", "system"))
    near_assistants, near_users, near_systems = (texts(role, recent) for role in ("assistant", "user", "system"))
    last = assistants[-1] if assistants else ""
    near_last = near_assistants[-1] if near_assistants and near_assistants[-1] == last else ""

    def best(score: Callable[[str, str], float], among: Sequence[str]) -> float:
        return max((score(prediction, t) for t in among), default=0.0)

    to_last = semantic(prediction, near_last) if near_last else 0.0
    to_users = best(semantic, near_users)
    mine = content_words(prediction)
    from_last = content_words(last)
    from_users = set().union(*(content_words(t) for t in users))
    everything = set().union(*(content_words(m.text) for m in context))
    found = words(prediction)
    lex_users = best(lexical, users)
    lex_assistants = best(lexical, assistants)
    lex_systems = best(lexical, systems)
    return {
        "sem_last": to_last,
        "lex_last": lexical(prediction, last) if last else 0.0,
        "partial_last": partial(prediction, last) if last else 0.0,
        "sem_earlier_assistant": best(semantic, near_assistants[:-1] if near_last else near_assistants),
        "lex_assistant": max(lex_assistants, best(partial, assistants) - 0.1),
        "sem_user": to_users,
        "lex_user": lex_users,
        "partial_user": best(partial, users),
        "lex_first_user": lexical(prediction, users[0]) if users else 0.0,
        "sem_system": best(semantic, near_systems),
        "lex_system": max(lex_systems, best(partial, systems) - 0.1),
        "user_over_last": to_users - to_last,
        "grounding": max([to_last, *(semantic(prediction, m.text) for m in recent if m.text.strip())]),
        "shared_last": len(mine & from_last) / len(mine) if mine else 0.0,
        "shared_users": len(mine & from_users) / len(mine) if mine else 0.0,
        "novel": len(mine - everything) / len(mine) if mine else 0.0,
        "shared_last_only": len((mine & from_last) - from_users) / len(mine) if mine else 0.0,
        "shared_users_only": len((mine & from_users) - from_last) / len(mine) if mine else 0.0,
        "last_asks": float("?" in last),
        "answers": float("?" in last and bool(found) and found[0] in ANSWER_OPENERS),
    }


def interactions(found: dict[str, float]) -> dict[str, float]:
    """The readers' precedence rules, which a linear model cannot express by itself: a cut-off message in the
    assistant's voice is identity drift, in the user's voice degenerate; meta text is irrelevant unless cut off."""
    cut = found["unfinished_long"]
    assistant = max(
        found["service"], found["opener"], found["system_voice"], found["assistant_style"], found["second_person"] * 3
    )
    return {
        "cut_assistant": cut * min(assistant, 1.0),
        "cut_user": cut * found["first_person"] * 5,
        "cut_voice": cut * (found["second_person_sentences"] - found["first_person_sentences"]),
        "meta_finished": found["meta"] * (1.0 - found["unfinished"]),
        "short_question": found["question"] * float(found["words"] <= math.log1p(12)),
    }


def features(prediction: str, context: Sequence[Message], semantic: Semantic, window: int) -> dict[str, float]:
    found = {**surface(prediction), **context_features(prediction, context, semantic, window)}
    return {**found, **interactions(found)}


NAMES: tuple[str, ...] = tuple(features("ok", (Message("user", "hi"), Message("assistant", "hi")), lambda a, b: 0.0, 2))
"""The features in the order the model's weights are stored in."""
