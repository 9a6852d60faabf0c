"""What every translated stream shares, whatever the upstream's protocol. Pure."""

from __future__ import annotations

from modelmux.messages import error_event, message_start
from modelmux.sse import EventSplitter

BROKE_OFF = "the upstream's stream ended before the answer was complete"


class StreamTranslation:
    """Upstream bytes in any chunking are framed into events; message_start goes first,
    and after message_stop or an error nothing more is written. A protocol's stream
    reads one upstream event in `_event` and says the answer is over with `_ended`."""

    def __init__(self, model: str, input_tokens: int) -> None:
        self._model = model
        self._input_tokens = input_tokens
        self._splitter = EventSplitter()
        self._started = False  # message_start sent
        self._ended = False  # message_stop or error sent: nothing may follow

    def feed(self, chunk: bytes) -> list[bytes]:
        out = self._start()
        for raw in self._splitter.feed(chunk):
            out += self._read(raw)
        return [b"".join(out)] if out else []  # one write per upstream read, not one per event

    def _event(self, raw: bytes) -> list[bytes]:
        raise NotImplementedError

    def _read(self, raw: bytes) -> list[bytes]:
        return [] if self._ended else self._event(raw)

    def _start(self) -> list[bytes]:
        if self._started:
            return []
        self._started = True
        return [message_start(self._model, self._input_tokens)]

    def _rest(self) -> list[bytes]:
        """At the end of the upstream's body: message_start if still due, and its last
        event if that came without the blank line that ends an event."""
        out = self._start()
        if rest := self._splitter.rest():
            out += self._read(rest + b"\n\n")
        return out

    def _error(self, error_type: str, message: str) -> list[bytes]:
        """Once the stream has started, an error can only be an SSE error event."""
        self._ended = True
        return [error_event(error_type, message)]
