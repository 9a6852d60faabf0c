"""urls.point leaves a request exactly as mitmproxy's URL setter would: scheme, host,
port, path, the Host header and the authority."""

from __future__ import annotations

import pytest
from mitmproxy import http

from modelmux.addons.urls import point

URLS = [
    "http://127.0.0.1:45678/v1/messages",
    "https://api.anthropic.com/v1/messages?beta=true",
    "https://api.z.ai:443/api/anthropic/v1/messages",
    "http://localhost:8080/v1beta/models/gemini-2.5-pro:generateContent",
    "https://xn--bcher-kva.example/v1/chat/completions",  # an IDN host (bücher)
]


def request(host_headers: list[bytes], authority: bytes = b"", version: bytes = b"HTTP/1.1") -> http.Request:
    fields = ((b"content-type", b"application/json"), *((b"Host", value) for value in host_headers),
              (b"x-api-key", b"sk-client"))  # fmt: skip
    return http.Request(b"127.0.0.1", 7878, b"POST", b"http", authority, b"/v1/messages", version,
                        http.Headers(fields), b"{}", None, 0.0, 0.0)


REQUESTS = {
    "client's host": lambda: request([b"127.0.0.1:7878"]),
    "no Host": lambda: request([]),
    "two Hosts": lambda: request([b"127.0.0.1:7878", b"other"]),
    "HTTP/2 authority": lambda: request([], b"127.0.0.1:7878", b"HTTP/2.0"),
}


@pytest.mark.parametrize("url", URLS)
@pytest.mark.parametrize("made", REQUESTS)
def test_point_leaves_the_request_as_the_url_setter_does(url, made):
    pointed, set_ = REQUESTS[made](), REQUESTS[made]()
    point(pointed, url)
    set_.url = url
    assert pointed.data == set_.data
    again = REQUESTS[made]()
    again.url = url
    point(again, url)  # already there: nothing changes
    assert again.data == set_.data
