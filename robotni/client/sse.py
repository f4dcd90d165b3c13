"""Server-Sent Events, line by line: what the sync and async clients share."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass
class Event:
    event: str
    data: Any
    id: str | None


class Parser:
    """Feed lines; an event comes out at each blank line. Comments (keep-alives) and `retry:` are skipped."""

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}

    def feed(self, line: str) -> Event | None:
        if line:
            if not line.startswith(":"):
                name, _, value = line.partition(":")
                self.fields[name] = value.removeprefix(" ")
            return None
        found, self.fields = self.fields, {}
        if "data" not in found:
            return None
        return Event(found.get("event", "message"), json.loads(found["data"]), found.get("id"))
