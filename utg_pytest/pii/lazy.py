"""Regular expressions used across the package, compiled on first use."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterator
from functools import cached_property
from typing import Any


class Lazy:
    """A regular expression compiled on first use, so that importing the package stays cheap (compiling all of
    them takes about 15 ms)."""

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self.pattern, self.flags = pattern, flags

    @cached_property
    def _compiled(self) -> re.Pattern[str]:
        return re.compile(self.pattern, self.flags)

    def search(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> re.Match[str] | None:
        return self._compiled.search(string, pos, endpos)

    def match(self, string: str, pos: int = 0) -> re.Match[str] | None:
        return self._compiled.match(string, pos)

    def fullmatch(self, string: str) -> re.Match[str] | None:
        return self._compiled.fullmatch(string)

    def finditer(self, string: str, pos: int = 0, endpos: int = sys.maxsize) -> Iterator[re.Match[str]]:
        return self._compiled.finditer(string, pos, endpos)

    def findall(self, string: str) -> list[Any]:
        return self._compiled.findall(string)

    def sub(self, repl: str | Callable[[re.Match[str]], str], string: str) -> str:
        return self._compiled.sub(repl, string)
