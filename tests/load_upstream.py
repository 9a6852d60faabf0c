"""A fast fake upstream for the load test: asyncio, keep-alive HTTP/1.1, answering as
Anthropic's Messages API or as OpenAI Chat Completions, with one fault per attempt
drawn from a seeded plan.

tests/upstream.py serves a thread per connection behind socketserver's listen backlog
of 5: with the gateway opening dozens of connections at once, a full backlog costs a
SYN retransmit (a second), which would be measured as the gateway's latency. Here one
event loop serves them all, and an upstream that thinks costs no thread.

A fault is a function of (seed, upstream, request id, attempt number at that upstream),
never of arrival order, so a run injects the same faults into the same requests however
the requests interleave. The request id travels in the message text ("load-request-N"),
which both protocols carry to the upstream unchanged.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import socket
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

Protocol = Literal["anthropic", "openai-chat"]
# "break-early": the body stops before the first real event (after message_start, or the
# role-only chunk; a JSON body after its headers). "break-late": it stops after the first
# text delta, once the gateway has given the stream to the client; a JSON body halfway.
Fault = Literal["ok", "429-retry-after", "429", "500", "503", "drop", "break-early", "break-late"]
INPUT_TOKENS, OUTPUT_TOKENS = 12, 7
RETRY_AFTER = 1  # seconds: short, so rate-limited credentials come back within the run

_REQUEST_ID = re.compile(rb"load-request-(\d+)")


def answer_text(rid: int, label: str) -> str:
    """What a normal answer says: whose request it answers and which credential served it,
    so the client can tell its own answer from a neighbour's."""
    return f"answer {rid} from {label}"


@dataclass(frozen=True)
class FaultPlan:
    """Per attempt: its fault, drawn by `weights` (by `storm_weights` for request ids in
    `storm`; none for ids below `clean_below`), and how long the upstream thinks before
    its first byte, drawn from `think`. Errors come five times faster, as real APIs
    refuse before they think."""

    seed: int
    weights: dict[Fault, float]
    clean_below: int = 0
    storm: range = range(0)
    storm_weights: dict[Fault, float] = field(default_factory=dict)
    think: tuple[float, float] = (0.0, 0.0)  # seconds, uniform

    def draw(self, upstream: str, rid: int, attempt: int) -> tuple[Fault, float]:
        draw = random.Random(f"{self.seed}/{upstream}/{rid}/{attempt}")
        weights = self.storm_weights if rid in self.storm else self.weights
        fault = draw.choices(list(weights), weights=list(weights.values()))[0]
        think = draw.uniform(*self.think)
        if rid < self.clean_below:
            return "ok", think
        return fault, think / 5 if fault[:1] in ("4", "5") else think


@dataclass
class Attempt:
    """One request as the upstream received it, and the fault it was given."""

    upstream: str
    rid: int
    number: int  # 0 for the request's first attempt at this upstream
    label: str | None  # of the key it carried, if the key is one of this upstream's
    key: str
    headers: dict[str, str]  # lower-cased names
    stream: bool
    fault: Fault
    think: float  # seconds before the first byte
    at: float  # time.monotonic() on arrival

    @property
    def failed(self) -> bool:
        """Nothing of it may have reached the client (a late break of a stream did)."""
        return self.fault != "ok" and not (self.fault == "break-late" and self.stream)


