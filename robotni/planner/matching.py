"""Which worker types a clause asks for (by name, else by the words of their descriptions) and its `key=value`
params. Checking the params against the type's schema is robotni/submission/check.py's, as for any job.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Mapping
from typing import Any

from robotni.planner import words
from robotni.planner.reading import Clause, PlanRefused
from robotni.worktypes.registry import WorkerType

# key=value, the value JSON-ish: "quoted", 'quoted', [a list], {an object}, or a bare word or number.
PARAM_RE = re.compile(
    r"(?<![\w.])([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(\"(?:[^\"\\]|\\.)*\"|'[^']*'|\[[^\]]*\]|\{[^}]*\}|[^\s,;]+)"
)
# Words a type's name may be written with: "hello world" and "hello-world" name helloworld.
NAME_WORD_RE = re.compile(r"[a-z0-9][a-z0-9_-]*")
SEPARATORS = re.compile(r"[-_]")
# A description's word counts when it says something: not short, not one of these.
DESCRIPTION_STOPWORDS = frozenset(
    [
        "the",
        "and",
        "with",
        "from",
        "that",
        "this",
        "than",
        "into",
        "each",
        "when",
        "what",
        "which",
        "their",
        "there",
        "then",
        "them",
        "they",
        "only",
        "also",
    ]
)
MIN_DESCRIPTION_WORD = 4
# Names are read in windows of up to this many words ("python script", "hello world").
NAME_WINDOW = 3


def params(clause: Clause) -> dict[str, Any]:
    """The clause's `key=value` pairs (consumed as `params`); a key given twice refuses the plan."""
    found: dict[str, Any] = {}
    for match in clause.take(PARAM_RE, "params"):
        key, value = clause.original(match).split("=", 1)
        key, value = key.strip(), value.strip()
        if key in found:
            raise PlanRefused(f"params: {key} is given twice", {"params": {key: ["given twice"]}})
        found[key] = _value(value)
    return found


def _value(text: str) -> Any:
    if text.startswith("'") and text.endswith("'"):
        return text[1:-1]
    try:
        return json.loads(text)
    except ValueError:  # a bare word: a string, as a person means it
        return text


def _squashed(name: str) -> str:
    return SEPARATORS.sub("", name.lower())


def named_types(clause: Clause, types: Mapping[str, WorkerType]) -> list[str]:
    """Types the clause names, in the order written (consumed as `type`)."""
    by_squashed = {_squashed(name): name for name in types}
    found: list[tuple[int, str]] = []
    tokens = list(NAME_WORD_RE.finditer(clause.text, clause.start, clause.end))
    taken: set[int] = set()
    for size in range(NAME_WINDOW, 0, -1):
        for first in range(len(tokens) - size + 1):
            window = tokens[first : first + size]
            if taken.intersection(range(first, first + size)) or not _adjacent(clause, window):
                continue
            name = by_squashed.get("".join(_squashed(t.group()) for t in window))
            if name is not None and _whole(clause, window[0].start(), window[-1].end()):
                taken.update(range(first, first + size))
                found.append((window[0].start(), name))
                clause.consume(window[0].start(), window[-1].end(), "type")
    return list(dict.fromkeys(name for _, name in sorted(found)))


def _adjacent(clause: Clause, window: list[re.Match[str]]) -> bool:
    return all(clause.text[a.end() : b.start()].isspace() for a, b in itertools.pairwise(window))


def _whole(clause: Clause, start: int, end: int) -> bool:
    """Not part of a longer word: 'add' in 'address' names nothing."""
    before = clause.text[start - 1] if start > clause.start else " "
    after = clause.text[end] if end < clause.end else " "
    return not (before.isalnum() or before in "_-'") and not (after.isalnum() or after in "_-'")


def _stems(text: str) -> set[str]:
    return {
        word
        for word in re.findall(r"[a-z]+", text.lower())
        if len(word) >= MIN_DESCRIPTION_WORD and word not in DESCRIPTION_STOPWORDS and word not in words.FILLER
    }


def _same_word(said: str, described: str) -> bool:
    """'greeting' and 'greet', 'numbers' and 'number': one begins the other, both long enough to mean it."""
    shorter = min(said, described, key=len)
    return len(shorter) >= MIN_DESCRIPTION_WORD and (said.startswith(described) or described.startswith(said))


def described_types(clause: Clause, types: Mapping[str, WorkerType]) -> list[str]:
    """The one type whose description shares the most words with what is left of the clause; [] when none does."""
    left = [m for m in clause.left() if m.group().strip(".:'-") not in words.FILLER]
    scores: dict[str, list[re.Match[str]]] = {}
    for name, wtype in types.items():
        stems = _stems(wtype.description)
        hits = [m for m in left if any(_same_word(m.group().strip(".:'-"), stem) for stem in stems)]
        if hits:
            scores[name] = hits
    if not scores:
        return []
    best = max(len(hits) for hits in scores.values())
    winners = sorted(name for name, hits in scores.items() if len(hits) == best)
    if len(winners) > 1:
        said = ", ".join(sorted({m.group() for name in winners for m in scores[name]}))
        raise PlanRefused(f"{said!r} fits several worker types ({', '.join(winners)}): name one")
    for match in scores[winners[0]]:
        clause.consume(match.start(), match.end(), "type")
    return winners


def describing(clause: Clause, wtype: WorkerType) -> None:
    """Words left that the chosen type's description uses go to `type` too, not to the unplaced ones."""
    stems = _stems(wtype.description)
    for match in list(clause.left()):
        if any(_same_word(match.group().strip(".:'-"), stem) for stem in stems):
            clause.consume(match.start(), match.end(), "type")


def no_type(types: Mapping[str, WorkerType]) -> str:
    return f"no worker type matches: known types are {', '.join(sorted(types))}; name one"
