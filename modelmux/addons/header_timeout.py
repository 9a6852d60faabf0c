"""HeaderTimeout: a client connection that sends no request is closed within seconds.

mitmproxy closes a connection only after `tcp_timeout` (600 s) without a byte either
way (proxy/server.py, TimeoutWatchdog). A client that opens a connection and sends
part of a request line, or part of a TLS handshake (reverse listeners take TLS on the
plain port and answer it with mitmproxy's certificate: mitmproxy.md §1.1), was held,
unanswered, for ten minutes; a trickle of bytes held it for ever. Lowering tcp_timeout
would also end a long non-streamed answer, which sends nothing while the upstream
thinks. So a new connection has `modelmux_header_timeout` seconds to get its first
request's headers in, a TLS handshake included (nginx's client_header_timeout, 60 s by
default, is the same idea); after that, mitmproxy's own timeouts apply.
"""

from __future__ import annotations

import asyncio
import logging

from mitmproxy import ctx
from mitmproxy import http
from mitmproxy.connection import Client

from modelmux.addons.internals import close_client

logger = logging.getLogger(__name__)


class HeaderTimeout:
    def __init__(self) -> None:
        self._timers: dict[str, asyncio.TimerHandle] = {}  # client connection id → timer

    def load(self, loader) -> None:
        loader.add_option(
            "modelmux_header_timeout",
            int,
            30,
            "Seconds a new client connection has to send its first request's headers (a TLS handshake "
            "included) before it is closed (0: only mitmproxy's tcp_timeout applies).",
        )

    def client_connected(self, client: Client) -> None:
        seconds = ctx.options.modelmux_header_timeout
        if seconds > 0:
            self._timers[client.id] = asyncio.get_running_loop().call_later(seconds, self._expired, client, seconds)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        self._cancel(flow.client_conn.id)

    def client_disconnected(self, client: Client) -> None:
        self._cancel(client.id)

    def done(self) -> None:
        for timer in self._timers.values():
            timer.cancel()

    def _cancel(self, client_id: str) -> None:
        if timer := self._timers.pop(client_id, None):
            timer.cancel()

    def _expired(self, client: Client, seconds: int) -> None:
        del self._timers[client.id]
        logger.info("%s:%s sent no request within %d s (modelmux_header_timeout): closed",
                    *client.peername[:2], seconds)
        close_client(client.id)
