"""InboundAuth: the optional gateway key (server.api_key) clients must present."""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from mitmproxy import http

from modelmux.addons import vault
from modelmux.addons.answers import answer_error, request_path
from modelmux.addons.settings import Settings
from modelmux.errors import GatewayError
from modelmux.headers import KEY_HEADER, client_tokens

# The launcher checks health without knowing the key; /healthz tells such a request
# only that a modelmux answers (LocalAPI.health).
OPEN_PATHS = {"/healthz"}


def presents(headers: Mapping[str, str], expected: str) -> bool:
    """Whether a request carries the gateway key `expected` where clients may send it:
    x-modelmux-key, x-api-key, or `Authorization: Bearer` (the scheme in any case)."""
    offered = [headers.get(KEY_HEADER, "").strip(), *client_tokens(headers).values()]
    return any(value and hmac.compare_digest(value.encode(), expected.encode()) for value in offered)


class InboundAuth:
    """With server.api_key set, a request must carry it in x-modelmux-key, x-api-key or
    `Authorization: Bearer`. Every header that carries it is removed, so the gateway
    key never reaches an upstream (passthrough keeps the client's other headers)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def request(self, flow: http.HTTPFlow) -> None:
        if flow.response or flow.error or not flow.live:
            return
        assert self.settings.config
        expected = self.settings.config.server.api_key
        if expected is None or request_path(flow) in OPEN_PATHS:
            return
        if presents(vault.client_tokens(flow.request), expected):  # the flow holds them sealed
            # A client may send it twice (x-modelmux-key beside a copy in x-api-key):
            # any header holding it would take it to a passthrough upstream.
            holding = {name for name, value in vault.real_fields(flow.request) if expected.encode() in value}
            for name in {name.decode("latin-1").lower() for name in holding}:
                del flow.request.headers[name]
            return
        answer_error(
            flow,
            GatewayError(
                401,
                "this modelmux gateway requires its API key (server.api_key): send it in "
                "x-modelmux-key, x-api-key or Authorization: Bearer",
            ),
        )

