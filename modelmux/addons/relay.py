"""Relay: an in-process loopback server that a streamed request with somewhere to fail
over to is sent through, so that a failed attempt can be followed by another and the
answer still streams progressively.

mitmproxy cannot send a flow's request a second time, and once it has the upstream's
response it can only replace it whole (mitmproxy.md §4.2). So the Router points such
flows at this server; it reads the plan the Router registered for the flow and runs
the attempts (modelmux/addons/failover.py) with its Sender. mitmproxy stays the
shell: the flow, its stream to the client, the dashboard, the record. Streams with a
single possible upstream are sent by mitmproxy itself, without the loopback hop
(docs/benchmarks.md).

A request for one JSON answer needs no stream, whatever its upstreams: the same
attempts (one, for a single possible upstream) run in a request
hook (`answer`), and their answer becomes the flow's response there, without the
loopback hop (mitmproxy sends an answer set in that hook as it is). That hook is the
very last one, so that they start only once every addon's request hook has run and
none failed (guard.py), and mitmproxy's own addons (Save: `-w`) know the flow.

The server speaks the small part of HTTP/1.1 mitmproxy uses towards it: one request
at a time per connection, with a Content-Length body.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import socket
import time
from collections.abc import Awaitable, Iterable

from mitmproxy import ctx, http

from modelmux.addons import vault
from modelmux.addons.failover import Failover, Plan
from modelmux.addons.sender import tls_context
from modelmux.addons.internals import add_last, new_response, remove_last
from modelmux.addons.urls import point
from modelmux.config.types import Credential
from modelmux.errors import GatewayError
from modelmux.secrets import longest_first, scrub, scrub_bytes

logger = logging.getLogger(__name__)

PLAN_HEADER = "x-modelmux-plan"
HEAD_LIMIT = 256 * 1024  # request line and headers; Claude Code's are a few KB
BODY_LIMIT = 256 * 1024 * 1024  # mitmproxy's own body limit is the real one


class Responder:
    """Writes one HTTP/1.1 response to mitmproxy: whole, or chunked as it comes.

    A stream's head may go out `early`, before the attempts have decided its status
    and headers: mitmproxy then reads and parses it while the upstream thinks, and the
    Relay's responseheaders hook holds it until `decide` says what it is."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.started = False  # the answer's head is decided
        self.decision: asyncio.Future[Head | None] | None = None  # set when the head went out early

    @property
    def opened(self) -> bool:
        """A chunked head is on the wire, undecided."""
        return self.decision is not None and not self.started

    def early(self) -> None:
        """Sends a stream's head before its status and headers are decided."""
        if not self.started and self.decision is None:
            self.decision = asyncio.get_running_loop().create_future()
            self.writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n")

    def head(self, status: int, headers: Iterable[tuple[str, str]], first: Iterable[bytes] = ()) -> None:
        """A chunked answer's head, with its `first` chunks in the same write: one segment
        that mitmproxy reads at once, not one per piece of what the Gate held."""
        chunks = b"".join(_chunk(data) for data in first if data)
        if self.opened:
            self._decided(status, [*headers, ("transfer-encoding", "chunked")])
            self.writer.write(chunks)
        else:
            self.writer.write(self._head(status, headers, None) + chunks)

    def _head(self, status: int, headers: Iterable[tuple[str, str]], length: int | None) -> bytes:
        self.started = True
        framing = f"content-length: {length}" if length is not None else "transfer-encoding: chunked"
        lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}", *(f"{n}: {v}" for n, v in headers), framing]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")

    def _decided(self, status: int, headers: list[tuple[str, str]]) -> None:
        self.started = True
        assert self.decision is not None
        self.decision.set_result((status, _REASONS.get(status, "Status"), headers))

    def abandon(self) -> None:
        """The relay gave up on the request: the hook holding an early head lets it go."""
        if self.decision is not None and not self.decision.done():
            self.decision.set_result(None)

    def chunk(self, data: bytes) -> None:
        if data:
            self.writer.write(_chunk(data))

    def end(self) -> None:
        self.writer.write(b"0\r\n\r\n")

    def whole(self, status: int, headers: Iterable[tuple[str, str]], body: bytes) -> None:
        if self.opened:  # the client gets it whole: mitmproxy reads all of it before it answers
            self._decided(status, [*headers, ("content-length", str(len(body)))])
            self.writer.write((_chunk(body) if body else b"") + b"0\r\n\r\n")
        else:
            self.writer.write(self._head(status, headers, len(body)) + body)  # one write: one segment when it fits

    def error(self, error: GatewayError) -> None:
        self.whole(error.status, [("content-type", "application/json"), *error.headers.items()], error.body())

    async def drain(self) -> None:
        """Waits while mitmproxy reads slower than the answer comes (the write buffer past
        its high-water mark), and raises once the connection is gone; else returns without
        awaiting drain(), which runs for every chunk of a stream."""
        transport = self.writer.transport
        if transport.is_closing() or transport.get_write_buffer_size() > transport.get_write_buffer_limits()[1]:
            await self.writer.drain()

    @property
    def gone(self) -> bool:
        return self.writer.is_closing()


