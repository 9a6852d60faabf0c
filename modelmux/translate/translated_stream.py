"""What every translator of an upstream event stream into Anthropic's shares. Pure.

Anthropic's stream opens with message_start before anything else; upstream events
arrive cut at arbitrary points and are reassembled first; each upstream read becomes
one write; and a body that ends before the upstream said the answer was complete
broke off, which the client is told instead of getting a message that looks whole.

An answer is exactly what the upstream said, or an error: an event that cannot be
read (not JSON, not UTF-8), or one that contradicts the answer so far, ends the
stream with an error event, never with message_stop. Skipping it would hand the
client text with words missing, or a tool call whose arguments say something else.
The error is also kept as a fact (`error`): before the client got anything, the
failover relay counts the attempt as failed with that status.
"""

from __future__ import annotations

import logging
from typing import Protocol

from modelmux.config.types import Credential
from modelmux.errors import GatewayError, broken_answer
from modelmux.translate.overflow import restated
from modelmux.secrets import scrub
from modelmux.translate.sse import EventSplitter
from modelmux.translate.stream_writer import StreamWriter

logger = logging.getLogger(__name__)

BROKEN_OFF = "the upstream's stream ended before the answer was complete"
UNREADABLE = "the upstream's stream held an event that is not JSON"
SNIPPET = 120  # characters of an unreadable event quoted in the error


class Context(Protocol):
    model: str  # the model name the client sees
    input_tokens: int  # modelmux's estimate, for message_start before the real count


class TranslatedStream:
    """Feed upstream bytes in any chunking, get Anthropic SSE events back. Subclasses
    say what one upstream event means (`_event`), whether the answer was complete
    (`_complete`) and how it ends (`_end`), and write through `writer`, which holds the
    stream to Anthropic's grammar and says what it wrote."""

    def __init__(self, context: Context) -> None:
        self.context = context
        # The provider's credentials, kept out of error messages (which quote the
        # upstream); whoever knows the provider sets them (exchange.stream_transform).
        self.secrets: tuple[Credential, ...] = ()
        self.error: GatewayError | None = None  # why the stream ended in an error, once it did
        self.writer = StreamWriter()
        self._splitter = EventSplitter()
        self._closing = False
        self._logged: set[str] = set()  # what was logged already, once per answer

    @property
    def content(self) -> bool:
        """The stream holds more than message_start and pings (StreamWriter.content)."""
        return self.writer.content

    @property
    def usage(self) -> dict | None:
        """What message_delta counted (StreamWriter.usage)."""
        return self.writer.usage

    def feed(self, chunk: bytes) -> list[bytes]:
        self._begin()
        for raw in self._splitter.feed(chunk):
            if self.writer.ended:  # nothing may follow message_stop or an error
                break
            self._event(raw)
        return self._written()

    def close(self) -> list[bytes]:
        """The upstream's body ended."""
        self._begin()
        self._closing = True
        if (rest := self._splitter.rest()) and not self.writer.ended:
            self._event(rest + b"\n\n")
        if not self.writer.ended:
            if self._complete():
                self._end()
            else:
                self._fail(GatewayError(502, BROKEN_OFF, "api_error"))
        return self._written()

    def _begin(self) -> None:
        if not self.writer.started:
            self.writer.start(self.context.model, self.context.input_tokens)

    def _written(self) -> list[bytes]:
        """One write per upstream read, not one per event."""
        data = self.writer.data_to_send()
        return [data] if data else []

    def _fail(self, error: GatewayError) -> None:
        """Once the stream has started, an error can only be an SSE error event. A context
        overflow is said in Anthropic's words (overflow.py)."""
        error = restated(error)
        if (message := scrub(error.message, self.secrets)) != error.message:
            error = GatewayError(error.status, message, error.error_type, error.headers, error.code)
        self.error = error
        self.writer.fail(error.error_type, error.message)

    def _unreadable(self, raw: bytes) -> None:
        """An event that does not parse: the answer cannot be told exactly. The last piece
        of a body that ends mid-event is a stream that broke off."""
        if self._closing:
            self._fail(GatewayError(502, BROKEN_OFF, "api_error"))
        else:
            text = raw.decode("utf-8", "replace").strip()
            quoted = text[:SNIPPET] + ("…" if len(text) > SNIPPET else "")
            self._fail(GatewayError(502, f"{UNREADABLE}: {quoted!r}", "api_error"))

    def _broken(self, why: str) -> None:
        """The upstream's answer contradicts itself (a tool call that never came, arguments
        that are not what it called with): an error, never a message that looks whole."""
        self._fail(broken_answer(why))

    def _keep_alive(self, raw: bytes) -> None:
        """An event without data: an SSE comment is a keep-alive (OpenRouter sends them
        while it waits), which the client hears as a ping."""
        if raw.lstrip().startswith(b":"):
            self.writer.ping()

    def _log_once(self, key: str, message: str, *args: object) -> None:
        if key not in self._logged:
            self._logged.add(key)
            logger.warning(message, *args)

    def _event(self, raw: bytes) -> None:
        raise NotImplementedError

    def _complete(self) -> bool:
        raise NotImplementedError

    def _end(self) -> None:
        raise NotImplementedError
