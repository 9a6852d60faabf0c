"""Echoes: no secret an upstream echoes reaches the client.

Upstreams quote the key they rejected in an error's body, some in its headers too, and a
misbehaving one may echo what it got in any answer. So the answer the client gets has
every secret its upstream could echo replaced by its redacted form (label and last four
characters). The headers and the body of every answer; a stream is scrubbed as it goes
(secrets.StreamScrubber), after every addon that translates or rewrites it.

An upstream can only echo what it was given. A flow mitmproxy sends itself goes to one
upstream with its provider's secrets (Provider.secrets: its credentials, the secrets
written into its headers and query) and whichever of the client's tokens the Router
left on it (passthrough), read as the request leaves. Every other flow (the relay's,
which may try several providers; an answer modelmux made) is scrubbed of every secret
modelmux knows: every provider's, the gateway key, and the tokens this client sent
(credentials.client_credentials). A flow whose upstream got no secret (a provider with
`auth: none`) has nothing to scrub: its stream is not wrapped for it.

This runs whether or not flows are kept (mitmweb, -w, a recording): the client gets the
same bytes under mitmdump and mitmweb, and the Redactor, which scrubs the kept flow
later with the same secrets, finds nothing left to change in what was sent."""

from __future__ import annotations

from mitmproxy import http

from modelmux.addons import vault
from modelmux.addons.notes import find_notes, read_notes
from modelmux.addons.settings import Settings
from modelmux.addons.streams import Pipe
from modelmux.config.types import Config, Credential
from modelmux.secrets import SCRUB_MIN_LENGTH, StreamScrubber, configured, longest_first, scrub, scrub_bytes


class Echoes:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.configured: list[Credential] = []
        self._clients: dict[str, list[Credential]] = {}  # flow id → the client's tokens, until it is answered
        self._given: dict[str, list[Credential]] = {}  # flow id → what mitmproxy sends its upstream, longest first
        settings.subscribe(self._configure)

    def _configure(self, config: Config) -> None:
        self.configured = configured(config)

    def requestheaders(self, flow: http.HTTPFlow) -> None:
        """The client's tokens, read before any addon removes them (the flow holds them sealed)."""
        if clients := vault.client_credentials(flow.request):
            self._clients[flow.id] = clients

    def request(self, flow: http.HTTPFlow) -> None:
        """Runs after the Router: a flow mitmproxy sends now holds what its upstream gets."""
        notes = find_notes(flow)
        config = self.settings.config
        if flow.response or flow.error or not flow.live or not notes or "provider" not in notes \
                or notes.get("relay") or notes.get("local") or config is None:
            return
        provider = config.providers.get(notes["provider"])
        if provider is not None:
            self._given[flow.id] = longest_first([*provider.secrets, *vault.client_credentials(flow.request)])

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        response = flow.response
        assert response
        secrets = self._secrets(flow)
        if not secrets:
            return
        _scrub_headers(response, secrets)  # a stream's go to the client before its body
        if response.stream and (scrubber := StreamScrubber(secrets)).pattern is not None:
            # Runs after every addon that sets a stream (its hook comes later in the chain).
            # A redacted form is not as long as the secret: the length the upstream gave is wrong.
            if response.headers.pop("content-length", None) is not None:
                response.headers["transfer-encoding"] = "chunked"
            response.stream = pipe = Pipe.of(response.stream)
            pipe.scrubber = scrubber

    def response(self, flow: http.HTTPFlow) -> None:
        response = flow.response
        assert response
        secrets = self._secrets(flow)
        self._clients.pop(flow.id, None)
        self._given.pop(flow.id, None)
        if not secrets:
            return
        _scrub_headers(response, secrets)  # addons after responseheaders may have added some
        if not response.stream and response.raw_content:
            content = response.content or b""
            if (clean := scrub_bytes(content, secrets)) != content:
                response.content = clean

    def error(self, flow: http.HTTPFlow) -> None:
        self._clients.pop(flow.id, None)
        self._given.pop(flow.id, None)

    def _secrets(self, flow: http.HTTPFlow) -> list[Credential]:
        notes = read_notes(flow)
        if flow.id in self._given and not notes.get("local"):  # not answered here after all
            return self._given[flow.id]
        return longest_first([*self.configured, *self._clients.get(flow.id, ())])


def _scrub_headers(response: http.Response, secrets: list[Credential]) -> None:
    """As mitmproxy's Headers read and write values: UTF-8, other bytes kept as they are.
    Decoded only when a value holds a secret scrub() replaces: most answers hold none."""
    fields = response.headers.fields
    values = b"\n".join(value for _, value in fields)
    if not any(len(secret) >= SCRUB_MIN_LENGTH and secret.encode() in values
               for credential in secrets for secret in credential.secrets()):
        return
    clean = tuple((name, scrub(value.decode("utf-8", "surrogateescape"), secrets).encode("utf-8", "surrogateescape"))
                  for name, value in fields)
    if clean != fields:
        response.headers.fields = clean
