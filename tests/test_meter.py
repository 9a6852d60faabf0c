"""The meter at every chunk boundary: token counts, the first token's time and a
stream's error found wherever a chunk splits them."""

from __future__ import annotations

import itertools
import pytest
from upstream import message_events

from modelmux.credentials.pools import Usage
from modelmux.translate.messages import error_event
from modelmux.translate.meter import Meter, Tokens, tokens_of_json

STREAM = b"".join(message_events("m"))


def fed(data: bytes, size: int, keep: bool = False) -> Meter:
    ticks = itertools.count(1)
    meter = Meter(keep=keep, clock=lambda: float(next(ticks)))
    for start in range(0, len(data), size):
        meter.feed(data[start:start + size])
    return meter


@pytest.mark.parametrize("size", [1, 3, 16, 97, len(STREAM)])
def test_the_counts_are_found_at_any_chunk_boundary(size):
    assert fed(STREAM, size).tokens() == Tokens(input_tokens=12, output_tokens=7)


@pytest.mark.parametrize("size", [1, 5, 40, len(STREAM)])
def test_the_first_token_is_timed_on_the_chunk_that_completes_the_first_content_delta(size):
    name = b"event: content_block_delta"
    chunk = [0]
    meter = Meter(clock=lambda: float(chunk[0]))
    for chunk[0], start in enumerate(range(0, len(STREAM), size)):
        meter.feed(STREAM[start:start + size])
    assert meter.first_content == float((STREAM.index(name) + len(name) - 1) // size)
    assert fed(STREAM[:STREAM.index(name)], size).first_content is None


def test_cached_input_is_counted_apart_and_the_pool_gets_the_sum():
    meter = Meter()
    meter.feed(b'data: {"usage": {"input_tokens": 5, "cache_read_input_tokens": 100, '
               b'"cache_creation_input_tokens": 20, "output_tokens": 3}}\n\n')
    assert meter.tokens() == Tokens(input_tokens=5, cached_tokens=100, cache_write_tokens=20, output_tokens=3)
    assert meter.tokens().for_pool() == Usage(input_tokens=125, output_tokens=3)


@pytest.mark.parametrize("size", [1, 7, 64, 1000])
def test_an_error_event_names_its_type(size):
    data = STREAM[:STREAM.index(b"event: content_block_stop")] + error_event("overloaded_error", "busy")
    assert fed(data, size).error_type == "overloaded_error"
    assert fed(STREAM, size).error_type is None


def test_kept_bytes_are_the_stream_as_fed():
    assert fed(STREAM, 13, keep=True).body() == STREAM
    assert fed(STREAM, 13).body() is None


def test_a_whole_message_gives_its_counts():
    assert tokens_of_json(b'{"usage": {"input_tokens": 4, "output_tokens": 2}}') == Tokens(4, 0, 0, 2)
    assert tokens_of_json(b"not json") is None
    assert tokens_of_json(b'{"content": []}') is None


def test_the_stop_reason_is_read_with_the_final_usage():
    from modelmux.translate.meter import stop_reason_of_json

    meter = Meter()
    start = b'event: message_start\ndata: {"type":"message_start","message":{"stop_reason":null,"usage":{"input_tokens":3}}}\n\n'
    delta = (b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":"tool_use",'
             b'"stop_sequence":null},"usage":{"output_tokens":9}}\n\n')
    meter.feed(start)
    assert meter.stop_reason is None
    for i in range(0, len(delta), 7):  # at any chunk boundary
        meter.feed(delta[i:i + 7])
    assert meter.stop_reason == "tool_use"
    assert stop_reason_of_json(b'{"content":[],"stop_reason":"max_tokens","usage":{"output_tokens":1}}') == "max_tokens"
    assert stop_reason_of_json(b'{"content":[]}') is None
