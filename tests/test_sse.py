"""SSE framing: the splitter's and the parser's fast paths (bytes.find for a stream of
one line ending, a slice for the one-data-line events OpenAI, the Responses API and
Gemini send) give what the specification's rules give (a regex for the blank line,
parse_lines for the fields), for any bytes cut anywhere; an event's JSON reads as
json.loads reads it."""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelmux.translate.sse import Event, EventSplitter, format_event, loads, parse_event, parse_lines

# How the SSE specification ends an event: at a blank line (LF, CRLF or CR line endings).
BLANK_LINE = re.compile(rb"\r\n\r\n|\n\n|\r\r")


def split(data: bytes) -> tuple[list[bytes], bytes]:
    events, start = [], 0
    while match := BLANK_LINE.search(data, start):
        events.append(data[start : match.end()])
        start = match.end()
    return events, data[start:]


PIECES = st.sampled_from([b"data: ", b"event: ", b"data:", b"event:x", b": comment", b'{"a": "b"}', b"[DONE]", b"x",
                          b" ", b":", b"\n", b"\r", b"\r\n", b"\n\n", b"\r\n\r\n", "日本".encode(), b"\xe6", b"\x00"])
STREAMS = st.lists(PIECES, max_size=40).map(b"".join)
# Well-formed events of the three shapes the fast paths take, each ending as its API does.
EVENTS = st.lists(st.tuples(st.one_of(st.none(), st.sampled_from(["response.output_text.delta", "a:b", " x"])),
                            st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"), max_size=20),
                            st.sampled_from(["\n", "\r\n"])), max_size=8)


def framed(events: list[tuple[str | None, str, str]]) -> bytes:
    return b"".join(((f"event: {name}{end}" if name is not None else "") + f"data: {data}{end}{end}").encode()
                    for name, data, end in events)


def fed(data: bytes, cuts: list[int]) -> tuple[list[bytes], bytes]:
    splitter, events, position = EventSplitter(), [], 0
    for cut in sorted(cuts) + [len(data)]:
        events += splitter.feed(data[position:cut])
        position = max(position, cut)
    return events, splitter.rest()


def parsed(raw: bytes) -> Event | type[Exception]:
    try:
        return parse_event(raw)
    except UnicodeDecodeError:
        return UnicodeDecodeError


def reference(raw: bytes) -> Event | type[Exception]:
    try:
        return parse_lines(raw)
    except UnicodeDecodeError:
        return UnicodeDecodeError


@given(st.one_of(STREAMS, EVENTS.map(framed)), st.lists(st.integers(0, 400), max_size=6))
@settings(max_examples=500, deadline=None)
def test_events_split_and_parse_as_the_general_rules_say(data, cuts):
    events, rest = fed(data, cuts)
    assert (events, rest) == split(data)
    for raw in events:
        assert parsed(raw) == reference(raw)


@pytest.mark.parametrize("raw, event", [
    (b'data: {"a":1}\n\n', Event(None, '{"a":1}')),
    (b'event: response.created\ndata: {"a":1}\n\n', Event("response.created", '{"a":1}')),
    (b'data: {"a":1}\r\n\r\n', Event(None, '{"a":1}')),
    (b'event: x\ndata: one\ndata: two\n\n', Event("x", "one\ntwo")),
    (b'event: x\r\ndata: y\r\n\r\n', Event("x", "y")),
    (b"event: x\n: a comment\n\n", Event("x", "")),
])
def test_each_shape_of_event(raw, event):
    assert parse_event(raw) == event


def test_an_event_cut_in_a_crlf_stream_waits_for_its_end():
    """A chunk that ends inside CRLF CRLF: the event is complete only when the rest comes."""
    splitter = EventSplitter()
    assert splitter.feed(b"data: 1\r\n\r") == []
    assert splitter.feed(b"\ndata: 2\r\n") == [b"data: 1\r\n\r\n"]
    assert splitter.rest() == b"data: 2\r\n"


def test_what_format_event_writes_parses_back():
    raw = format_event("content_block_delta", {"type": "content_block_delta", "text": "日本\n"})
    assert parse_event(raw).json() == {"type": "content_block_delta", "text": "日本\n"}


JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
                           max_leaves=8)
JSON_TEXTS = st.one_of(
    st.tuples(st.sampled_from(["", " ", "\n", "\t\r"]), JSON_VALUES.map(json.dumps), st.sampled_from(["", " \n", "x", "}", "\u00a0"]))
    .map("".join),
    st.text(max_size=20),
)


def outcome(read, text: str) -> object:
    try:
        return ("value", read(text))
    except ValueError as error:
        return (type(error), str(error))


@given(JSON_TEXTS)
@settings(max_examples=500, deadline=None)
def test_an_events_json_reads_as_json_loads_reads_it(text):
    assert outcome(loads, text) == outcome(json.loads, text)
