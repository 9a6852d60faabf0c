"""What one read of an upstream's stream gives leaves in one write to the client, once the
first token is out (addons/streams.py, Pipe.write), on both send paths: a burst of
events becomes a few chunks, a paced stream keeps one chunk per event, and the events
are the same either way."""

from __future__ import annotations

import json
import socket
from typing import Any
from urllib.parse import urlparse

import pytest
from both_paths import PATHS, first, gateway, server  # noqa: F401 (fixtures)
from openai_upstream import sse, text_chunks
from upstream import Stream, message_events

WORDS = 30
TEXT = " ".join(f"w{i}" for i in range(WORDS))
PACE = 0.05  # seconds between a paced stream's events


def chunks_of(gateway, model: str) -> list[bytes]:
    """The chunks of the streamed answer's body, each as the gateway framed it."""
    url = urlparse(gateway.url)
    body = json.dumps({"model": model, "max_tokens": 64, "stream": True,
                       "messages": [{"role": "user", "content": "hi"}]}).encode()
    with socket.create_connection((url.hostname, url.port), timeout=15) as sock:
        sock.sendall(b"POST /v1/messages HTTP/1.1\r\nhost: gateway\r\ncontent-type: application/json\r\n"
                     b"connection: close\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    assert b"transfer-encoding: chunked" in head.lower(), head
    found = []
    while True:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line, 16)
        if size == 0:
            return found
        found.append(rest[:size])
        rest = rest[size + 2:]


def events(chunks: list[bytes]) -> list[dict[str, Any]]:
    text = b"".join(chunks).decode()
    return [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]


def deltas(chunks: list[bytes]) -> list[str]:
    return [e["delta"]["text"] for e in events(chunks) if e["type"] == "content_block_delta"]


def upstream_stream(short: str, model: str, **how: Any) -> Stream:
    if short == "vend":
        return Stream(message_events(model, TEXT), **how)
    return Stream(sse(text_chunks(TEXT, model=model)), **how)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("short", ["vend", "chat"])  # passed through, translated
def test_a_burst_leaves_in_a_few_writes_and_a_paced_stream_one_per_event(gateway, server, short, path):
    model = f"{short}-{path}"
    words = [f"w{i}" + (" " if i < WORDS - 1 else "") for i in range(WORDS)]

    server.reply = first(upstream_stream(short, "m", together=True))
    burst = chunks_of(gateway, model)
    server.reply = first(upstream_stream(short, "m", delays=[0.0, *[PACE] * (WORDS + 8)]))
    paced = chunks_of(gateway, model)

    assert deltas(burst) == deltas(paced) == words
    assert [e["type"] for e in events(burst)] == [e["type"] for e in events(paced)]
    assert events(burst)[-1]["type"] == "message_stop"
    # The burst: the events up to the first token in one write, then the rest in what
    # one read of the upstream gave (one read here, or a few when TCP splits it).
    assert len(burst) <= 8, [c[:60] for c in burst]
    # Paced: nothing waits for a later event; each delta is a chunk of its own.
    assert [c.count(b"event: content_block_delta") for c in paced if b"event: content_block_delta" in c] == [1] * WORDS
