"""An Anthropic upstream's stream as the relay reads it (passthrough.AnthropicEvents), at
every chunk boundary: whole events only, the bytes unchanged but for a restored model,
and the facts the relay decides by (first real event, error, usage)."""

from __future__ import annotations

import json

import pytest
from upstream import message_events

from modelmux.translate.passthrough import AnthropicEvents
from modelmux.translate.sse import format_event

STREAM = b"".join(message_events("m"))


def _fed(reader: AnthropicEvents, data: bytes, size: int) -> list[bytes]:
    out = []
    for start in range(0, len(data), size):
        for piece in reader.feed(data[start:start + size]):
            assert piece.endswith(b"\n\n")
            out.append(piece)
    return out


@pytest.mark.parametrize("size", [1, 2, 7, 64, 1000, len(STREAM)])
def test_the_reader_passes_whole_events_only_and_the_bytes_unchanged(size):
    reader = AnthropicEvents()
    out = _fed(reader, STREAM, size)
    assert reader.close() == []
    assert b"".join(out) == STREAM
    assert reader.content and reader.error is None
    assert reader.usage["output_tokens"] > 0


@pytest.mark.parametrize("size", [1, 5, len(STREAM)])
def test_the_reader_restores_the_model_in_message_start_only(size):
    reader = AnthropicEvents(restore="opus")
    out = b"".join(_fed(reader, STREAM, size) + reader.close())
    start = json.loads(out.split(b"\n\n")[0].split(b"data: ", 1)[1])
    assert start["message"]["model"] == "opus"
    assert out.split(b"\n\n")[1:] == STREAM.split(b"\n\n")[1:]


def test_message_start_and_pings_are_not_content_and_an_error_before_content_is_reported():
    reader = AnthropicEvents()
    head = STREAM.split(b"\n\n")[0] + b"\n\n" + format_event("ping", {"type": "ping"})
    reader.feed(head)
    assert not reader.content
    error = format_event("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    assert reader.feed(error) == [error]
    assert reader.content is False and reader.error is not None
    assert (reader.error.status, reader.error.error_type, reader.error.message) == (529, "overloaded_error", "Overloaded")


def test_cr_only_line_endings_are_events_too():
    reader = AnthropicEvents()
    data = b"event: content_block_start\rdata: {}\r\revent: ping\rdata: {}\r\r"
    assert reader.feed(data) == [data]
    assert reader.content


def test_cr_only_line_endings_name_their_events_too():
    """An event's name ends at a CR as at an LF: message_start is restored and counted,
    and an error before any content is one (not content that commits the attempt)."""
    reader = AnthropicEvents(restore="opus")
    start = b'event: message_start\rdata: {"type":"message_start","message":{"model":"m","usage":{"input_tokens":3}}}\r\r'
    error = b'event: error\rdata: {"type":"error","error":{"type":"overloaded_error","message":"busy"}}\r\r'
    [out] = reader.feed(start + error)
    assert out.startswith(b"event: message_start\n") and b'"model":"opus"' in out and out.endswith(error)
    assert reader.usage == {"input_tokens": 3}
    assert reader.content is False and reader.error is not None
    assert (reader.error.status, reader.error.error_type, reader.error.message) == (529, "overloaded_error", "busy")


def test_a_trailing_partial_event_is_returned_at_the_close():
    reader = AnthropicEvents()
    assert reader.feed(b"event: ping\ndata: {}\n\nevent: message_stop\ndata:") == [b"event: ping\ndata: {}\n\n"]
    assert reader.close() == [b"event: message_stop\ndata:"]
