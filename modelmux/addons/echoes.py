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
from modelmux.secrets import Scrubbing, StreamScrubber, configured, scrub


class Echoes:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.configured: list[Credential] = []
        self._clients: dict[str, list[Credential]] = {}  # flow id → the client's tokens, until it is answered
        self._given: dict[str, list[Credential]] = {}  # flow id → what mitmproxy sends its upstream
        self._scrubbing: dict[str, tuple[bool, Scrubbing]] = {}  # flow id → (answered here, its secrets), from its head on
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
            self._given[flow.id] = [*provider.secrets, *vault.client_credentials(flow.request)]

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
        self._scrubbing.pop(flow.id, None)
        self._clients.pop(flow.id, None)
        self._given.pop(flow.id, None)
        if not secrets:
            return
        _scrub_headers(response, secrets)  # addons after responseheaders may have added some
        if not response.stream and response.raw_content:
            content = response.content or b""
            if secrets.found_in(content):
                response.content = secrets.bytes(content)

    def error(self, flow: http.HTTPFlow) -> None:
        self._clients.pop(flow.id, None)
        self._given.pop(flow.id, None)
        self._scrubbing.pop(flow.id, None)

    def _secrets(self, flow: http.HTTPFlow) -> Scrubbing:
        """Worked out once for the head and the body, unless the flow was answered here in between."""
        here = bool(read_notes(flow).get("local"))
        known = self._scrubbing.get(flow.id)
        if known is not None and known[0] == here:
            return known[1]
        if flow.id in self._given and not here:  # not answered here after all
            secrets = Scrubbing(self._given[flow.id])
        else:
            secrets = Scrubbing([*self.configured, *self._clients.get(flow.id, ())])
        self._scrubbing[flow.id] = (here, secrets)
        return secrets


def _scrub_headers(response: http.Response, secrets: Scrubbing) -> None:
    """As mitmproxy's Headers read and write values: UTF-8, other bytes kept as they are.
    Decoded only when a value holds a secret scrub() replaces: most answers hold none."""
    fields = response.headers.fields
    if not secrets.found_in(b"\n".join(value for _, value in fields)):
        return
    credentials = secrets.credentials()
    clean = tuple((name, scrub(value.decode("utf-8", "surrogateescape"), credentials).encode("utf-8", "surrogateescape"))
                  for name, value in fields)
    if clean != fields:
        response.headers.fields = clean
