"""A lean HTTP/1.1 keep-alive client on raw asyncio streams, and the request it sends.

httpx costs more CPU per request than the gateways being measured, on the same two
cores; this client does only what a measurement needs: send pre-encoded bytes, take
the response apart (Content-Length or chunked), and note when the first content event
and the last byte arrived.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass

from bench.token_accuracy import claude_code_request

FIRST_CONTENT = b"content_block_delta"
DELTA = b'"type":"content_block_delta"'  # once per delta event (the event: line has no quotes)
STOP_EVENT = b'"type":"message_stop"'
READ_SIZE = 1 << 18
REQUEST_ID = "(bench request 0000000)"  # its digits change per request, like a new turn's text
# The upstream's instructions ride in that text, after the digits (upstreams.controls):
# modelmux forwards no header of the client's that a provider does not need, while the
# last user text reaches every upstream, translated or not.
# What Claude Code sends besides the body (its Stainless SDK headers).
CLIENT_HEADERS = (
    "accept: application/json\r\n"
    "anthropic-version: 2023-06-01\r\n"
    "anthropic-beta: claude-code-20250219,interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14\r\n"
    "anthropic-dangerous-direct-browser-access: true\r\n"
    "user-agent: claude-cli/2.0.0 (external, cli)\r\n"
    "x-app: cli\r\n"
    "x-api-key: sk-ant-bench-client-key\r\n"
    "x-stainless-arch: x64\r\nx-stainless-lang: js\r\nx-stainless-os: Linux\r\n"
    "x-stainless-package-version: 0.60.0\r\nx-stainless-retry-count: 0\r\n"
    "x-stainless-runtime: node\r\nx-stainless-runtime-version: v22.17.0\r\nx-stainless-timeout: 600\r\n"
)


class Body:
    """The realistic Claude Code request for one model, encoded once; each call gives a
    copy whose last user text carries a new request number and the upstream's controls."""

    def __init__(self, model: str, stream: bool) -> None:
        request = claude_code_request()
        request["model"] = model
        request["stream"] = stream
        request["messages"][-1]["content"].append({"type": "text", "text": REQUEST_ID})
        encoded = json.dumps(request, ensure_ascii=False, separators=(",", ":")).encode()
        at = encoded.index(REQUEST_ID.encode()) + len("(bench request ")
        self._before, self._after = encoded[:at], encoded[at + 7 :]
        self._count = 0
        self.size = len(encoded)
        self.summary = (
            f"{self.size / 1000:.0f} KB of JSON: {len(request['system'])} system blocks "
            f"({sum('cache_control' in b for b in request['system'])} with cache_control), {len(request['tools'])} tools "
            f"with JSON schemas, {len(request['messages'])} messages with "
            f"{sum(b.get('type') == 'tool_use' for m in request['messages'] for b in m['content'])} tool uses and their results"
        )

    def next(self, controls: str = "") -> bytes:
        """`controls`: " name=value" pairs for the upstream (upstreams.CONTROLS)."""
        self._count = (self._count + 1) % 10_000_000
        return self._before + b"%07d" % self._count + controls.encode() + self._after


@dataclass
class Response:
    status: int
    body: bytes
    elapsed: float  # seconds from sending to the last byte
    first_content: float | None  # seconds from sending to the first content_block_delta

    def deltas(self) -> int:
        return self.body.count(DELTA)


class Connection:
    """One keep-alive connection; reopened when the server closes it."""

    def __init__(self, port: int, host: str = "127.0.0.1") -> None:
        self.host, self.port = host, port
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._buf = bytearray()
        self._pos = 0

    async def open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port, limit=READ_SIZE)
        self._buf.clear()
        self._pos = 0

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    async def post(self, path: str, body: bytes) -> Response:
        if self._writer is None or self._writer.is_closing():
            await self.open()
        assert self._writer is not None
        head = (
            f"POST {path} HTTP/1.1\r\nhost: {self.host}:{self.port}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n{CLIENT_HEADERS}\r\n"
        ).encode()
        start = time.perf_counter()
        self._writer.write(head + body)
        try:
            return await self._response(start)
        except BaseException:
            self.close()  # a half-read response leaves the connection unusable
            raise

    async def _fill(self) -> None:
        assert self._reader is not None
        data = await self._reader.read(READ_SIZE)
        if not data:
            raise ConnectionError("the server closed the connection mid-response")
        if self._pos > READ_SIZE:
            del self._buf[: self._pos]
            self._pos = 0
        self._buf += data

    async def _until(self, token: bytes) -> int:
        while (at := self._buf.find(token, self._pos)) < 0:
            await self._fill()
        return at

    async def _exactly(self, size: int) -> bytes:
        while len(self._buf) - self._pos < size:
            await self._fill()
        data = bytes(self._buf[self._pos : self._pos + size])
        self._pos += size
        return data

    async def _response(self, start: float) -> Response:
        end = await self._until(b"\r\n\r\n")
        lines = bytes(self._buf[self._pos : end]).decode("latin-1").split("\r\n")
        self._pos = end + 4
        status = int(lines[0].split(" ", 2)[1])
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip().lower()
        first: float | None = None
        if "chunked" in headers.get("transfer-encoding", ""):
            pieces = []
            tail = b""
            while True:
                line_end = await self._until(b"\r\n")
                size = int(bytes(self._buf[self._pos : line_end]).split(b";")[0], 16)
                self._pos = line_end + 2
                data = await self._exactly(size + 2)
                if size == 0:
                    break  # no trailers: the bench's servers send none
                if first is None:
                    if FIRST_CONTENT in tail + data:
                        first = time.perf_counter() - start
                    tail = data[-len(FIRST_CONTENT) :]
                pieces.append(data[:-2])
            body = b"".join(pieces)
        else:
            body = await self._exactly(int(headers.get("content-length", 0)))
        elapsed = time.perf_counter() - start
        if headers.get("connection") == "close":
            self.close()
        return Response(status, body, elapsed, first)
