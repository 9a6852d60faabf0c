"""Translated streams get pings while the upstream is silent, and an error event (with a
proper end of the body) when the upstream breaks off mid-answer."""

from __future__ import annotations

import json
import time

import httpx

from gateway import Gateway
from openai_upstream import CLIENT_KEY, fresh, gateway, server, sse, text_chunks  # noqa: F401 (fixtures)
from upstream import Stream

GATEWAY_ARGS = ["--set", "modelmux_ping_interval=1"]
BODY = {"model": "claude-sonnet-4-5", "max_tokens": 50, "stream": True, "messages": [{"role": "user", "content": "hi"}]}


def timed_events(gateway: Gateway) -> list[tuple[str, float, dict]]:
    """(event name, seconds since the request, data) for every event the client got;
    reading the body to its end raises if the chunked body was cut off."""
    sent = time.monotonic()
    events, buffer = [], b""
    with httpx.stream("POST", f"{gateway.url}/v1/messages", json=BODY, headers={"x-api-key": CLIENT_KEY}, timeout=30) as r:
        assert r.status_code == 200
        for piece in r.iter_raw():
            buffer += piece
            while b"\n\n" in buffer:
                raw, buffer = buffer.split(b"\n\n", 1)
                name = raw.split(b"\n")[0].removeprefix(b"event: ").decode()
                data = json.loads(raw.split(b"data: ", 1)[1])
                events.append((name, time.monotonic() - sent, data))
    assert buffer == b""
    return events


def test_pings_fill_the_upstreams_silence(gateway, server):
    pieces = sse(text_chunks("Hello there"))
    # the role chunk, the first word, then 3.2 s of silence before the rest
    server.reply = lambda r: Stream(pieces, delays=[0, 0, 3.2])
    events = timed_events(gateway)
    names = [name for name, _, _ in events]
    first_text = names.index("content_block_delta")
    second_text = names.index("content_block_delta", first_text + 1)
    pings = [t for name, t, _ in events[first_text:second_text] if name == "ping"]
    assert len(pings) >= 2, events  # one about every second of the silence
    assert all(0.8 < b - a < 1.6 for a, b in zip(pings, pings[1:])), pings
    assert names[-2:] == ["message_delta", "message_stop"]
    text = "".join(d["delta"]["text"] for name, _, d in events if name == "content_block_delta")
    assert text == "Hello there"


def test_a_busy_stream_gets_no_pings(gateway, server):
    server.reply = lambda r: Stream(sse(text_chunks("one two three four")), delays=[0, 0.4, 0.4, 0.4, 0.4])
    assert "ping" not in [name for name, _, _ in timed_events(gateway)]


def test_an_upstream_that_breaks_off_mid_stream_ends_with_an_error_event(gateway, server):
    pieces = sse(text_chunks("Hello there"), done=False)[:3]  # role, "Hello ", "there": no finish
    server.reply = lambda r: Stream(pieces, complete=False)
    events = timed_events(gateway)  # the body ends properly: no "incomplete chunked read"
    assert [name for name, _, _ in events] == [
        "message_start", "content_block_start", "content_block_delta", "content_block_delta", "error"]
    error = events[-1][2]["error"]
    assert error["type"] == "api_error"
    assert error["message"].startswith("provider 'oai' broke off its answer mid-stream: ")
    # the connection is still usable afterwards
    server.reply = lambda r: Stream(sse(text_chunks("again")))
    assert [name for name, _, _ in timed_events(gateway)][-1] == "message_stop"
