"""A fast fake LLM upstream: `python -m bench.upstreams` prints `port N` and serves.

Raw asyncio with a minimal keep-alive HTTP/1.1 parser, so that the upstream costs as
little as possible and runs in a process of its own (its CPU never mixes with the
client's or a gateway's). It answers whatever the request body says, reading only
whether it asks for a stream; the bench steers it with controls in the request's last
user text, `(bench request NNNNNNN events=50 ...)`, which reaches every upstream,
translated requests included (modelmux forwards no client header a provider does not
need):

- `events=N`: N text deltas (default DEFAULT_EVENTS),
- `first-delay-ms=D`: send the headers, then hold the first event D ms,
- `batch=B`: events per socket write (default 1: one write per event, as a model that
  produces tokens one by one),
- `gap-ms=G`: wait G ms after each write, so that each reaches the gateway as a read
  of its own (bench/walk.py follows one event through it),
- `reject-key=K`: a request whose x-api-key (the credential modelmux sends) is K gets
  an Anthropic 429 at once, with `retry-after-ms: 1` (so modelmux cools that
  credential for a millisecond only).

Each protocol is one `Protocol` in PROTOCOLS: the paths it serves (a regular
expression, since Gemini's carry the model), how it frames a whole answer and a
stream, and where a request asks for the stream (the body's `"stream": true`, or
Gemini's path).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DEFAULT_EVENTS = 8
UPSTREAM_MODEL = "bench-upstream-model"
# Deltas as a model streams them: a token or three each.
DELTAS = [
    "The", " cache test", " fails because", " a waiter", " that arrives", " after the load",
    " finished removes", " a newer", " pending entry", ",", " so the next", " miss starts",
    " a second", " load for", " the same key", " while the", " first one", " is still running",
    ".", " Only the", " task that", " started a", " load may", " clear it", ".\n\n",
]  # fmt: skip
INPUT_TOKENS = 21_000
RATE_LIMITED = b'{"type":"error","error":{"type":"rate_limit_error","message":"bench: this key is rate limited"}}'
REASONS = {200: b"OK", 404: b"Not Found", 429: b"Too Many Requests"}
CONTROLS = re.compile(rb"\(bench request \d{7}((?: [a-z-]+=[\w-]+)*)\)")  # client.REQUEST_ID with its controls


def controls(body: bytes) -> dict[str, str]:
    """The bench's instructions in the request's last user text (the last match: an
    earlier turn may quote one), by name."""
    found = None
    for found in CONTROLS.finditer(body):
        pass
    pairs = found.group(1).decode().split() if found else []
    return dict(pair.split("=", 1) for pair in pairs)


def delta_text(i: int) -> str:
    return DELTAS[i % len(DELTAS)]


def sse(name: str | None, data: Any, end: str = "\n\n") -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {payload}{end}".encode()


def answer_text(events: int) -> str:
    return "".join(delta_text(i) for i in range(events))


# -- Anthropic Messages -------------------------------------------------------------


def anthropic_message(events: int) -> dict[str, Any]:
    return {
        "id": "msg_01BenchUpstreamAnswer0000", "type": "message", "role": "assistant",
        "model": UPSTREAM_MODEL, "content": [{"type": "text", "text": answer_text(events)}],
        "stop_reason": "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": INPUT_TOKENS, "cache_creation_input_tokens": 0,
                  "cache_read_input_tokens": 0, "output_tokens": events * 3},
    }  # fmt: skip


def anthropic_events(events: int) -> list[bytes]:
    """message_start, content_block_start, ping, N text deltas, content_block_stop,
    message_delta, message_stop: the shape of a real Anthropic text answer."""
    start = anthropic_message(0)
    start["content"], start["stop_reason"], start["usage"]["output_tokens"] = [], None, 1
    out = [
        sse("message_start", {"type": "message_start", "message": start}),
        sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        sse("ping", {"type": "ping"}),
    ]
    out += [
        sse("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": delta_text(i)}})
        for i in range(events)
    ]
    out += [
        sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                              "usage": {"output_tokens": events * 3}}),
        sse("message_stop", {"type": "message_stop"}),
    ]  # fmt: skip
    return out


# -- OpenAI Chat Completions --------------------------------------------------------

CHAT_ID = {"id": "chatcmpl-BenchUpstream00000000", "object": "chat.completion.chunk", "created": 1_700_000_000,
           "model": UPSTREAM_MODEL, "system_fingerprint": "fp_bench"}  # fmt: skip
CHAT_USAGE = {"prompt_tokens": INPUT_TOKENS, "completion_tokens": 0, "total_tokens": INPUT_TOKENS,
              "prompt_tokens_details": {"cached_tokens": 0}}  # fmt: skip


def _chat_chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {**CHAT_ID, "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}


def chat_completion(events: int) -> dict[str, Any]:
    text = answer_text(events)
    usage = {**CHAT_USAGE, "completion_tokens": events * 3, "total_tokens": INPUT_TOKENS + events * 3}
    return {**CHAT_ID, "object": "chat.completion", "usage": usage, "choices": [
        {"index": 0, "message": {"role": "assistant", "content": text}, "logprobs": None, "finish_reason": "stop"}]}


def chat_events(events: int) -> list[bytes]:
    """A role chunk, N content chunks, the finish chunk, the usage chunk that
    `stream_options.include_usage` asks for, and [DONE]."""
    usage = {**CHAT_USAGE, "completion_tokens": events * 3, "total_tokens": INPUT_TOKENS + events * 3}
    out = [sse(None, _chat_chunk({"role": "assistant", "content": ""}))]
    out += [sse(None, _chat_chunk({"content": delta_text(i)})) for i in range(events)]
    out += [sse(None, _chat_chunk({}, "stop")), sse(None, {**CHAT_ID, "choices": [], "usage": usage}), sse(None, "[DONE]")]
    return out


# -- OpenAI Responses -----------------------------------------------------------------

RESPONSE_ID = "resp_0bench0upstream0000000000000000000000000000000000"
MESSAGE_ID = "msg_0bench0upstream0000000000000000000000000000000000"
TEXT_AT = {"item_id": MESSAGE_ID, "output_index": 0, "content_index": 0}
# What the real API echoes of the request in every response object.
RESPONSE_ECHO = {
    "object": "response", "created_at": 1_700_000_000, "background": False, "error": None,
    "incomplete_details": None, "instructions": None, "max_output_tokens": None, "model": UPSTREAM_MODEL,
    "parallel_tool_calls": True, "previous_response_id": None, "reasoning": {"effort": None, "summary": None},
    "store": False, "temperature": 1.0, "text": {"format": {"type": "text"}, "verbosity": "medium"},
    "tool_choice": "auto", "tools": [], "top_p": 1.0, "truncation": "disabled", "user": None, "metadata": {},
}  # fmt: skip


def _output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "annotations": [], "logprobs": [], "text": text}


def _message_item(text: str | None) -> dict[str, Any]:
    """The message output item, in progress (`text` None) or completed."""
    content, status = ([], "in_progress") if text is None else ([_output_text(text)], "completed")
    return {"id": MESSAGE_ID, "type": "message", "status": status, "content": content, "role": "assistant"}


def response_object(events: int, completed: bool = True) -> dict[str, Any]:
    if not completed:
        return {"id": RESPONSE_ID, **RESPONSE_ECHO, "status": "in_progress", "output": [], "usage": None}
    usage = {"input_tokens": INPUT_TOKENS, "input_tokens_details": {"cached_tokens": 0}, "output_tokens": events * 3,
             "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": INPUT_TOKENS + events * 3}  # fmt: skip
    return {"id": RESPONSE_ID, **RESPONSE_ECHO, "status": "completed", "output": [_message_item(answer_text(events))],
            "usage": usage}  # fmt: skip


def responses_events(events: int) -> list[bytes]:
    """response.created and .in_progress, one message item (added, its output_text part
    added, N deltas, the part's text done, the part done, the item done), and
    response.completed with the usage; every event numbered as the real API does."""
    text = answer_text(events)
    started = response_object(events, completed=False)
    out: list[tuple[str, dict[str, Any]]] = [
        ("response.created", {"response": started}),
        ("response.in_progress", {"response": started}),
        ("response.output_item.added", {"output_index": 0, "item": _message_item(None)}),
        ("response.content_part.added", {**TEXT_AT, "part": _output_text("")}),
    ]
    out += [("response.output_text.delta", {**TEXT_AT, "delta": delta_text(i), "logprobs": [], "obfuscation": "bXuQ3"})
            for i in range(events)]  # fmt: skip
    out += [
        ("response.output_text.done", {**TEXT_AT, "text": text, "logprobs": []}),
        ("response.content_part.done", {**TEXT_AT, "part": _output_text(text)}),
        ("response.output_item.done", {"output_index": 0, "item": _message_item(text)}),
        ("response.completed", {"response": response_object(events)}),
    ]
    return [sse(name, {"type": name, "sequence_number": n, **data}) for n, (name, data) in enumerate(out)]


# -- Gemini generateContent -------------------------------------------------------------

GEMINI_ID = {"modelVersion": UPSTREAM_MODEL, "responseId": "bench0upstream0gemini0"}


def _gemini_usage(events: int | None) -> dict[str, Any]:
    """usageMetadata: on every streamed response the prompt's count; with `events`,
    the answer's too (the last response, or a whole one)."""
    usage: dict[str, Any] = {"promptTokenCount": INPUT_TOKENS, "totalTokenCount": INPUT_TOKENS,
                             "promptTokensDetails": [{"modality": "TEXT", "tokenCount": INPUT_TOKENS}]}  # fmt: skip
    if events is not None:
        usage.update(candidatesTokenCount=events * 3, totalTokenCount=INPUT_TOKENS + events * 3)
    return usage


def _gemini_response(text: str, finished: bool, events: int | None) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"parts": [{"text": text}], "role": "model"}, "index": 0}
    if finished:
        candidate["finishReason"] = "STOP"
    return {"candidates": [candidate], "usageMetadata": _gemini_usage(events), **GEMINI_ID}


