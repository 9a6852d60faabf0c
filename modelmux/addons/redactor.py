"""Redactor: once a request has left, the flow keeps no secret. mitmweb shows flows and
`-w` saves them; both would otherwise hold the provider's key the Router put in, or the
client's own token on passthrough routes. The upstream got the real values already, so
only the record changes: each becomes its label (or "client") and last four characters.

Headers are redacted as soon as the answer begins, and a finished flow's path (a
provider's query may hold a secret). While flows are kept (mitmweb, -w, a recording),
its bodies and kept copies are scrubbed too, of every configured secret and the
client's token: upstreams echo keys in error messages."""

from __future__ import annotations

from typing import Any

from mitmproxy import http

from modelmux import exchange
from modelmux.addons.internals import flows_kept
from modelmux.addons.settings import Settings
from modelmux.config import Config, Credential
from modelmux.credentials import configured, redacted, redacted_token, scrub, scrub_bytes
from modelmux.headers import CREDENTIAL_HEADERS, token_of

KEPT_BODIES = ("client_request", "upstream_response")  # the Dashboard's copies in the flow's notes


class Redactor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.secrets: list[Credential] = []
        self._clients: dict[str, list[Credential]] = {}  # flow id → the client's tokens, until the flow ends
        settings.subscribe(self._configure)

    def _configure(self, config: Config) -> None:
        self.secrets = configured(config)

    def request(self, flow: http.HTTPFlow) -> None:
        """The relay sends a relayed flow from its plan, which keeps the client's token:
        the flow itself carries it redacted from the moment it is routed."""
        if (flow.metadata.get("modelmux") or {}).get("relay"):
            self._client_headers(flow)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        self._headers(flow)

    def response(self, flow: http.HTTPFlow) -> None:
        self._finish(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._finish(flow)

    def _finish(self, flow: http.HTTPFlow) -> None:
        self._headers(flow)
        request = flow.request
        # A provider's query may hold a secret, and mitmdump's per-flow line prints the
        # path after this hook. Not the URL: its setter takes ASCII, a redacted form has "…".
        if (path := scrub(request.path, self.secrets)) != request.path:
            request.path = path
        clients = self._clients.pop(flow.id, [])
        if flows_kept() and "modelmux" in flow.metadata:
            self._everything(flow, [*self.secrets, *clients])

    def _headers(self, flow: http.HTTPFlow) -> None:
        notes = flow.metadata.get("modelmux") or {}
        config = self.settings.config
        provider = config.providers.get(notes["provider"]) if config and "provider" in notes else None
        if provider is None or provider.auth is None or notes.get("local"):
            # passthrough, or answered here: the client's own token; with auth: none the
            # upstream got none, but a relayed flow still carries the client's
            self._client_headers(flow)
            return
        credential = next((c for c in provider.credentials if c.label == notes.get("credential")), None)
        auth, headers = exchange.auth_header(provider, credential), flow.request.headers
        if credential is not None and auth is not None and auth in headers:
            headers[auth] = headers[auth].replace(credential.secret, redacted(credential))

    def _client_headers(self, flow: http.HTTPFlow) -> None:
        """Redact what the client sent as its tokens (every one: a client may send several),
        and keep them to scrub from bodies."""
        headers = flow.request.headers
        for name in CREDENTIAL_HEADERS:
            if name in headers and "…" not in headers[name]:
                self._clients.setdefault(flow.id, []).append(Credential("client", token_of(headers[name])))
                headers[name] = redacted_token(headers[name])

    def _everything(self, flow: http.HTTPFlow, secrets: list[Credential]) -> None:
        request, response = flow.request, flow.response
        for message in (request, response):
            if message is None:
                continue
            for name, value in message.headers.items():
                if (clean := scrub(value, secrets)) != value:
                    message.headers[name] = clean
            if message.raw_content and (clean_body := scrub_bytes(message.content or b"", secrets)) != message.content:
                message.content = clean_body
        flow.comment = scrub(flow.comment, secrets)
        notes = flow.metadata["modelmux"]
        for key in KEPT_BODIES:
            if isinstance(notes.get(key), dict):
                notes[key] = _scrubbed(notes[key], secrets)
        notes["attempts"] = [_scrubbed(a, secrets) for a in notes.get("attempts") or []]
        if "error" in notes:
            notes["error"] = scrub(str(notes["error"]), secrets)


def _scrubbed(value: Any, secrets: list[Credential]) -> Any:
    """A kept copy (bytes, text, header lists, dicts of them) with every secret redacted."""
    if isinstance(value, bytes):
        return scrub_bytes(value, secrets)
    if isinstance(value, str):
        return scrub(value, secrets)
    if isinstance(value, list):
        return [_scrubbed(v, secrets) for v in value]
    if isinstance(value, dict):
        return {k: _scrubbed(v, secrets) for k, v in value.items()}
    return value
