"""Pointing a flow's request at an upstream, as mitmproxy's URL setter does, for less."""

from __future__ import annotations

import functools

from mitmproxy import http
from mitmproxy.net.http import url as urls


def point(request: http.Request, url: str) -> None:
    """`request.url = url`, at a fraction of its cost: the setter parses the URL (with an
    IDNA codec) and rewrites the Host header twice, about 55 µs a request. The parts are
    parsed once per URL, and scheme, host and port set only when one differs (then as
    the setter sets them: the Host header and authority follow)."""
    scheme, host, port, path = _parts(url)
    hostport = urls.hostport(scheme, host, port)
    if (request.scheme, request.host, request.port) != (scheme, host, port) or \
            request.headers.get("host", hostport) != hostport or request.authority not in ("", hostport):
        request.scheme, request.host, request.port = scheme, host, port
    request.path = path


@functools.lru_cache(maxsize=256)
def _parts(url: str) -> tuple[str, str, int, bytes]:
    """As mitmproxy's url setter takes `url` apart (ValueError for a bad one)."""
    scheme, host, port, path = urls.parse(url)
    return scheme.decode("utf-8", "surrogateescape"), host.decode("idna"), port, path