def gemini_response(events: int) -> dict[str, Any]:
    return _gemini_response(answer_text(events), True, events)


def gemini_events(events: int) -> list[bytes]:
    """One whole GenerateContentResponse per `data:` line, each with one text part; the
    last has finishReason STOP and the answer's usage. Gemini ends events with CRLF CRLF
    and sends no end marker."""
    texts = [delta_text(i) for i in range(events)] or [""]
    last = len(texts) - 1
    return [sse(None, _gemini_response(text, i == last, events if i == last else None), "\r\n\r\n")
            for i, text in enumerate(texts)]  # fmt: skip


# -- protocols ------------------------------------------------------------------------


@dataclass(frozen=True)
class Protocol:
    path: str  # re.fullmatch against the request path
    whole: Callable[[int], dict[str, Any]]
    events: Callable[[int], list[bytes]]
    # What in the path asks for a stream, for an API that asks there (Gemini's
    # `:streamGenerateContent` method); None: the body's `"stream": true` asks.
    stream_method: str | None = None

    def streams(self, path: str, body: bytes) -> bool:
        if self.stream_method is not None:
            return path.endswith(self.stream_method)
        return b'"stream":true' in body or b'"stream": true' in body


PROTOCOLS = {
    "anthropic": Protocol("/v1/messages", anthropic_message, anthropic_events),
    "openai-chat": Protocol("/v1/chat/completions", chat_completion, chat_events),
    "openai-responses": Protocol("/v1/responses", response_object, responses_events),
    "gemini": Protocol(
        "/v1beta/models/[^/:]+:(generateContent|streamGenerateContent)", gemini_response, gemini_events,
        stream_method=":streamGenerateContent",
    ),
}


