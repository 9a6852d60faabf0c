"""Failures: every failure mitmproxy meets is an Anthropic error, and an upstream that
does not answer in time is a 504. (An upstream's own error answer is put in
Anthropic's words by the attempt's driver: Direct, or the relay's Failover.)

mitmproxy answers upstream connect and TLS failures with its own HTML page, and its
`error` hook cannot replace it (mitmproxy PR #7999, still open); a flow in transit
cannot be killed either (issue #4711). So (through modelmux/addons/internals.py):

- mitmproxy's error-page builders are replaced by one that writes the Anthropic
  envelope. Its message is prepared by the `error` hook, which has the flow; the
  builder finds it by the identity of the error string, which mitmproxy hands
  unchanged from `flow.error.msg` to the builder.
- a timeout cancels mitmproxy's task for the upstream connection, which mitmproxy
  then reports through that same error path.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Callable
from functools import partial

from mitmproxy import http
from mitmproxy.connection import Connection
from mitmproxy.net.http import http1
from mitmproxy.proxy import server_hooks

from modelmux import attempt
from modelmux.addons.answers import loggable_url
from modelmux.addons.internals import CLIENT_GONE, ErrorPages, cancel_upstream, load_certificates_now, unverified
from modelmux.addons.notes import find_notes, notes_of, routed_notes
from modelmux.credentials.cooldowns import TransportFailure
from modelmux.errors import error_body

logger = logging.getLogger(__name__)

PREPARED_LIMIT = 256  # error pages prepared but never sent (client gone) are dropped
_TLS_WORDS = ("tls", "ssl", "certificate", "handshake")


class Failures:
    def __init__(self) -> None:
        # id of mitmproxy's message → (that message, the status if not mitmproxy's, the client's message)
        self._prepared: OrderedDict[int, tuple[str, int | None, str]] = OrderedDict()
        self._inflight: dict[str, http.HTTPFlow] = {}  # client connection id → flow
        self._timers: dict[str, asyncio.TimerHandle] = {}  # flow or server connection id → timer
        self._timed_out: dict[str, Callable[[str], str]] = {}  # client connection id → what timed out, said of `where`
        self._pages = ErrorPages()

    def load(self, loader) -> None:
        if warning := unverified():
            logger.warning(warning)
        self._pages.install(self._http1_error_response, self._error_page)

    def configure(self, updated: set[str]) -> None:
        if "confdir" in updated:  # once, at start-up: before the listeners open
            load_certificates_now()

    def done(self) -> None:
        for timer in self._timers.values():
            timer.cancel()
        self._pages.uninstall()

    # -- timeouts -----------------------------------------------------------------

    def request(self, flow: http.HTTPFlow) -> None:
        upstream = routed_notes(flow)
        if flow.response or flow.error or not flow.live or not upstream or upstream.get("relay"):
            return  # the relay times each attempt itself
        self._inflight[flow.client_conn.id] = flow
        self._timers[flow.id] = asyncio.get_running_loop().call_later(
            upstream["response_timeout"], self._response_timed_out, flow
        )

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        flow = self._inflight.get(data.client.id)
        if flow is None:
            return
        seconds = notes_of(flow)["connect_timeout"]
        self._timers[data.server.id] = asyncio.get_running_loop().call_later(
            seconds, self._connect_timed_out, data.client.id, data.server, seconds
        )

    def server_connected(self, data: server_hooks.ServerConnectionHookData) -> None:
        self._cancel_timer(data.server.id)

    def server_connect_error(self, data: server_hooks.ServerConnectionHookData) -> None:
        self._cancel_timer(data.server.id)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        self._finish(flow)

    def _response_timed_out(self, flow: http.HTTPFlow) -> None:
        self._timers.pop(flow.id, None)
        seconds = notes_of(flow)["response_timeout"]
        self._timed_out[flow.client_conn.id] = partial(attempt.not_answered, seconds=seconds)
        address = (flow.request.host, flow.request.port)
        cancel_upstream(flow.client_conn.id, lambda conn: conn.address == address)

    def _connect_timed_out(self, client_id: str, server: Connection, seconds: float) -> None:
        self._timers.pop(server.id, None)
        self._timed_out[client_id] = partial(attempt.not_connected, seconds=seconds)
        cancel_upstream(client_id, lambda conn: conn is server)

    def _cancel_timer(self, key: str) -> None:
        if timer := self._timers.pop(key, None):
            timer.cancel()

    def _finish(self, flow: http.HTTPFlow) -> None:
        self._cancel_timer(flow.id)
        if self._inflight.get(flow.client_conn.id) is flow:
            del self._inflight[flow.client_conn.id]

    # -- errors mitmproxy produces ------------------------------------------------

    def error(self, flow: http.HTTPFlow) -> None:
        self._finish(flow)
        if flow.error is None:
            return
        if flow.error.msg == CLIENT_GONE:
            self._timed_out.pop(flow.client_conn.id, None)
            logger.info("%s %s: client disconnected", flow.request.method, loggable_url(flow))
            return
        timed_out = self._timed_out.pop(flow.client_conn.id, None)
        if find_notes(flow) is None:  # refused by mitmproxy before any request hook ran
            status, message = None, refused(flow)
        else:
            status, message, failure = self._describe(flow, timed_out)
            notes = notes_of(flow)
            notes["failure"] = failure  # how the credential's attempt ended, for its pool
            notes["status"] = status  # what the client gets, as mitmproxy's error page
            notes["error"] = message  # for the Dashboard's line
        self._prepared[id(flow.error.msg)] = (flow.error.msg, status, message)
        while len(self._prepared) > PREPARED_LIMIT:
            self._prepared.popitem(last=False)
        logger.warning("%s %s: %s", flow.request.method, loggable_url(flow), message)

    def _describe(self, flow: http.HTTPFlow, timed_out: Callable[[str], str] | None) -> tuple[int, str, TransportFailure]:
        upstream = routed_notes(flow)
        origin = f"{flow.request.scheme}://{flow.request.host}:{flow.request.port}"
        where = attempt.upstream_at(upstream["provider"], origin) if upstream else origin
        detail = flow.error.msg if flow.error else "unknown error"
        if timed_out:
            return attempt.transport_status("timeout"), timed_out(where), "timeout"
        if flow.error and flow.error.msg == flow.error.KILLED_MESSAGE:
            return 502, f"the request to {where} was cancelled", "cancelled"
        if any(word in detail.lower() for word in _TLS_WORDS):
            return attempt.transport_status("connect"), attempt.tls_failed(where, detail), "connect"
        if flow.server_conn.timestamp_start is None or flow.server_conn.address != (flow.request.host, flow.request.port):
            return attempt.transport_status("connect"), attempt.cannot_connect(where, detail), "connect"
        return attempt.transport_status("reset"), attempt.closed(where, detail), "reset"

    def _page(self, status: int, message: str) -> http.Response:
        """mitmproxy's status for its `message`, unless the `error` hook prepared another."""
        prepared = self._prepared.pop(id(message), None)
        if prepared is not None and prepared[0] is message:
            return error_page(prepared[1] or status, prepared[2])
        return error_page(status, f"modelmux could not complete the request: {message}")

    def _http1_error_response(self, status_code: int, message: str = "") -> bytes:
        return http1.assemble_response(self._page(status_code, message))

    def _error_page(self, status_code: int, message: str) -> bytes:
        return self._page(status_code, message).content or b""


