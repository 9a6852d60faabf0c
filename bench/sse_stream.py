"""The bare-mitmdump baseline's only addon: stream event-stream answers from their headers on.

mitmdump buffers every body by default, so without this a streamed answer would reach
the client whole, at its end. modelmux streams SSE exactly like this (it sets
`response.stream` when the headers arrive), so the baseline differs from modelmux only
in modelmux's own work. `--set stream_large_bodies=1` would stream without an addon,
but mitmproxy then holds the headers until the first body bytes, and streams the
request too: a different mechanism, which this baseline avoids.
"""

from mitmproxy import http


class SseStream:
    def responseheaders(self, flow: http.HTTPFlow) -> None:
        response = flow.response
        if response is not None and response.headers.get("content-type", "").startswith("text/event-stream"):
            response.stream = True


addons = [SseStream()]