@dataclass
class FakeUpstream:
    name: str
    protocol: Protocol
    keys: dict[str, str]  # key → label: this provider's credentials
    plan: FaultPlan
    delay: float = 0.03  # between stream pieces, so streams interleave at the gateway
    attempts: list[Attempt] = field(default_factory=list)
    in_flight: int = 0
    peak: int = 0
    _server: asyncio.Server | None = None
    _connections: set[asyncio.StreamWriter] = field(default_factory=set)
    _numbers: Counter[int] = field(default_factory=Counter)

    @property
    def auth_header(self) -> str:
        return "x-api-key" if self.protocol == "anthropic" else "authorization"

    async def start(self, sock: socket.socket) -> None:
        self._server = await asyncio.start_server(self._serve, sock=sock, limit=1 << 20)

    async def stop(self) -> None:
        if self._server:
            self._server.close()
            for writer in self._connections:
                writer.close()  # the gateway's idle keep-alive ones: wait_closed waits for them
            await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._connections.add(writer)
        try:
            while await self._exchange(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass  # the gateway closed the connection
        finally:
            self._connections.discard(writer)
            writer.close()

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """One request and its answer; False when the connection is to be closed."""
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if sep:
                headers[name.strip().lower()] = value.strip()
        raw = await reader.readexactly(int(headers.get("content-length", "0")))
        body = json.loads(raw)
        attempt = self._record(headers, raw, body)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            return await self._answer(writer, attempt, body)
        finally:
            self.in_flight -= 1

    def _record(self, headers: dict[str, str], raw: bytes, body: dict) -> Attempt:
        found = _REQUEST_ID.search(raw)
        rid = int(found.group(1)) if found else -1
        number = self._numbers[rid]
        self._numbers[rid] += 1
        key = headers.get(self.auth_header, "")
        if self.protocol == "openai-chat":
            key = key.removeprefix("Bearer ")
        fault, think = self.plan.draw(self.name, rid, number)
        attempt = Attempt(self.name, rid, number, self.keys.get(key), key, headers, bool(body.get("stream")),
                          fault, think, time.monotonic())
        self.attempts.append(attempt)
        return attempt

    async def _answer(self, writer: asyncio.StreamWriter, attempt: Attempt, body: dict) -> bool:
        fault = attempt.fault
        await asyncio.sleep(attempt.think)
        if fault == "drop":
            return False
        if fault in ("429-retry-after", "429", "500", "503"):
            status = int(fault[:3])
            extra = {"retry-after": str(RETRY_AFTER)} if fault == "429-retry-after" else {}
            writer.write(_whole(status, self._error(status), extra))
            await writer.drain()
            return True
        text = answer_text(attempt.rid, attempt.label or "unknown")
        if not attempt.stream:
            whole = _whole(200, self._message(body["model"], text))
            if fault == "ok":
                writer.write(whole)
            else:  # a body cut short: nothing at all after the headers, or half of it
                split = whole.index(b"\r\n\r\n") + 4
                writer.write(whole[:split] if fault == "break-early" else whole[:split + (len(whole) - split) // 2])
            await writer.drain()
            return fault == "ok"
        pieces = self._events(body, text)
        cut = {"ok": len(pieces), "break-early": 1, "break-late": 3}[fault]
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")
        for i, piece in enumerate(pieces[:cut]):
            if i:
                await asyncio.sleep(self.delay)
            writer.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            await writer.drain()
        if fault != "ok":
            return False  # the connection drops without the chunked body's end
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True

    def _error(self, status: int) -> dict:
        # Neither names invalid_request_error, which would make the gateway treat the
        # 5xx as the request's fault and stop trying (modelmux/credentials/cooldowns.py).
        message = f"fake {self.name} says {status}"
        if self.protocol == "anthropic":
            kind = {429: "rate_limit_error", 500: "api_error", 503: "overloaded_error"}[status]
            return {"type": "error", "error": {"type": kind, "message": message}}
        kind = {429: "rate_limit_exceeded", 500: "server_error", 503: "service_unavailable"}[status]
        return {"error": {"message": message, "type": kind, "param": None, "code": kind}}

    def _message(self, model: str, text: str) -> dict:
        if self.protocol == "anthropic":
            return {
                "id": "msg_load", "type": "message", "role": "assistant", "model": model,
                "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None,
                "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": OUTPUT_TOKENS},
            }
        return {
            "id": "chatcmpl-load", "object": "chat.completion", "created": 1700000000, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": INPUT_TOKENS, "completion_tokens": OUTPUT_TOKENS,
                      "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS},
        }

    def _events(self, body: dict, text: str) -> list[bytes]:
        """A whole streamed answer, one piece per event. Piece 0 is message_start (or the
        role chunk), piece 2 the first text delta: `cut` above counts on it."""
        model = body["model"]
        words = [w + " " for w in text.split(" ")]
        words[-1] = words[-1].rstrip()
        if self.protocol == "anthropic":
            start = {"id": "msg_load", "type": "message", "role": "assistant", "model": model, "content": [],
                     "stop_reason": None, "stop_sequence": None,
                     "usage": {"input_tokens": INPUT_TOKENS, "output_tokens": 1}}
            return [
                _sse("message_start", {"type": "message_start", "message": start}),
                _sse("content_block_start", {"type": "content_block_start", "index": 0,
                                             "content_block": {"type": "text", "text": ""}}),
                *[_sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                               "delta": {"type": "text_delta", "text": w}}) for w in words],
                _sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
                _sse("message_delta", {"type": "message_delta",
                                       "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                       "usage": {"output_tokens": OUTPUT_TOKENS}}),
                _sse("message_stop", {"type": "message_stop"}),
            ]

        def chunk(delta: dict, finish: str | None = None) -> dict:
            return {"id": "chatcmpl-load", "object": "chat.completion.chunk", "created": 1700000000, "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        usage = {"id": "chatcmpl-load", "object": "chat.completion.chunk", "created": 1700000000, "model": model,
                 "choices": [], "usage": {"prompt_tokens": INPUT_TOKENS, "completion_tokens": OUTPUT_TOKENS,
                                          "total_tokens": INPUT_TOKENS + OUTPUT_TOKENS}}
        # The role chunk, then an empty content delta (as OpenAI often sends): neither opens
        # a block at the gateway, so piece 2 is the first text, as in Anthropic's stream.
        chunks = [chunk({"role": "assistant", "content": ""}), chunk({"content": ""}),
                  *[chunk({"content": w}) for w in words], chunk({}, "stop"), usage]
        return [b"data: %s\n\n" % json.dumps(c).encode() for c in chunks] + [b"data: [DONE]\n\n"]


def listening_socket() -> socket.socket:
    """Bound and listening before the gateway starts, so its routes.yaml can name the port;
    connections wait in the backlog until the event loop serves them."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(1024)
    sock.setblocking(False)
    return sock


_REASONS = {200: "OK", 429: "Too Many Requests", 500: "Internal Server Error", 503: "Service Unavailable"}


def _whole(status: int, body: dict, headers: dict[str, str] | None = None) -> bytes:
    content = json.dumps(body).encode()
    lines = [f"HTTP/1.1 {status} {_REASONS[status]}", "content-type: application/json",
             f"content-length: {len(content)}", *(f"{n}: {v}" for n, v in (headers or {}).items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + content


def _sse(name: str, data: dict) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()