def protocol_for(path: str) -> Protocol | None:
    return next((p for p in PROTOCOLS.values() if re.fullmatch(p.path, path)), None)


# -- the server -------------------------------------------------------------------------


class Upstream:
    def __init__(self) -> None:
        self._framed: dict[tuple[str, int], list[bytes]] = {}
        self._whole: dict[tuple[str, int], bytes] = {}

    def framed(self, protocol: Protocol, events: int) -> list[bytes]:
        """The stream's events, each framed as one HTTP chunk (cached: built once per size)."""
        key = (protocol.path, events)
        if key not in self._framed:
            self._framed[key] = [b"%x\r\n%s\r\n" % (len(e), e) for e in protocol.events(events)]
        return self._framed[key]

    def whole(self, protocol: Protocol, events: int) -> bytes:
        key = (protocol.path, events)
        if key not in self._whole:
            self._whole[key] = json.dumps(protocol.whole(events), separators=(",", ":")).encode()
        return self._whole[key]

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await self._exchange(reader, writer):
                pass
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name:
                headers[name.strip().lower()] = value.strip()
        body = await _read_body(reader, headers)
        path = target.partition("?")[0]
        keep_alive = headers.get("connection", "").lower() != "close"
        protocol = protocol_for(path)
        asked = controls(body)
        rejected = asked.get("reject-key")
        if method == "GET" and path == "/healthz":
            _write_whole(writer, 200, b'{"status":"ok"}', keep_alive)
        elif rejected and headers.get("x-api-key") == rejected:
            _write_whole(writer, 429, RATE_LIMITED, keep_alive, b"retry-after-ms: 1\r\n")
        elif protocol is None or method != "POST":
            _write_whole(writer, 404, b'{"error":"the bench upstream serves %s"}' % ", ".join(p.path for p in PROTOCOLS.values()).encode(), keep_alive)
        else:
            events = int(asked.get("events", DEFAULT_EVENTS))
            if protocol.streams(path, body):
                delay = float(asked.get("first-delay-ms", 0)) / 1000
                batch = max(1, int(asked.get("batch", 1)))
                gap = float(asked.get("gap-ms", 0)) / 1000
                await self._stream(writer, self.framed(protocol, events), delay, batch, keep_alive, gap)
            else:
                _write_whole(writer, 200, self.whole(protocol, events), keep_alive)
        await writer.drain()
        return keep_alive

    async def _stream(self, writer: asyncio.StreamWriter, framed: list[bytes], delay: float, batch: int,
                      keep_alive: bool, gap: float = 0.0) -> None:
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
            b"transfer-encoding: chunked\r\nconnection: %s\r\n\r\n" % (b"keep-alive" if keep_alive else b"close")
        )
        if delay:
            await writer.drain()
            await asyncio.sleep(delay)
        for i in range(0, len(framed), batch):
            writer.write(b"".join(framed[i : i + batch]) if batch > 1 else framed[i])
            if gap:
                await writer.drain()
                await asyncio.sleep(gap)
            elif i % 64 == 0:
                await writer.drain()  # backpressure from a slow reader
        writer.write(b"0\r\n\r\n")


async def _read_body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    if "chunked" in headers.get("transfer-encoding", "").lower():
        parts = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            parts.append(await reader.readexactly(size + 2))
            if size == 0:
                return b"".join(parts)
    length = int(headers.get("content-length", 0))
    return await reader.readexactly(length) if length else b""


def _write_whole(writer: asyncio.StreamWriter, status: int, body: bytes, keep_alive: bool, extra: bytes = b"") -> None:
    """`extra`: more header lines, each ending in CRLF."""
    writer.write(
        b"HTTP/1.1 %d %s\r\ncontent-type: application/json\r\ncontent-length: %d\r\nconnection: %s\r\n%s\r\n%s"
        % (status, REASONS[status], len(body), b"keep-alive" if keep_alive else b"close", extra, body)
    )


async def main(port: int) -> None:
    upstream = Upstream()
    server = await asyncio.start_server(upstream.serve, "127.0.0.1", port, backlog=1024, limit=1 << 20)
    print(f"port {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    try:
        asyncio.run(main(parser.parse_args().port))
    except KeyboardInterrupt:
        pass
