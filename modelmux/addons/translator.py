"""Translator: answers of flows mitmproxy sent to a provider of another protocol come
back as Anthropic messages, streamed as they arrive. The Router puts the request in
that protocol (modelmux.exchange) and leaves its notes in the flow's metadata."""

from __future__ import annotations

import logging
from typing import Any

from mitmproxy import http

from modelmux import exchange
from modelmux.addons.answers import JSON, answer_error
from modelmux.addons.settings import Settings
from modelmux.addons.streams import as_stream
from modelmux.config.types import Credential
from modelmux.errors import GatewayError

logger = logging.getLogger(__name__)


class Translator:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings  # for the provider's keys, kept out of the errors that quote it

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        translation = translation_of(flow)
        response = flow.response
        if translation is None or response is None or response.status_code >= 400:
            return
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            response.headers.pop("content-length", None)
            response.headers["transfer-encoding"] = "chunked"
            transform = exchange.stream_transform(translation, None, self._secrets(flow))
            assert transform is not None
            response.stream = as_stream(transform)

    def response(self, flow: http.HTTPFlow) -> None:
        translation = translation_of(flow)
        response = flow.response
        if translation is None or response is None or response.status_code >= 400 or response.stream:
            return
        try:
            body, content_type = exchange.whole_answer(translation, None, response.content or b"")
        except ValueError:
            answer_error(flow, GatewayError(502, f"provider '{flow.metadata['modelmux']['provider']}' answered "
                                                 f"HTTP {response.status_code} with a body that is not JSON"))
            return
        except GatewayError as e:  # an answer that says the upstream failed after all, or a broken one
            answer_error(flow, exchange.failed_answer(flow.metadata["modelmux"]["provider"], e, self._secrets(flow)))
            return
        response.content = body
        response.headers.update({**JSON, "content-type": content_type})

    def _secrets(self, flow: http.HTTPFlow) -> tuple[Credential, ...]:
        config = self.settings.config
        provider = config.providers.get(flow.metadata["modelmux"]["provider"]) if config else None
        return provider.secrets if provider else ()


def translation_of(flow: http.HTTPFlow) -> dict[str, Any] | None:
    """The Translator's notes on a flow; None when it was not translated."""
    return (flow.metadata.get("modelmux") or {}).get("translation")
