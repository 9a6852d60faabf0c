"""InboundAuth: the optional gateway key (server.api_key) clients must present."""

from __future__ import annotations

import hmac

from mitmproxy import http

from modelmux.addons import vault
from modelmux.addons.answers import answer_error, request_path
from modelmux.addons.settings import Settings
from modelmux.errors import GatewayError
from modelmux.headers import KEY_HEADER, client_tokens

OPEN_PATHS = {"/healthz"}  # the launcher checks health without knowing the key


class InboundAuth:
    """With server.api_key set, a request must carry it in x-modelmux-key, x-api-key or
    `Authorization: Bearer`. The header that carried it is removed, so the gateway key
    never reaches an upstream (passthrough keeps the client's other header)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        assert self.settings.config
        expected = self.settings.config.server.api_key
        if expected is None or request_path(flow) in OPEN_PATHS:
            return
        real = vault.real_headers(flow.request)  # the flow holds them sealed
        offered = {KEY_HEADER: real.get(KEY_HEADER, ""), **client_tokens(real)}
        for header, value in offered.items():
            if value and hmac.compare_digest(value.encode(), expected.encode()):
                del flow.request.headers[header]
                return
        answer_error(
            flow,
            GatewayError(
                401,
                "this modelmux gateway requires its API key (server.api_key): send it in "
                "x-modelmux-key, x-api-key or Authorization: Bearer",
            ),
        )