def error_page(status: int, message: str) -> http.Response:
    """The page a client gets for a request mitmproxy could not complete."""
    return http.Response.make(status, error_body(status, message), {"content-type": "application/json",
                                                                     "connection": "close"})


def sent_page(flow: http.HTTPFlow) -> http.Response | None:
    """The page the `error` hook prepared for `flow`, as the answer mitmproxy sends the
    client (over HTTP/1; HTTP/2 and 3 keep mitmproxy's status line): mitmproxy keeps it
    off the flow, which mitmweb then shows unfinished. None when no page goes out: an
    answer was under way, the client left, or the flow was killed."""
    notes = find_notes(flow)
    if flow.response is not None or flow.error is None or not notes or "status" not in notes:
        return None
    if flow.error.msg == CLIENT_GONE or notes.get("failure") == "cancelled":
        return None
    page = error_page(notes["status"], notes["error"])
    page.timestamp_start = page.timestamp_end = flow.error.timestamp
    return page


def refused(flow: http.HTTPFlow) -> str:
    """Why mitmproxy refused a request before any addon saw it, in the client's terms; its
    status stays (400 for a request it would not read, 413 past body_size_limit). Its
    words name its own options, which are for whoever runs the gateway."""
    if flow.request.method == "CONNECT":  # a client that takes the gateway for a proxy (HTTPS_PROXY)
        return ("modelmux is an API gateway, not an HTTP proxy, and does not take CONNECT: set the client's "
                "base URL to it (ANTHROPIC_BASE_URL) instead of HTTPS_PROXY or HTTP_PROXY")
    detail = flow.error.msg if flow.error else "unknown error"
    # "Received message with both transfer-encoding and content-length headers from client,
    # refusing to prevent request smuggling attacks. Disable the validate_inbound_headers
    # option to skip this security check." (mitmproxy/proxy/layers/http/__init__.py)
    return f"modelmux refused the request: {detail.partition(' Disable the validate_inbound_headers')[0]}"

