"""Echoes: no secret an upstream echoes reaches the client.

Upstreams quote the key they rejected in an error's body, some in its headers too, and a
misbehaving one may echo what it got in any answer. So the answer the client gets has
every secret modelmux knows replaced by its redacted form (label and last four
characters): every provider's (Provider.secrets), the gateway key, and the tokens this
client sent (credentials.client_credentials). The headers and the body of every
answer; a stream is scrubbed as it goes (credentials.StreamScrubber), after every
addon that translates or rewrites it.

This runs whether or not flows are kept (mitmweb, -w, a recording): the client gets the
same bytes under mitmdump and mitmweb, and the Redactor, which scrubs the kept flow
later with the same secrets, finds nothing left to change in what was sent."""

from __future__ import annotations

from mitmproxy import http

from modelmux.addons import vault
from modelmux.addons.settings import Settings
from modelmux.addons.streams import Piped
from modelmux.config import Config, Credential
from modelmux.secrets import StreamScrubber, client_credentials, configured, scrub, scrub_bytes


class Echoes:
    def __init__(self, settings: Settings) -> None:
        self.configured: list[Credential] = []
        self._clients: dict[str, list[Credential]] = {}  # flow id → the client's tokens, until it is answered
        settings.subscribe(self._configure)

    def _configure(self, config: Config) -> None:
        self.configured = configured(config)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        """The client's tokens, read before any addon removes them (the flow holds them sealed)."""
        if clients := client_credentials(vault.client_tokens(flow.request)):
            self._clients[flow.id] = clients

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        response = flow.response
        assert response
        secrets = self._secrets(flow)
        _scrub_headers(response, secrets)  # a stream's go to the client before its body
        if response.stream:
            # Runs after every addon that sets a stream (its hook comes later in the chain).
            # A redacted form is not as long as the secret: the length the upstream gave is wrong.
            if response.headers.pop("content-length", None) is not None:
                response.headers["transfer-encoding"] = "chunked"
            response.stream = Piped(response.stream, StreamScrubber(secrets))

    def response(self, flow: http.HTTPFlow) -> None:
        response = flow.response
        assert response
        secrets = self._secrets(flow)
        self._clients.pop(flow.id, None)
        _scrub_headers(response, secrets)  # addons after responseheaders may have added some
        if not response.stream and response.raw_content:
            content = response.content or b""
            if (clean := scrub_bytes(content, secrets)) != content:
                response.content = clean

    def error(self, flow: http.HTTPFlow) -> None:
        self._clients.pop(flow.id, None)

    def _secrets(self, flow: http.HTTPFlow) -> list[Credential]:
        # Longest first: a secret that contains another must not be half-replaced.
        return sorted([*self.configured, *self._clients.get(flow.id, ())], key=lambda c: -len(c.secret))


def _scrub_headers(response: http.Response, secrets: list[Credential]) -> None:
    """As mitmproxy's Headers read and write values: UTF-8, other bytes kept as they are."""
    fields = response.headers.fields
    clean = tuple((name, scrub(value.decode("utf-8", "surrogateescape"), secrets).encode("utf-8", "surrogateescape"))
                  for name, value in fields)
    if clean != fields:
        response.headers.fields = clean
