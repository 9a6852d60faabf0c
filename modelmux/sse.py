"""Server-sent-event framing, shared by every stream transform.

Upstream bytes arrive in arbitrary chunks (mitmproxy hands the stream callable
whatever the socket read), so events are reassembled here before anyone parses them.
Events end at a blank line; the SSE spec allows LF, CRLF and CR line endings.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_EVENT_END = re.compile(rb"\r\n\r\n|\n\n|\r\r")
_LINE_END = re.compile(r"\r\n|\n|\r")


class EventSplitter:
    """Feed bytes, get back complete events (each with its terminating blank line)."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, chunk: bytes) -> list[bytes]:
        self._buffer += chunk
        events: list[bytes] = []
        start = 0
        while match := _EVENT_END.search(self._buffer, start):
            events.append(bytes(self._buffer[start : match.end()]))
            start = match.end()
        del self._buffer[:start]
        return events

    def rest(self) -> bytes:
        """Whatever has not formed a complete event yet (and forget it)."""
        rest = bytes(self._buffer)
        self._buffer.clear()
        return rest


@dataclass
class Event:
    name: str | None
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


def parse_event(raw: bytes) -> Event:
    """One framed event → its `event:` name and joined `data:` lines."""
    if raw.startswith(b"data: ") and raw.count(b"\n") == 2 and raw.endswith(b"\n\n") and b"\r" not in raw:
        return Event(None, raw[6:-2].decode("utf-8"))  # OpenAI's every event: one data line
    name: str | None = None
    data: list[str] = []
    for line in _LINE_END.split(raw.decode("utf-8")):
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            name = value
        elif field == "data":
            data.append(value)
    return Event(name, "\n".join(data))


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))  # one, not one per event


def format_event(name: str | None, data: Any) -> bytes:
    """An Anthropic-style event: `event: NAME` then one compact JSON `data:` line."""
    payload = _ENCODER.encode(data)
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {payload}\n\n".encode()
