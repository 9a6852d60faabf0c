"""Pointing a flow's request at an upstream, as mitmproxy's URL setter does, for less."""

from __future__ import annotations

import functools

from mitmproxy import http
from mitmproxy.net.http import url as urls


def point(request: http.Request, url: str) -> None:
    """`request.url = url`, at a fraction of its cost: the setter parses the URL (with an
    IDNA codec) and rewrites the Host header twice, about 55 µs a request. The parts are
    parsed once per URL, and scheme, host and port set only when one differs, on the
    request's data, with the Host header and authority following them once (the
    property setters would update them for each: 15 µs)."""
    scheme, host, port, path, host_header, authority = _parts(url)
    data = request.data
    data.path = path
    if (data.scheme, data.host, data.port) == (scheme, host, port) and data.authority in (b"", authority) \
            and all(value == host_header for name, value in data.headers.fields if name.lower() == b"host"):
        return
    data.scheme, data.host, data.port = scheme, host, port
    # What the setters' _update_host_and_authority does, once: a Host header (the first;
    # any other goes) and the authority, if there is one, name the new host.
    fields, found = [], False
    for name, value in data.headers.fields:
        if name.lower() == b"host":
            if found:
                continue
            found, value = True, host_header
        fields.append((name, value))
    if found:
        data.headers.fields = tuple(fields)
    if data.authority:
        data.authority = authority


@functools.lru_cache(maxsize=256)
def _parts(url: str) -> tuple[bytes, str, int, bytes, bytes, bytes]:
    """As mitmproxy's url setter takes `url` apart (ValueError for a bad one), and its
    Request keeps the parts: scheme, host, port, path, and the host and port as its
    Host header and its authority would say them."""
    scheme, host, port, path = urls.parse(url)
    request = http.Request.make("GET", "http://placeholder/", headers={"Host": "placeholder"})
    request.data.authority = b"placeholder"
    request.scheme, request.host, request.port = scheme, host.decode("idna"), port
    return request.data.scheme, request.data.host, port, path, request.data.headers.fields[0][1], request.data.authority
