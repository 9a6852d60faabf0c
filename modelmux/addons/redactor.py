"""Redactor: once a request has left, the flow keeps no secret. mitmweb shows flows and
`-w` saves them; both would otherwise hold the provider's key the Router put in, or the
client's own token on passthrough routes. The upstream got the real values already, so
only the record changes: each becomes its label (or "client") and last four characters."""

from __future__ import annotations

from mitmproxy import http

from modelmux.addons.settings import Settings
from modelmux.config import Credential
from modelmux.credentials import redacted
from modelmux.headers import CLIENT_AUTH_HEADERS


class Redactor:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        self._redact(flow)

    def response(self, flow: http.HTTPFlow) -> None:
        self._redact(flow)

    def error(self, flow: http.HTTPFlow) -> None:
        self._redact(flow)

    def _redact(self, flow: http.HTTPFlow) -> None:
        notes = flow.metadata.get("modelmux") or {}
        if "provider" not in notes or notes.get("redacted"):
            return
        notes["redacted"] = True
        config = self.settings.config
        provider = config.providers.get(notes["provider"]) if config else None
        headers = flow.request.headers
        if provider is None or provider.auth is None:  # passthrough: the client's own token
            for name in CLIENT_AUTH_HEADERS:
                if name in headers:
                    scheme, _, token = headers[name].rpartition(" ")
                    headers[name] = f"{scheme} {_short('client', token)}".lstrip()
            return
        credential = next((c for c in provider.credentials if c.label == notes.get("credential")), None)
        if credential is not None and provider.auth.header in headers:
            headers[provider.auth.header] = provider.auth.template.replace("{key}", redacted(credential))


def _short(label: str, secret: str) -> str:
    return redacted(Credential(label, secret))
