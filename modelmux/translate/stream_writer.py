"""Anthropic's Messages stream, written by a state machine that refuses what the grammar
does not allow. Pure.

The grammar (Anthropic's streaming reference, and what its SDKs' accumulators assume):
message_start first; then content blocks, one at a time, each a content_block_start,
deltas of its own kind (a thinking block's signature last) and a content_block_stop,
their indices counting up from 0; then message_delta and message_stop. Pings may come
anywhere in between, and an error event ends the stream wherever it comes. Nothing
follows message_stop or an error.

Every translated stream writes through one `StreamWriter`, fed calls and holding the
bytes until `data_to_send()` (as h2's connection does). A call the grammar does not
allow where the stream is raises an `IllegalEvent` naming the rule: a translator bug
fails where it happens, never as a stream a client's SDK rejects halfway.

Beside the bytes it keeps, as values, what the relay and the dashboard read today by
scanning them: whether the stream holds content yet, the error it ended with, and the
usage and stop reason of its message_delta.

A `ContentWriter` follows the same grammar and writes no events: it puts the blocks
together as values, as a client's SDK would from the stream (assembly.py), for a whole
answer built by a stream's own block builder (Gemini's).
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring  # what json.dumps(str, ensure_ascii=False) is made of
from typing import Any, NamedTuple

from modelmux.translate import messages
from modelmux.translate.sse import format_event

TEXT, THINKING, REDACTED_THINKING, TOOL_USE = "text", "thinking", "redacted_thinking", "tool_use"
# The delta each kind of block streams: (its type, the field holding the piece).
_DELTAS = {TEXT: ("text_delta", "text"), THINKING: ("thinking_delta", "thinking"),
           TOOL_USE: ("input_json_delta", "partial_json")}  # fmt: skip
_EMPTY = {TEXT: lambda: messages.text_block(""), THINKING: messages.thinking_block}  # the blocks open() starts
_STOP = b'event: content_block_stop\ndata: {"type":"content_block_stop","index":%d}\n\n'


def _delta_prefix(index: int, delta: str, field: str) -> bytes:
    """A content_block_delta event up to its piece: the piece's JSON string and `}}` end
    it. Bytes for bytes what format_event writes for the same event, without its dict."""
    return (b'event: content_block_delta\ndata: {"type":"content_block_delta","index":%d,"delta":{"type":"%s","%s":'
            % (index, delta.encode(), field.encode()))


class IllegalEvent(Exception):
    """An event the stream's grammar does not allow where the stream is: a bug in the
    translator that asked for it."""


class NotStarted(IllegalEvent):
    """Anything before message_start."""


class StartedTwice(IllegalEvent):
    """A second message_start."""


class AfterEnd(IllegalEvent):
    """Anything after message_stop or an error event."""


class BlockOpen(IllegalEvent):
    """A block opened, or the message ended, while another block is open."""


class NoBlock(IllegalEvent):
    """A delta or content_block_stop while no block is open."""


class WrongDelta(IllegalEvent):
    """A delta the open block does not take: another kind's, any after a thinking block's
    signature, or any at all for redacted_thinking."""


class ErrorEvent(NamedTuple):
    """The error event a stream ended with."""

    type: str
    message: str


class StreamWriter:
    """Writes one Anthropic stream, event by event, and refuses illegal transitions.

    State, read-only for callers: `started`, `ended`; the open block's `kind` and `index`
    (None when none is open), whether its signature came (`signed`), how many blocks were
    opened (`blocks`).

    Reported values:
    - `content`: the stream holds more than message_start and pings (a block, or
      message_delta). This is the relay's "first real event" (pump.py's `_FIRST`), the
      moment it commits to an attempt; an error written while `content` is False is an
      attempt that failed before the client got anything.
    - `deltas`: content_block_delta events written, of any kind. The first is the first
      token: the Meter's `first_content`, the dashboard's time to first token.
    - `error`: the error event written, as (type, message).
    - `stop_reason`, `stop_sequence`, `usage`: what message_delta said; `usage` holds
      exactly its counts (messages.DELTA_USAGE).
    """

    def __init__(self) -> None:
        self.started = False
        self.input_tokens: int | None = None  # message_start's, modelmux's estimate
        self.ended = False  # message_stop or an error written: nothing may follow
        self.kind: str | None = None
        self.index: int | None = None
        self.signed = False
        self.blocks = 0
        self.content = False
        self.deltas = 0
        self.error: ErrorEvent | None = None
        self.stop_reason: str | None = None
        self.stop_sequence: str | None = None
        self.usage: dict[str, Any] | None = None
        self._out: list[bytes] = []
        self._prefix = b""  # the open block's delta event up to its piece

    def data_to_send(self) -> bytes:
        """What was written since the last call, as one piece."""
        out = b"".join(self._out)
        self._out.clear()
        return out

    # -- the message ------------------------------------------------------------------

    def start(self, model: str, input_tokens: int) -> None:
        """message_start: `input_tokens` is an estimate until message_delta says."""
        if self.started:
            raise AfterEnd("message_start after the stream ended") if self.ended else StartedTwice("a second message_start")
        self.started = True
        self.input_tokens = input_tokens
        self._write_start(model, input_tokens)

    def ping(self) -> None:
        self._writable("ping")
        self._out.append(messages.PING)

    def end(self, stop_reason: str, stop_sequence: str | None, usage: dict[str, Any],
            stop_details: dict[str, Any] | None = None) -> None:
        """message_delta (with `usage`'s counts) and message_stop: every block closed first."""
        self._writable("message_delta")
        if self.kind is not None:
            raise BlockOpen(f"message_delta while block {self.index} ({self.kind}) is open")
        self._out += messages.message_end(stop_reason, stop_sequence, usage, stop_details)
        self.stop_reason, self.stop_sequence, self.usage = stop_reason, stop_sequence, messages.delta_usage(usage)
        self.content = self.ended = True

    def fail(self, error_type: str, message: str) -> None:
        """An error event: the stream ends with it, wherever it is (a block may be open)."""
        self._writable("error")
        self._out.append(messages.error_event(error_type, message))
        self.error = ErrorEvent(error_type, message)
        self.kind = self.index = None
        self.ended = True

    # -- blocks -----------------------------------------------------------------------

    def open(self, kind: str) -> None:
        """A text or thinking block (TEXT, THINKING): the two that start empty."""
        if kind not in _EMPTY:
            raise ValueError(f"open() starts a text or thinking block, not {kind!r}")
        self._start(kind, _EMPTY[kind]())

    def open_redacted_thinking(self, data: str) -> None:
        """A block whose content came whole in its start: it takes no delta."""
        self._start(REDACTED_THINKING, {"type": REDACTED_THINKING, "data": data})

    def open_tool_use(self, id: str, name: str) -> None:
        """Its input streams as input_json deltas."""
        self._start(TOOL_USE, messages.tool_use_block(id, name, {}))

    def close(self) -> None:
        """content_block_stop for the open block."""
        if self.kind is None:
            self._writable("content_block_stop")
            raise NoBlock("content_block_stop while no block is open")
        self._write_stop()
        self.kind = self.index = None

    def text(self, text: str) -> None:
        """A text_delta, straight from a byte template: the translators' hot path. An
        empty piece writes nothing (Anthropic never sends one)."""
        if self.kind != TEXT:
            self._refuse("text_delta")
        if text:
            self._out.append(self._prefix + encode_basestring(text).encode() + b"}}\n\n")
            self.deltas += 1

    def thinking(self, text: str) -> None:
        if self.kind != THINKING or self.signed:
            self._refuse("thinking_delta")
        self._piece(self._prefix, text)

    def input_json(self, partial_json: str) -> None:
        if self.kind != TOOL_USE:
            self._refuse("input_json_delta")
        self._piece(self._prefix, partial_json)

    def signature(self, signature: str) -> None:
        """A thinking block's signature: the last of its deltas."""
        if self.kind != THINKING or self.signed:
            self._refuse("signature_delta")
        if signature:
            self._write_signature(signature)
            self.signed = True

    # -- the grammar ------------------------------------------------------------------

    def _start(self, kind: str, block: dict[str, Any]) -> None:
        self._writable("content_block_start")
        if self.kind is not None:
            raise BlockOpen(f"a {kind} block opened while block {self.index} ({self.kind}) is open")
        self.kind, self.index, self.signed = kind, self.blocks, False
        self.blocks += 1
        self.content = True
        self._write_block(block)

    # -- what it writes: events (a ContentWriter writes values) -----------------------

    def _write_start(self, model: str, input_tokens: int) -> None:
        self._out.append(messages.message_start(model, input_tokens))

    def _write_block(self, block: dict[str, Any]) -> None:
        if self.kind in _DELTAS:
            self._prefix = _delta_prefix(self.index, *_DELTAS[self.kind])
        self._out.append(format_event("content_block_start",
                                      {"type": "content_block_start", "index": self.index, "content_block": block}))

    def _write_stop(self) -> None:
        self._out.append(_STOP % self.index)

    def _write_signature(self, signature: str) -> None:
        self._piece(_delta_prefix(self.index, "signature_delta", "signature"), signature)

    def _piece(self, prefix: bytes, piece: str) -> None:
        """A delta from its template (`prefix`); an empty piece writes nothing."""
        if piece:
            self._out.append(prefix + encode_basestring(piece).encode() + b"}}\n\n")
            self.deltas += 1

    def _writable(self, event: str) -> None:
        if not self.started:
            raise NotStarted(f"{event} before message_start")
        if self.ended:
            raise AfterEnd(f"{event} after the stream ended with {'an error' if self.error else 'message_stop'}")

    def _refuse(self, delta: str) -> None:
        """Why a delta cannot be written here: always raises."""
        self._writable(delta)
        if self.kind is None:
            raise NoBlock(f"{delta} while no block is open")
        if self.signed:
            raise WrongDelta(f"{delta} after block {self.index}'s signature")
        raise WrongDelta(f"{delta} for block {self.index}, a {self.kind} block")


class ContentWriter(StreamWriter):
    """A StreamWriter whose output is the message's content, as values: `written`, the
    blocks closed so far, each as a client's SDK puts it together from the stream
    (assembly.py), a tool_use block's input parsed from its JSON. No event is written:
    for a whole answer, writing events only to read them back cost two thirds of the
    time of Gemini's whole-answer translation."""

    def __init__(self) -> None:
        super().__init__()
        self.written: list[dict[str, Any]] = []
        self._pieces: list[str] = []  # the open block's deltas

    def text(self, text: str) -> None:
        if self.kind != TEXT:  # StreamWriter.text's rule, without its byte template
            self._refuse("text_delta")
        self._piece(b"", text)

    def _write_start(self, model: str, input_tokens: int) -> None:
        pass

    def _write_block(self, block: dict[str, Any]) -> None:
        self.written.append(dict(block))
        self._pieces = []

    def _piece(self, prefix: bytes, piece: str) -> None:
        if piece:
            self._pieces.append(piece)
            self.deltas += 1

    def _write_signature(self, signature: str) -> None:
        self.written[-1]["signature"] = signature
        self.deltas += 1

    def _write_stop(self) -> None:
        block, pieces = self.written[-1], "".join(self._pieces)
        if self.kind == TOOL_USE:
            block["input"] = _object(pieces)
        elif self.kind in (TEXT, THINKING):
            block[_DELTAS[self.kind][1]] += pieces


def _object(arguments: str) -> dict[str, Any]:
    """A tool_use block's input from its input_json deltas, as assembly.py reads them."""
    found = json.loads(arguments) if arguments.strip() else {}
    if not isinstance(found, dict):
        raise WrongDelta(f"a tool_use block's input_json deltas make no JSON object: {arguments[:120]!r}")
    return found
