"""What every translator of an upstream event stream into Anthropic's shares. Pure.

Anthropic's stream opens with message_start before anything else; upstream events
arrive cut at arbitrary points and are reassembled first; each upstream read becomes
one write; and a body that ends before the upstream said the answer was complete
broke off, which the client is told instead of getting a message that looks whole.
"""

from __future__ import annotations

import json
from typing import Protocol

from modelmux.messages import error_event, message_id
from modelmux.sse import EventSplitter, format_event

BROKEN_OFF = "the upstream's stream ended before the answer was complete"
_ENCODE = json.JSONEncoder(ensure_ascii=False).encode  # a str → its JSON string literal


def text_delta_prefix(index: int) -> bytes:
    """Block `index`'s text_delta event up to its text: the translators' hot path writes
    text straight into it (text_delta) instead of building and encoding an event."""
    return b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,"delta":{"type":"text_delta","text":' % index


def text_delta(prefix: bytes, text: str) -> bytes:
    return prefix + _ENCODE(text).encode() + b"}}\n\n"


class Context(Protocol):
    model: str  # the model name the client sees
    input_tokens: int  # modelmux's estimate, for message_start before the real count


class TranslatedStream:
    """Feed upstream bytes in any chunking, get Anthropic SSE events back. Subclasses
    say what one upstream event means (`_event`), whether the answer was complete
    (`_complete`) and how it ends (`_end`)."""

    def __init__(self, context: Context) -> None:
        self.context = context
        self._splitter = EventSplitter()
        self._started = False  # message_start sent
        self._ended = False  # message_stop or error sent: nothing may follow

    def feed(self, chunk: bytes) -> list[bytes]:
        out = self._start()
        for raw in self._splitter.feed(chunk):
            out += self._event(raw)
        return [b"".join(out)] if out else []  # one write per upstream read, not one per event

    def close(self) -> list[bytes]:
        """The upstream's body ended."""
        out = self._start()
        if rest := self._splitter.rest():
            out += self._event(rest + b"\n\n")
        if self._ended:
            return out
        if not self._complete():
            return out + self._error("api_error", BROKEN_OFF)
        return out + self._end()

    def _start(self) -> list[bytes]:
        if self._started:
            return []
        self._started = True
        message = {
            "id": message_id(), "type": "message", "role": "assistant", "model": self.context.model,
            "content": [], "stop_reason": None, "stop_sequence": None,
            "usage": {"input_tokens": self.context.input_tokens, "output_tokens": 0,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
        }  # fmt: skip
        return [format_event("message_start", {"type": "message_start", "message": message})]

    def _error(self, error_type: str, message: str) -> list[bytes]:
        """Once the stream has started, an error can only be an SSE error event."""
        self._ended = True
        return [error_event(error_type, message)]

    def _event(self, raw: bytes) -> list[bytes]:
        raise NotImplementedError

    def _complete(self) -> bool:
        raise NotImplementedError

    def _end(self) -> list[bytes]:
        raise NotImplementedError