# A decided head: status, reason and headers as the client gets them.
Head = tuple[int, str, list[tuple[str, str]]]


def _fields(headers: Iterable[tuple[str, str]]) -> list[tuple[bytes, bytes]]:
    """Header fields as the loopback head carries them (Responder._head: latin-1)."""
    return [(name.encode("latin-1", "replace"), value.encode("latin-1", "replace")) for name, value in headers]


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
            429: "Too Many Requests", 500: "Internal Server Error", 501: "Not Implemented",
            502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout", 529: "Overloaded"}


class Collected:
    """The relay's answer kept whole for the flow, where the Responder would write it
    to mitmproxy: a request for one JSON answer (Relay.answer). A stream an upstream
    gives it anyway is kept whole too."""

    def __init__(self) -> None:
        self.started = False
        self.gone = False
        self.status = 500
        self.headers: list[tuple[str, str]] = []
        self.body: list[bytes] = []

    def early(self) -> None:
        pass

    def head(self, status: int, headers: Iterable[tuple[str, str]], first: Iterable[bytes] = ()) -> None:
        self.started = True
        self.status, self.headers = status, list(headers)
        self.body += first

    def chunk(self, data: bytes) -> None:
        self.body.append(data)

    def end(self) -> None:
        pass

    def whole(self, status: int, headers: Iterable[tuple[str, str]], body: bytes) -> None:
        self.head(status, headers, (body,))

    def error(self, error: GatewayError) -> None:
        self.whole(error.status, [("content-type", "application/json"), *error.headers.items()], error.body())

    async def drain(self) -> None:
        pass

    def response(self, secrets: list[Credential]) -> http.Response:
        """The answer, as the relay's loopback answer would have reached the flow, without
        the `secrets` an upstream echoed: the flow shows it from this hook on (mitmweb
        pushes it), before the Echoes' hooks would scrub it."""
        body = scrub_bytes(b"".join(self.body), secrets)
        fields = _fields((name, scrub(value, secrets)) for name, value in self.headers if name != "content-length")
        fields.append((b"content-length", b"%d" % len(body)))
        now = time.time()  # as Response.make sets them; it costs twice as much (its content setter)
        return new_response(self.status, _REASONS.get(self.status, "Status").encode(), http.Headers(fields), body, now)


