"""A scriptable fake upstream on 127.0.0.1 that records every request it receives.

By default it answers like Anthropic's Messages API (JSON, or SSE when the body asks
for `stream: true`); a test replaces `upstream.reply` to inject any behaviour.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    """A whole response."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "application/json"})


@dataclass
class Stream:
    """A chunked response written piece by piece, sleeping `delays[i]` before piece i;
    with `complete=False` the connection drops after the last piece, without the end.
    `together`: every piece, each its own chunk, and the end in one write (a burst that
    the gateway reads at once)."""

    pieces: list[bytes]
    delays: list[float] = field(default_factory=list)
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"content-type": "text/event-stream"})
    complete: bool = True
    together: bool = False


@dataclass
class Hang:
    """Read the request, then answer nothing until the server stops."""


@dataclass
class Drop:
    """Close the connection without any answer."""


Behaviour = Reply | Stream | Hang | Drop


def message(model: str, text: str = "Hello from the fake upstream.") -> dict[str, Any]:
    return {
        "id": "msg_fake_1",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 12, "output_tokens": 7},
    }


def sse(name: str, data: dict[str, Any]) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def message_events(model: str, text: str = "Hello from the fake upstream.") -> list[bytes]:
    """A complete Anthropic text stream: one event per list item."""
    start = message(model, "")
    start["content"] = []
    start["stop_reason"] = None
    start["usage"] = {"input_tokens": 12, "output_tokens": 1}
    words = text.split(" ")
    return [
        sse("message_start", {"type": "message_start", "message": start}),
        sse("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        *[
            sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                        "delta": {"type": "text_delta", "text": w + (" " if i < len(words) - 1 else "")}})
            for i, w in enumerate(words)
        ],
        sse("content_block_stop", {"type": "content_block_stop", "index": 0}),
        sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                              "usage": {"output_tokens": 7}}),
        sse("message_stop", {"type": "message_stop"}),
    ]


# What the fake's GET /v1/models lists, in Anthropic's newest-first order.
MODELS = ["claude-opus-4-1", "claude-sonnet-4-5", "claude-haiku-4-5"]


def anthropic_models(request: Received) -> Reply:
    """Anthropic's GET /v1/models: one page (`limit` honoured), a 401 without a key."""
    if not (request.headers.get("x-api-key") or request.headers.get("authorization")):
        return Reply(401, json.dumps({"type": "error", "error": {
            "type": "authentication_error", "message": "x-api-key header is required"}}).encode())
    limit = int(parse_qs(urlsplit(request.path).query).get("limit", ["20"])[0])
    data = [{"type": "model", "id": m, "display_name": m, "created_at": "2025-01-01T00:00:00Z"} for m in MODELS[:limit]]
    return Reply(body=json.dumps({"data": data, "has_more": len(MODELS) > limit, "first_id": MODELS[0],
                                  "last_id": data[-1]["id"] if data else None}).encode())


def anthropic_like(request: Received) -> Behaviour:
    """The default behaviour: answer like the Messages API, echoing the model received;
    GET /v1/models lists MODELS."""
    if request.method == "GET" and urlsplit(request.path).path == "/v1/models":
        return anthropic_models(request)
    if request.path.startswith("/v1/messages/count_tokens"):
        return Reply(body=json.dumps({"input_tokens": 42}).encode())
    body = request.json()
    if body.get("stream"):
        return Stream(message_events(body["model"]))
    return Reply(body=json.dumps(message(body["model"])).encode())


class Upstream:
    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.received: list[Received] = []
        self.aborted: list[Received] = []
        self.reply: Callable[[Received], Behaviour] = anthropic_like
        # Consulted before `reply`: a behaviour for some requests (e.g. one credential's), None for the rest.
        self.gate: Callable[[Received], Behaviour | None] | None = None
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        if tls is not None:
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> Upstream:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                request = Received(
                    self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, self.rfile.read(length)
                )
                upstream.received.append(request)
                try:
                    upstream.write(self, (upstream.gate and upstream.gate(request)) or upstream.reply(request))
                except (BrokenPipeError, ConnectionResetError):
                    upstream.aborted.append(request)  # the gateway hung up on us mid-answer
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = _serve

        return Handler

    def write(self, handler: BaseHTTPRequestHandler, behaviour: Behaviour) -> None:
        match behaviour:
            case Reply(status, body, headers):
                handler.send_response(status)
                for name, value in headers.items():
                    handler.send_header(name, value)
                handler.send_header("content-length", str(len(body)))
                handler.end_headers()
                handler.wfile.write(body)
            case Stream(pieces, delays, status, headers, complete, together):
                handler.send_response(status)
                for name, value in headers.items():
                    handler.send_header(name, value)
                handler.send_header("transfer-encoding", "chunked")
                handler.end_headers()
                handler.wfile.flush()
                if together:
                    handler.wfile.write(b"".join(b"%x\r\n%s\r\n" % (len(piece), piece) for piece in pieces)
                                        + (b"0\r\n\r\n" if complete else b""))
                    handler.wfile.flush()
                    pieces = []
                for i, piece in enumerate(pieces):
                    if i < len(delays) and delays[i]:
                        time.sleep(delays[i])
                    handler.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                    handler.wfile.flush()
                if complete and not together:
                    handler.wfile.write(b"0\r\n\r\n")
                elif not complete:
                    handler.close_connection = True
            case Hang():
                self._stopping.wait(60)
                handler.close_connection = True
            case Drop():
                handler.close_connection = True
