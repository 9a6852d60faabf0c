"""Failures: every failure a client sees is an Anthropic error, and an upstream that
does not answer in time is a 504.

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
import math
import time
from collections import OrderedDict

from mitmproxy import http
from mitmproxy.connection import Connection
from mitmproxy.net.http import http1
from mitmproxy.proxy import server_hooks

from modelmux.addons import vault
from modelmux.addons.answers import loggable_url
from modelmux.addons.internals import CLIENT_GONE, ErrorPages, cancel_upstream, load_certificates_now, unverified
from modelmux.addons.settings import Settings
from modelmux.config import Credential
from modelmux.cooldowns import TransportFailure, names_a_wait, upstream_delay
from modelmux.errors import error_body, upstream_error
from modelmux.exchange import upstream_failure
from modelmux.headers import client_credential
from modelmux.secrets import scrub

logger = logging.getLogger(__name__)

PREPARED_LIMIT = 256  # error pages prepared but never sent (client gone) are dropped
_TLS_WORDS = ("tls", "ssl", "certificate", "handshake")


class Failures:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        # id of mitmproxy's message → (that message, the status if not mitmproxy's, the client's message)
        self._prepared: OrderedDict[int, tuple[str, int | None, str]] = OrderedDict()
        self._inflight: dict[str, http.HTTPFlow] = {}  # client connection id → flow
        self._timers: dict[str, asyncio.TimerHandle] = {}  # flow or server connection id → timer
        self._timed_out: dict[str, str] = {}  # client connection id → what timed out
        self._clients: dict[str, list[Credential]] = {}  # flow id → the client's own tokens, until it is answered
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
        upstream = _upstream(flow)
        if flow.response or flow.error or not flow.live or not upstream or upstream.get("relay"):
            return  # the relay times each attempt itself
        # Which of the client's own credentials went upstream (the flow holds them
        # sealed), for the 401 of a passthrough provider that takes neither.
        client = vault.client_tokens(flow.request)
        upstream["client_credential"] = client_credential(client)
        if clients := vault.client_credentials(flow.request):
            self._clients[flow.id] = clients  # not in the flow's metadata, which a saved flow keeps
        self._inflight[flow.client_conn.id] = flow
        self._timers[flow.id] = asyncio.get_running_loop().call_later(
            upstream["response_timeout"], self._response_timed_out, flow
        )

    def server_connect(self, data: server_hooks.ServerConnectionHookData) -> None:
        flow = self._inflight.get(data.client.id)
        if flow is None:
            return
        seconds = flow.metadata["modelmux"]["connect_timeout"]
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
        seconds = flow.metadata["modelmux"]["response_timeout"]
        self._timed_out[flow.client_conn.id] = f"did not answer within {seconds:g} s (response_timeout)"
        address = (flow.request.host, flow.request.port)
        cancel_upstream(flow.client_conn.id, lambda conn: conn.address == address)

    def _connect_timed_out(self, client_id: str, server: Connection, seconds: float) -> None:
        self._timers.pop(server.id, None)
        self._timed_out[client_id] = f"could not be connected to within {seconds:g} s (connect_timeout)"
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
        self._clients.pop(flow.id, None)
        if flow.error is None:
            return
        if flow.error.msg == CLIENT_GONE:
            self._timed_out.pop(flow.client_conn.id, None)
            logger.info("%s %s: client disconnected", flow.request.method, loggable_url(flow))
            return
        timed_out = self._timed_out.pop(flow.client_conn.id, None)
        if "modelmux" not in flow.metadata:  # refused by mitmproxy before any request hook ran
            status, message = None, refused(flow)
        else:
            status, message, failure = self._describe(flow, timed_out)
            notes = flow.metadata["modelmux"]
            notes["failure"] = failure  # how the credential's attempt ended, for its pool
            notes["status"] = status  # what the client gets, as mitmproxy's error page
            notes["error"] = message  # for the Dashboard's line
        self._prepared[id(flow.error.msg)] = (flow.error.msg, status, message)
        while len(self._prepared) > PREPARED_LIMIT:
            self._prepared.popitem(last=False)
        logger.warning("%s %s: %s", flow.request.method, loggable_url(flow), message)

    def _describe(self, flow: http.HTTPFlow, timed_out: str | None) -> tuple[int, str, TransportFailure]:
        upstream = _upstream(flow)
        origin = f"{flow.request.scheme}://{flow.request.host}:{flow.request.port}"
        where = f"provider '{upstream['provider']}' ({origin})" if upstream else origin
        detail = flow.error.msg if flow.error else "unknown error"
        if timed_out:
            return 504, f"{where} {timed_out}", "timeout"
        if flow.error and flow.error.msg == flow.error.KILLED_MESSAGE:
            return 502, f"the request to {where} was cancelled", "cancelled"
        if any(word in detail.lower() for word in _TLS_WORDS):
            return 502, f"TLS connection to {where} failed: {detail}", "connect"
        if flow.server_conn.timestamp_start is None or flow.server_conn.address != (flow.request.host, flow.request.port):
            return 502, f"cannot connect to {where}: {detail}", "connect"
        return 502, f"{where} closed the connection without a complete answer: {detail}", "reset"

    def _page(self, status: int, message: str) -> tuple[int, bytes]:
        """mitmproxy's status for its `message`, unless the `error` hook prepared another."""
        prepared = self._prepared.pop(id(message), None)
        if prepared is not None and prepared[0] is message:
            status = prepared[1] or status
            return status, error_body(status, prepared[2])
        return status, error_body(status, f"modelmux could not complete the request: {message}")

    def _http1_error_response(self, status_code: int, message: str = "") -> bytes:
        status, body = self._page(status_code, message)
        response = http.Response.make(status, body, {"content-type": "application/json", "connection": "close"})
        return http1.assemble_response(response)

    def _error_page(self, status_code: int, message: str) -> bytes:
        return self._page(status_code, message)[1]

    # -- upstream answers that are errors but not Anthropic errors ----------------

    def response(self, flow: http.HTTPFlow) -> None:
        self._finish(flow)
        clients = self._clients.pop(flow.id, [])
        response = flow.response
        upstream = _upstream(flow)
        if response is None or upstream is None or response.status_code < 400 or response.stream:
            return
        config = self.settings.config
        provider = config.providers.get(upstream["provider"]) if config else None
        original = response.get_text(strict=False) or ""
        # The provider's keys first (a client may send one of them too), then the client's
        # own tokens, which a passthrough upstream quotes when it rejects them.
        text = scrub(original, [*(provider.secrets if provider else ()), *clients])
        if provider is None:  # the config was reloaded without it
            status, body, added = response.status_code, upstream_error(upstream["provider"], response.status_code,
                                                                       response.reason, text, ()), {}
        else:
            status, body, added = upstream_failure(provider, response.status_code, response.reason, text,
                                                   upstream.get("route", "default"), upstream.get("client_credential"))
        if body != original.encode():
            response.status_code = status
            response.content = body
            response.headers["content-type"] = "application/json"
            response.headers.update(added)
            if not names_a_wait(response.headers) and (wait := upstream_delay({}, original, time.time())):
                # A wait only the replaced body named (Codex's resets_in_seconds): kept as
                # headers for the client, and for the credential's pool, which reads this
                # answer next (Credentials).
                response.headers["retry-after"] = str(math.ceil(wait))
                response.headers["retry-after-ms"] = str(round(wait * 1000))


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


def _upstream(flow: http.HTTPFlow) -> dict | None:
    """The Router's notes on where this flow was sent; None when it was not sent anywhere."""
    notes = flow.metadata.get("modelmux")
    return notes if notes and "provider" in notes and not notes.get("local") else None