class Relay:
    def __init__(self, failover: Failover) -> None:
        self.failover = failover
        self.port: int | None = None
        self._socket: socket.socket | None = None
        self._server: asyncio.Server | None = None
        self._plans: dict[str, Plan] = {}  # token → plan, until the relay picks it up
        self._tokens: dict[str, str] = {}  # flow id → token
        self._answers: dict[str, Responder] = {}  # flow id → its answer, from when the relay has the request
        self._whole: dict[str, set[asyncio.Future]] = {}  # client connection id → the attempts `answer` awaits
        self._later: dict[str, Plan] = {}  # flow id → the plan its last request hook answers (`answer_later`)
        self._started = asyncio.Event()  # the Failover can send (`running`)
        self.last = Last(self)

    def load(self, loader) -> None:
        """Take the relay's port at once. mitmproxy's proxy may accept a request before
        this addon's `running` has finished (both start in that hook), and a relayed
        request routed then found no port: a 500, and an error logged during start-up
        ends mitmproxy. Its connection now waits in the listen backlog until the
        relay serves."""
        self._bind()
        add_last(self.last)  # after the Guard's, which its load added before

    def configure(self, updated: set[str]) -> None:
        """The relay checks upstreams' certificates as mitmproxy's own path does."""
        if self.failover.sender is not None and not updated.isdisjoint(_TLS_OPTIONS):
            self.failover.sender.tls = _upstream_tls()

    async def running(self) -> None:
        self._bind()
        await self.failover.start(_upstream_tls())
        self._started.set()
        self._server = await asyncio.start_server(self._serve, sock=self._socket, limit=HEAD_LIMIT)

    async def done(self) -> None:
        remove_last(self.last)
        if self._server:
            self._server.close()
        elif self._socket:
            self._socket.close()
        self._socket = None
        await self.failover.stop()

    def _bind(self) -> None:
        if self._socket is None:
            self._socket = socket.create_server(("127.0.0.1", 0))
            self.port = self._socket.getsockname()[1]

    def register(self, flow: http.HTTPFlow, plan: Plan) -> None:
        """Send `flow` through the relay, which runs `plan`."""
        token = secrets.token_urlsafe(12)
        self._plans[token] = plan
        self._tokens[flow.id] = token
        request = self._point(flow)
        request.headers[PLAN_HEADER] = token
        request.headers.pop("transfer-encoding", None)
        request.headers["content-length"] = str(len(request.raw_content or b""))

    def _point(self, flow: http.HTTPFlow) -> http.Request:
        """Point the flow at the relay, without the real credentials (the plan holds them)."""
        assert self.port is not None, "the relay starts with the gateway"
        request = flow.request
        point(request, f"http://127.0.0.1:{self.port}{request.path}")
        vault.keep_off_wire(request)
        return request

    def answer_later(self, flow: http.HTTPFlow, plan: Plan) -> None:
        """Answer `flow`, which wants one JSON answer, by running `plan` in the last request
        hook (`answer_pending`). Until then it points at the relay, which has no plan for it."""
        self._point(flow)
        self._later[flow.id] = plan

    def answer_pending(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
        """The answer `answer_later` promised `flow`, unless another addon has answered or
        failed it by now (the Guard answers those)."""
        plan = self._later.pop(flow.id, None)
        if plan is None or flow.response or flow.error or not flow.live:
            return None
        return self.answer(flow, plan)

    async def answer(self, flow: http.HTTPFlow, plan: Plan) -> None:
        """Runs `plan` for a flow that wants one JSON answer, and answers the flow with
        what the attempts gave. A client that goes away meanwhile ends them; mitmproxy
        then sees it is gone and ends the flow."""
        # A request may come before `running` is over (the proxy listens from its start).
        if not self._started.is_set():
            await self._started.wait()
        out = Collected()
        # A task of its own, which client_disconnected can cancel without cancelling
        # mitmproxy's hook; started at once (eagerly): a task that waits for the next turn
        # of the loop to begin cost every JSON answer about 20 µs.
        run = asyncio.eager_task_factory(asyncio.get_running_loop(), self.failover.run(plan, out))
        client = flow.client_conn.id
        self._whole.setdefault(client, set()).add(run)
        try:
            await asyncio.wait((run,))
        finally:
            if not run.done():  # this hook was cancelled: mitmproxy is shutting down
                run.cancel()
            if (runs := self._whole.get(client)) is not None:
                runs.discard(run)
                if not runs:
                    del self._whole[client]
        if not run.cancelled():
            run.result()
            # What the attempts gave their upstreams, each of which may echo it.
            given = {id(c): c for candidate in plan.candidates for c in plan.secrets(candidate)}
            flow.response = out.response(longest_first(given.values()))

    def client_disconnected(self, client) -> None:
        for run in self._whole.pop(client.id, ()):
            run.cancel()

    def responseheaders(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
        """A head the relay sent early is held until the attempts decide it, while the
        upstream thinks; mitmproxy has read and parsed it meanwhile."""
        answer = self._answers.get(flow.id)
        if answer is not None and answer.decision is not None:
            return self._decided(flow, answer.decision)
        self._stream(flow)
        return None

    async def _decided(self, flow: http.HTTPFlow, decision: asyncio.Future[Head | None]) -> None:
        # A client that goes away meanwhile is seen all the same: mitmproxy closes the
        # relay's connection, the relay stops the attempts and lets the head go (None).
        head = await decision
        if head is not None and (response := flow.response) is not None:
            response.status_code, response.reason = head[0], head[1]
            response.headers = http.Headers(_fields(head[2]))
        self._stream(flow)

    def _stream(self, flow: http.HTTPFlow) -> None:
        """The relay's stream is the client's as it comes: it is whole events already,
        translated, with pings."""
        response = flow.response
        if flow.id in self._tokens and response is not None and response.status_code < 400 and \
                response.headers.get("content-type", "").startswith("text/event-stream"):
            response.stream = True

    def response(self, flow: http.HTTPFlow) -> None:
        self._forget(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._forget(flow)

    def _forget(self, flow: http.HTTPFlow) -> None:
        self._answers.pop(flow.id, None)
        self._later.pop(flow.id, None)
        if token := self._tokens.pop(flow.id, None):
            self._plans.pop(token, None)  # still there if the relay never got the request

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        # asyncio turns Nagle's algorithm off only for sockets that say they are TCP, and
        # socket.create_server's say protocol 0: with it on, a response's body waited for
        # mitmproxy's delayed ACK of its head, 40 ms on Linux.
        if (sock := writer.get_extra_info("socket")) is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            while await self._exchange(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError):
            pass
        finally:
            writer.close()

    async def _exchange(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
        """One request and its response; False when the connection is done."""
        head = await reader.readuntil(b"\r\n\r\n")
        headers = _headers(head)
        length = int(headers.get("content-length", "0"))
        if length > BODY_LIMIT:
            raise ValueError("request body too large")
        await reader.readexactly(length)  # the plan holds the body; this one only frames the request
        out = Responder(writer)
        plan = self._plans.pop(headers.get(PLAN_HEADER, ""), None)
        if plan is None:
            out.error(GatewayError(500, "modelmux's relay got a request without a plan (internal error)"))
            await out.drain()
            return True
        self._answers[plan.flow.id] = out
        try:
            return await self._answer(plan, out, reader)
        finally:
            out.abandon()  # a head sent early and never decided (the run failed, or was cancelled) is let go

    async def _answer(self, plan: Plan, out: Responder, reader: asyncio.StreamReader) -> bool:
        run = asyncio.ensure_future(self.failover.run(plan, out))
        eof = asyncio.ensure_future(reader.read(1))  # mitmproxy sends nothing more until it has the answer
        await asyncio.wait({run, eof}, return_when=asyncio.FIRST_COMPLETED)
        if not run.done():  # mitmproxy closed the connection: the client went away
            run.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await run
            return False
        eof.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await eof  # the reader takes one waiter at a time
        run.result()
        await out.drain()
        return not out.gone


class Last:
    """The Relay's request hook that runs after every other addon's, mitmproxy's own and
    the Guard's included (internals.add_last): it answers the flows `answer_later` was
    given."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay

    def request(self, flow: http.HTTPFlow) -> Awaitable[None] | None:
        return self.relay.answer_pending(flow)


def _headers(head: bytes) -> dict[str, str]:
    lines = head.decode("latin-1").split("\r\n")[1:]
    found = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if sep:
            found[name.strip().lower()] = value.strip()
    return found


_TLS_OPTIONS = frozenset(("ssl_insecure", "ssl_verify_upstream_trusted_ca", "ssl_verify_upstream_trusted_confdir"))


def _upstream_tls():
    options = ctx.options
    return tls_context(options.ssl_insecure, options.ssl_verify_upstream_trusted_ca,
                       options.ssl_verify_upstream_trusted_confdir)
