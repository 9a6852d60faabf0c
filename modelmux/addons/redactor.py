"""Redactor: the finished flow keeps no secret an upstream echoed. The flow's headers
never hold a real credential (the Vault seals them); but upstreams echo keys in error
messages, so while flows are kept (mitmweb, -w, a recording) the finished flow's
bodies and kept copies are scrubbed of every configured secret and the client's token:
each becomes its label (or "client") and last four characters. Its path is scrubbed
whether flows are kept or not: a provider's query may hold a secret."""

from __future__ import annotations

from typing import Any

from mitmproxy import http

from modelmux.addons import vault
from modelmux.addons.internals import flows_kept
from modelmux.addons.notes import find_notes, notes_of
from modelmux.addons.settings import Settings
from modelmux.config.types import Config, Credential
from modelmux.secrets import configured, scrub, scrub_bytes

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
        """The client's tokens that stay in the request (passthrough, or to the relay's
        plan): an upstream may echo them into a flow that is kept."""
        if flows_kept() and (clients := vault.client_credentials(flow.request)):
            self._clients[flow.id] = clients

    def response(self, flow: http.HTTPFlow) -> None:
        self._finish(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._finish(flow)

    def _finish(self, flow: http.HTTPFlow) -> None:
        request = flow.request
        # mitmdump's per-flow line prints the path after this hook. Not the URL: its
        # setter takes ASCII, and a redacted form has "…".
        if (path := scrub(request.path, self.secrets)) != request.path:
            request.path = path
        clients = self._clients.pop(flow.id, [])
        if flows_kept() and find_notes(flow) is not None:
            self._everything(flow, [*self.secrets, *clients])

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
        notes = notes_of(flow)
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
