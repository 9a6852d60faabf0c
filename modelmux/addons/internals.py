"""Every place modelmux reaches into mitmproxy's internals, in one file.

mitmproxy 12 has no public way to replace its own error pages (PR #7999 is open),
to end a flow in transit (issue #4711), to send a client anything a stream
callable did not return, or to send an upstream a header the flow does not hold;
and its debug-mode type checks leave every flow to the garbage collector
(check_option_type). These helpers do exactly that and nothing more. Each checks its touchpoint and
degrades (with a warning) if an upgrade moved it: to mitmproxy's own behaviour, or
for the wire headers to sending through the relay; tests/test_failures.py,
tests/test_heartbeat.py and tests/test_vault.py exercise each.
The whole test suite has passed on each release in VERIFIED; the dependency range in
pyproject.toml ends before the next minor release.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import types
import typing
import weakref
from collections.abc import Callable

from mitmproxy import addonmanager
from mitmproxy import ctx
from mitmproxy import http
from mitmproxy import version
from mitmproxy.connection import Connection
from mitmproxy.proxy.layers.http import _http1
from mitmproxy.proxy.layers.http import _http2
from mitmproxy.proxy.layers.http import _http3
from mitmproxy.utils import typecheck

from modelmux.addons.dispatch import joined

logger = logging.getLogger(__name__)

VERIFIED = ("12.2.3", "12.3.1")  # the mitmproxy releases modelmux's suite passed on
CLIENT_GONE = "Client disconnected."  # mitmproxy's HTTP/1 message when the client went away

ErrorResponse = Callable[[int, str], bytes]  # (status, message) → a whole HTTP/1 response
ErrorBody = Callable[[int, str], bytes]  # (status, message) → a body
Opener = Callable[[http.Request], http.Request | None]  # a request as the upstream gets it; None: as it is


def unverified(running: str = version.VERSION) -> str | None:
    """What to warn of at start-up when this mitmproxy is not a release modelmux was
    verified on: it may work, and where a touchpoint moved, modelmux says so."""
    if running in VERIFIED:
        return None
    return (f"mitmproxy {running} is not a release modelmux was verified on ({', '.join(VERIFIED)}); "
            "if something fails, install one of those")


class ErrorPages:
    """Swaps mitmproxy's HTML error pages for modelmux's while installed."""

    def __init__(self) -> None:
        self._originals: tuple[Callable, Callable, Callable] | None = None

    def install(self, response: ErrorResponse, body: ErrorBody) -> None:
        modules = ((_http1, "make_error_response"), (_http2, "format_error"), (_http3, "format_error"))
        if not all(hasattr(module, name) for module, name in modules):
            logger.warning("this mitmproxy version moved its error-page builders; upstream failures "
                           "will reach clients as mitmproxy's HTML pages")
            return
        self._originals = (_http1.make_error_response, _http2.format_error, _http3.format_error)
        _http1.make_error_response = response
        # HTTP/2 and 3 keep mitmproxy's status line and headers; the body is ours.
        _http2.format_error = _http3.format_error = body

    def uninstall(self) -> None:
        if self._originals:
            _http1.make_error_response, _http2.format_error, _http3.format_error = self._originals
            self._originals = None


class WireHeaders:
    """Has mitmproxy write a request's real header values (vault.py) to the upstream
    while the flow keeps their redacted form: the opener's copy of the request is what
    gets formatted, the flow's own request is never changed. mitmproxy sends a request
    right after its `request` hook, with no hook in between (HttpStream.
    state_consume_request_body), and mitmweb reads the same request object, so this is
    the only moment a real value can exist without a flow holding it.
    Touchpoints: Http1Client.send (HTTP/1, it calls http1.assemble_request_head) and
    format_h2_request_headers, which Http2Client._handle_event2 and
    Http3Connection._handle_event call (HTTP/2 and 3)."""

    def __init__(self) -> None:
        self._originals: tuple[Callable, Callable, Callable] | None = None

    def install(self, opener: Opener) -> bool:
        """Whether installed; if not, mitmproxy would send the redacted values, so the
        caller must send such requests another way."""
        if self._originals:
            return True
        if not _wire_touchpoints_in_place():
            logger.warning("this mitmproxy version moved the code that writes requests to upstreams; modelmux "
                           "sends every request that carries a credential through its relay instead")
            return False
        send, h2, h3 = self._originals = (_http1.Http1Client.send, _http2.format_h2_request_headers,
                                          _http3.format_h2_request_headers)

        def opened(event):  # a RequestHeaders event, or any other event as it is
            if isinstance(event, _http1.RequestHeaders) and (request := opener(event.request)) is not None:
                return dataclasses.replace(event, request=request)
            return event

        _http1.Http1Client.send = lambda layer, event: send(layer, opened(event))
        _http2.format_h2_request_headers = lambda context, event: h2(context, opened(event))
        _http3.format_h2_request_headers = lambda context, event: h3(context, opened(event))
        return True

    def uninstall(self) -> None:
        if self._originals:
            (_http1.Http1Client.send, _http2.format_h2_request_headers,
             _http3.format_h2_request_headers) = self._originals
            self._originals = None


def _wire_touchpoints_in_place() -> bool:
    """Whether each function that turns a request into bytes or frames for an upstream
    is still there and still called where WireHeaders expects (by name, from the
    caller's code), and RequestHeaders still carries the request as a field."""
    try:
        return (
            "assemble_request_head" in _http1.Http1Client.send.__code__.co_names
            and "format_h2_request_headers" in _http2.Http2Client._handle_event2.__code__.co_names
            and "format_h2_request_headers" in _http3.Http3Connection._handle_event.__code__.co_names
            and callable(_http2.format_h2_request_headers) and callable(_http3.format_h2_request_headers)
            and "request" in {f.name for f in dataclasses.fields(_http1.RequestHeaders)}
        )
    except (AttributeError, TypeError):
        return False


class AddonErrors(logging.Filter):
    """Which hook runs an addon raised in. mitmproxy catches an exception in any addon's
    hook, logs it with its traceback ("Addon error") and goes on with the next addon
    (addonmanager.safecall); each hook of a live connection runs in a task of its own,
    every addon's handler awaited in it (proxy/server.py, hook_task). So an error
    record in a task is a failed hook of that task's flow. Touchpoints: safecall's ERROR
    record, with exc_info, on addonmanager's logger. Records pass unchanged."""

    def __init__(self) -> None:
        super().__init__()
        self._failed: weakref.WeakKeyDictionary[asyncio.Task, str] = weakref.WeakKeyDictionary()
        self._logger = getattr(addonmanager, "logger", None)

    def install(self) -> None:
        if not (isinstance(self._logger, logging.Logger) and hasattr(addonmanager, "safecall")):
            logger.warning("this mitmproxy version moved its addon error handling; a request whose addon "
                           "fails may be sent on without modelmux's routing")
            return
        self._logger.addFilter(self)

    def uninstall(self) -> None:
        if isinstance(self._logger, logging.Logger):
            self._logger.removeFilter(self)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.ERROR and record.exc_info and (task := _current_task()) is not None:
            exception = record.exc_info[0]
            self._failed[task] = exception.__name__ if exception else "an exception"
        return True

    def pop(self) -> str | None:
        """The name of the exception an addon raised in the hook now running, if one did."""
        task = _current_task()
        return self._failed.pop(task, None) if task is not None else None


def _current_task() -> asyncio.Task | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no running loop: not a flow's hook
        return None


class Last:
    """The hooks that run after every other addon's, mitmproxy's own included (a script's
    addons sit in the middle of its chain: mitmproxy.md §6.1). One addon at the chain's
    end holds them all: mitmproxy dispatches every event of a flow and the `update`
    after it to every addon, a handler or not: 3.4 µs an event for each addon, 14 µs of
    each request (hot, in-process)."""

    name = "modelmux_last"  # mitmproxy keys addons by name

    def __init__(self) -> None:
        self.parts: list[object] = []

    def update_hooks(self) -> None:
        for event in ("requestheaders", "request"):  # what its parts handle
            handlers = [handler for part in self.parts if callable(handler := getattr(part, event, None))]
            if handlers:
                setattr(self, event, joined(handlers))
            elif event in vars(self):
                delattr(self, event)


def add_last(part: object) -> None:
    """Have `part`'s request hooks run after every other addon's, after the parts added
    before it."""
    last = ctx.master.addons.get(Last.name)
    if last is None:
        last = Last()
        ctx.master.addons.add(last)  # at the chain's end: mitmdump loads scripts after its own addons
    last.parts.append(part)
    last.update_hooks()


def remove_last(part: object) -> None:
    last = ctx.master.addons.get(Last.name)
    if last is None or part not in last.parts:
        return
    last.parts.remove(part)
    last.update_hooks()
    if not last.parts:
        ctx.master.addons.remove(last)


def _handler(client_id: str):  # -> mitmproxy.proxy.server.ConnectionHandler | None
    """Touchpoint: Proxyserver.connections[client id]."""
    return getattr(ctx.master.addons.get("proxyserver"), "connections", {}).get(client_id)


def cancel_upstream(client_id: str, select: Callable[[Connection], bool]) -> None:
    """Cancel mitmproxy's task for the matching upstream connection of this client; mitmproxy
    then reports the flow as failed through its error path. Touchpoint: handler.transports."""
    handler = _handler(client_id)
    for conn, io in list(getattr(handler, "transports", {}).items()):
        if conn is not handler.client and select(conn) and io.handler is not None:
            io.handler.cancel()


def close_client(client_id: str) -> None:
    """Close a client's connection as mitmproxy's own inactivity timeout does
    (ConnectionHandler.on_timeout cancels the client's task). Touchpoint: the client's
    entry in handler.transports."""
    handler = _handler(client_id)
    io = getattr(handler, "transports", {}).get(getattr(handler, "client", None))
    if getattr(io, "handler", None) is not None:
        io.handler.cancel("timeout")


def can_write_chunks(flow: http.HTTPFlow) -> bool:
    """Whether extra chunks may be written to this flow's client: an HTTP/1.1 client whose
    response is chunked (HTTP/2 frames belong to mitmproxy's h2 state machine)."""
    response = flow.response
    return (
        flow.request.http_version == "HTTP/1.1"
        and response is not None
        and "chunked" in response.headers.get("transfer-encoding", "").lower()
    )


def write_chunk(flow: http.HTTPFlow, data: bytes, last: bool = False) -> bool:
    """Write `data` to the client as one chunk of its chunked response (and the final,
    empty chunk if `last`). The caller guarantees a chunk boundary: nothing else is
    mid-write, and the response's end has not been written. Touchpoint: the client's
    transport writer."""
    handler = _handler(flow.client_conn.id)
    io = getattr(handler, "transports", {}).get(getattr(handler, "client", None))
    writer = getattr(io, "writer", None)
    if writer is None or writer.is_closing():
        return False
    writer.write(b"%x\r\n%s\r\n" % (len(data), data) + (b"0\r\n\r\n" if last else b""))
    return True


_CHECK_OPTION_TYPE = typecheck.check_option_type


def check_option_type(name: str, value: typing.Any, typeinfo: typing.Any) -> None:
    """mitmproxy's typecheck.check_option_type, the same answer without an exception
    where it made one for a value it then accepted. It checks every field of every
    message mitmproxy makes (MessageData.__post_init__, under __debug__), and for a None
    in an optional field (a request's trailers, its content before the body, its end
    time) tries the other type first, raising and catching a TypeError. The traceback
    holds the frames that made the message, and with them the message, its flow and
    the proxy layer, in a cycle only the collector frees: every flow lived until the
    next collection, which then took about 1 ms (every 15 requests). Touchpoint: the
    module function, which MessageData and the options look up at each call."""
    try:  # isinstance refuses some types (typing.Any, a protocol): those are for mitmproxy's to judge
        if isinstance(typeinfo, type):
            if isinstance(value, typeinfo):
                return
        elif typing.get_origin(typeinfo) in (typing.Union, types.UnionType):
            if any(isinstance(member, type) and isinstance(value, member) for member in typing.get_args(typeinfo)):
                return
    except TypeError:
        pass
    _CHECK_OPTION_TYPE(name, value, typeinfo)


def install_quick_type_checks() -> None:
    """check_option_type in mitmproxy's place, for the gateway's process."""
    typecheck.check_option_type = check_option_type


# What a Response's data holds (mitmproxy.http.ResponseData); another set: new_response
# calls the constructor.
_RESPONSE_DATA = {"http_version", "status_code", "reason", "headers", "content", "trailers", "timestamp_start",
                  "timestamp_end"}  # fmt: skip
_PLAIN_RESPONSE_DATA = {f.name for f in dataclasses.fields(http.ResponseData)} == _RESPONSE_DATA and \
    not hasattr(http.ResponseData, "__slots__")


def new_response(status_code: int, reason: bytes, headers: http.Headers, content: bytes, now: float) -> http.Response:
    """`http.Response(b"HTTP/1.1", status_code, reason, headers, content, None, now, now)`
    without the check of each field's type that MessageData.__post_init__ makes under
    __debug__: for a None field (the trailers) it raises and catches a TypeError, whose
    traceback holds its frames in a cycle the collector has to find. 25 µs and 17
    objects for the collector, for every JSON answer the relay gives. The same object
    otherwise. Touchpoint: ResponseData's fields; the constructor if they are others."""
    if not _PLAIN_RESPONSE_DATA:
        return http.Response(b"HTTP/1.1", status_code, reason, headers, content, None, now, now)
    data = object.__new__(http.ResponseData)
    vars(data).update(http_version=b"HTTP/1.1", status_code=status_code, reason=reason, headers=headers,
                      content=content, trailers=None, timestamp_start=now, timestamp_end=now)
    response = object.__new__(http.Response)
    response.data = data
    return response


def stored_flows(view) -> list:  # view: mitmproxy.addons.view.View
    """Every flow mitmweb holds, oldest first, whatever the UI's filter shows.
    Touchpoint: View._store (insertion-ordered); the filtered view as a fallback."""
    store = getattr(view, "_store", None)
    return list(store.values()) if store is not None else list(view)


def forget_backup(flow) -> None:  # flow: mitmproxy.flow.Flow
    """Drop the copy of the original a flow keeps once edited (e.g. in mitmweb): the flow
    file format saves it, secrets and all. Touchpoint: Flow._backup."""
    if getattr(flow, "_backup", None) is not None:
        flow._backup = None


def flows_kept() -> bool:
    """Whether finished flows are kept anywhere a person reads them: mitmweb's view,
    `-w` (save_stream_file) or modelmux's own recording. Only then are whole bodies worth
    keeping. Touchpoint: the "view" addon, present under mitmweb only."""
    options = ctx.options
    return (
        ctx.master.addons.get("view") is not None
        or bool(getattr(options, "save_stream_file", None))
        or bool(getattr(options, "modelmux_record", None))
    )


def load_certificates_now() -> None:
    """Have mitmproxy's TlsConfig load its certificate store before the listeners open.
    It does so only in its `running` hook (its own FIXME: configure is never called with
    confdir), which comes after the listeners are up and after modelmux's own `running`
    hooks; a request that arrives in between crashes TlsConfig.request on the missing
    store ("'NoneType' object has no attribute 'default_ca'"), and ErrorCheck then
    exits the whole gateway at the end of start-up ("Errors logged during startup").
    A client retrying at a restarting gateway hit it in 7 starts out of 8.
    Touchpoints: the "tlsconfig" addon's `certstore` and `configure`."""
    tls = ctx.master.addons.get("tlsconfig")
    if tls is not None and getattr(tls, "certstore", False) is None and hasattr(tls, "configure"):
        tls.configure({"confdir"})
