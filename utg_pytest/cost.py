"""Tokens and money: estimates before a request, the budget that stops spending, and the cost of what was spent.

Estimates are deliberately simple (about four characters per token, plus a few tokens of framing per chat message):
no tokenizer is loaded to plan a run, and the figure is used as an upper bound together with `max_tokens`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from utg_pytest.generate.prompts import Request

CHARS_PER_TOKEN = 4.0
TOKENS_PER_MESSAGE = 4


def estimate_prompt_tokens(request: Request) -> int:
    if request.messages is not None:
        return sum(
            TOKENS_PER_MESSAGE + math.ceil(len(m.get("content", "")) / CHARS_PER_TOKEN) for m in request.messages
        )
    return math.ceil(len(request.prompt or "") / CHARS_PER_TOKEN)


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.prompt_tokens + other.prompt_tokens, self.completion_tokens + other.completion_tokens)


def cost(usage: Usage, price_input: float | None, price_output: float | None) -> float | None:
    """Money for `usage` at prices per million tokens; None when no price is set."""
    if price_input is None and price_output is None:
        return None
    return (usage.prompt_tokens * (price_input or 0.0) + usage.completion_tokens * (price_output or 0.0)) / 1e6


class BudgetExhausted(RuntimeError):
    pass


class Budget:
    """Admits a request only if its worst case (estimated prompt plus `max_tokens`) still fits next to what was spent
    and what requests in flight may spend, so concurrency cannot overshoot the budget."""

    def __init__(self, limit: int | None) -> None:
        self.limit = limit
        self.spent = Usage()
        self._reserved = 0

    def reserve(self, worst_case: int) -> None:
        if self.limit is not None and self.spent.total + self._reserved + worst_case > self.limit:
            raise BudgetExhausted(
                f"token budget of {self.limit} reached ({self.spent.total} spent, {self._reserved} in flight): "
                "the model was not called for this probe (raise --utg-budget-tokens)"
            )
        self._reserved += worst_case

    def settle(self, worst_case: int, used: Usage) -> None:
        self._reserved -= worst_case
        self.spent = self.spent + used
