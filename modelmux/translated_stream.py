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

import json
import logging
from typing import Protocol

from modelmux.config_types import Credential
from modelmux.errors import GatewayError, broken_answer
from modelmux.messages import error_event, message_start
from modelmux.overflow import restated
from modelmux.secrets import scrub
from modelmux.sse import EventSplitter

logger = logging.getLogger(__name__)

BROKEN_OFF = "the upstream's stream ended before the answer was complete"
UNREADABLE = "the upstream's stream held an event that is not JSON"
SNIPPET = 120  # characters of an unreadable event quoted in the error
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
        # The provider's credentials, kept out of error messages (which quote the
        # upstream); whoever knows the provider sets them (exchange.stream_transform).
        self.secrets: tuple[Credential, ...] = ()
        self.error: GatewayError | None = None  # why the stream ended in an error, once it did
        self._splitter = EventSplitter()
        self._started = False  # message_start sent
        self._ended = False  # message_stop or error sent: nothing may follow
        self._closing = False
        self._logged: set[str] = set()  # what was logged already, once per answer

    def feed(self, chunk: bytes) -> list[bytes]:
        out = self._start()
        for raw in self._splitter.feed(chunk):
            out += self._event(raw)
        return [b"".join(out)] if out else []  # one write per upstream read, not one per event

    def close(self) -> list[bytes]:
        """The upstream's body ended."""
        out = self._start()
        self._closing = True
        if rest := self._splitter.rest():
            out += self._event(rest + b"\n\n")
        if self._ended:
            return out
        if not self._complete():
            return out + self._fail(GatewayError(502, BROKEN_OFF, "api_error"))
        return out + self._end()

    def _start(self) -> list[bytes]:
        if self._started:
            return []
        self._started = True
        return [message_start(self.context.model, self.context.input_tokens)]

    def _fail(self, error: GatewayError) -> list[bytes]:
        """Once the stream has started, an error can only be an SSE error event. A context
        overflow is said in Anthropic's words (overflow.py)."""
        error = restated(error)
        if (message := scrub(error.message, self.secrets)) != error.message:
            error = GatewayError(error.status, message, error.error_type, error.headers, error.code)
        self.error, self._ended = error, True
        return [error_event(error.error_type, error.message)]

    def _unreadable(self, raw: bytes) -> list[bytes]:
        """An event that does not parse: the answer cannot be told exactly. The last piece
        of a body that ends mid-event is a stream that broke off."""
        if self._closing:
            return self._fail(GatewayError(502, BROKEN_OFF, "api_error"))
        text = raw.decode("utf-8", "replace").strip()
        quoted = text[:SNIPPET] + ("…" if len(text) > SNIPPET else "")
        return self._fail(GatewayError(502, f"{UNREADABLE}: {quoted!r}", "api_error"))

    def _broken(self, why: str) -> list[bytes]:
        """The upstream's answer contradicts itself (a tool call that never came, arguments
        that are not what it called with): an error, never a message that looks whole."""
        return self._fail(broken_answer(why))

    def _log_once(self, key: str, message: str, *args: object) -> None:
        if key not in self._logged:
            self._logged.add(key)
            logger.warning(message, *args)

    def _event(self, raw: bytes) -> list[bytes]:
        raise NotImplementedError

    def _complete(self) -> bool:
        raise NotImplementedError

    def _end(self) -> list[bytes]:
        raise NotImplementedError
