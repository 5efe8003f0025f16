"""Scorers: how a prediction is compared with the real user turn. The built-in semantic and lexical scorers are just the
first two registered; every metric name the rest of the code uses comes from here.

A scorer says whether it needs sentence vectors of its two texts (the scoring phase then encodes them, once per
distinct text) and maps (prediction, real turn) to a number, higher is better, on the 0..1 scale thresholds are read
in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from utg_pytest.scoring import similarity

SEMANTIC = "semantic"
LEXICAL = "lexical"


class Scorer(Protocol):
    @property
    def name(self) -> str:
        """The metric's name in results, gates and reports."""
        ...

    @property
    def version(self) -> str:
        """Bump when scores change meaning, so runs scored differently are not compared."""
        ...

    @property
    def embeds(self) -> bool:
        """Whether `score` reads `vectors` of its texts."""
        ...

    def score(self, prediction: str, target: str, vectors: Mapping[str, Any]) -> float: ...


@dataclass(frozen=True)
class SemanticScorer:
    name: str = SEMANTIC
    version: str = "cosine-1"
    embeds: bool = True

    def score(self, prediction: str, target: str, vectors: Mapping[str, Any]) -> float:
        return similarity.semantic(prediction, target, vectors)


@dataclass(frozen=True)
class LexicalScorer:
    name: str = LEXICAL
    version: str = "token-sort-1"
    embeds: bool = False

    def score(self, prediction: str, target: str, vectors: Mapping[str, Any]) -> float:
        return similarity.lexical(prediction, target)


BUILT_IN: tuple[Scorer, ...] = (SemanticScorer(), LexicalScorer())


def names(scorers: Sequence[Scorer]) -> tuple[str, ...]:
    return tuple(scorer.name for scorer in scorers)


def versions(scorers: Sequence[Scorer]) -> dict[str, str]:
    return {scorer.name: scorer.version for scorer in scorers}


def score_all(scorers: Sequence[Scorer], prediction: str, target: str, vectors: Mapping[str, Any]) -> dict[str, float]:
    return {scorer.name: scorer.score(prediction, target, vectors) for scorer in scorers}
