"""A prompt as the planner reads it: split into clauses, each read by patterns in turn.

A pattern's match is consumed (later patterns cannot see it) and kept with the plan field it went to, so a plan can
say which words each field came from and which words it could not place.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from robotni.errors import RobotniError
from robotni.planner import words

# Clauses: "helloworld every day at 7; fakejob every 30 seconds" is two.
CLAUSE_RE = re.compile(r"[^;\n]+")
WORD_RE = re.compile(r"[^\s\0,;!?()\"]+")
GONE = "\0"


class PlanRefused(RobotniError):
    """A prompt the planner cannot turn into schedules; `errors` names the field and says what is missing."""

    def __init__(self, message: str, errors: dict[str, Any] | None = None):
        super().__init__(message)
        self.errors: dict[str, Any] = errors if errors is not None else {"prompt": [message]}


def lowered(text: str) -> str:
    """The text in lower case, character for character, so offsets stay those of the prompt."""
    return "".join(low if len(low := char.lower()) == 1 else char for char in text)


@dataclass
class Clause:
    """One clause of the prompt: what is left to read, and which words went to which field."""

    raw: str
    start: int
    end: int
    text: str = ""
    spans: list[tuple[int, int, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.text = lowered(self.raw)

    def take(
        self, pattern: re.Pattern[str], role: str, accept: Callable[[re.Match[str]], bool] = lambda _: True
    ) -> list[re.Match[str]]:
        """Every match of pattern (that accept allows) in what is left; each is consumed for role."""
        found = [m for m in pattern.finditer(self.text, self.start, self.end) if m.end() > m.start() and accept(m)]
        for match in found:
            self.consume(match.start(), match.end(), role)
        return found

    def consume(self, start: int, end: int, role: str) -> None:
        self.text = self.text[:start] + GONE * (end - start) + self.text[end:]
        self.spans.append((start, end, role))

    def said(self, role: str) -> str:
        """The prompt's own words that went to role, in the order written."""
        return " ".join(" ".join(self.raw[s:e].split()) for s, e, r in sorted(self.spans) if r == role)

    def left(self) -> Iterator[re.Match[str]]:
        """The words nothing has read yet."""
        return WORD_RE.finditer(self.text, self.start, self.end)

    def original(self, match: re.Match[str]) -> str:
        return self.raw[match.start() : match.end()]


def clauses(prompt: str) -> list[Clause]:
    return [Clause(prompt, m.start(), m.end()) for m in CLAUSE_RE.finditer(prompt) if m.group().strip()]


def unplaced(clause: Clause) -> list[str]:
    """The clause's words no pattern read, without filler; a time word among them refuses the plan (no guess)."""
    left = []
    for match in clause.left():
        word = match.group().strip(".:'-")
        if not word or word in words.FILLER:
            continue
        if any(char.isdigit() for char in word) or _about_time(word):
            original = clause.original(match)
            raise PlanRefused(f"could not read {original!r}: say times as 07:00, 6pm or 'jam 7', days by name")
        clause.consume(match.start(), match.end(), "unplaced")
        left.append(clause.original(match).strip(".:'-"))
    return left


def _about_time(word: str) -> bool:
    if word in words.NOT_ONLY_TIME:
        return False
    return word in words.TIME_VOCABULARY or any(re.fullmatch(p, word) for p in words.TIME_VOCABULARY_PATTERNS)
