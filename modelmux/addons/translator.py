"""Translator: requests routed to a provider of another protocol leave in that
protocol, and their answers come back as Anthropic messages, streamed as they arrive."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import urlencode, urlsplit

from mitmproxy import http

from modelmux import messages, openai_chat, toolnames
from modelmux.addons.answers import JSON, answer_error, answer_json, upstream_json
from modelmux.addons.streams import as_stream
from modelmux.errors import GatewayError
from modelmux.routing import Decision
from modelmux.tokens import estimate_input_tokens

logger = logging.getLogger(__name__)

COUNT_TOKENS = "/v1/messages/count_tokens"
ANTHROPIC_ONLY_HEADERS = ("anthropic-version", "anthropic-beta", "anthropic-dangerous-direct-browser-access")


class Translator:
    """Wired by the Router, which hands over each routed request whose provider does
    not speak Anthropic's protocol; the response hooks then translate the answer."""

    def translate_request(self, flow: http.HTTPFlow, decision: Decision, body: dict[str, Any], path: str) -> None:
        """`path` is the client's request path (/v1/messages or its count_tokens)."""
        provider = decision.provider
        if provider.protocol != "openai-chat":
            raise GatewayError(
                501,
                f"model '{decision.requested}' routes to provider '{provider.name}' ({decision.route.source}), "
                f"which speaks {provider.protocol}; this modelmux version translates only to openai-chat",
                "api_error",
            )
        if path == COUNT_TOKENS:
            # Chat Completions has no counting endpoint; Claude Code needs an answer.
            answer_json(flow, 200, {"input_tokens": estimate_input_tokens(body)})
            flow.comment = f"{flow.comment} · count_tokens answered locally (estimate)"
            return
        names = [t["name"] for t in body.get("tools") or () if isinstance(t, dict) and isinstance(t.get("name"), str)]
        context = openai_chat.Context(
            model=decision.requested if decision.route.response_model == "requested" else decision.upstream_model,
            tool_names=toolnames.restore_map(names),
        )
        chat = openai_chat.to_chat(body, provider.shape, decision.upstream_model)
        endpoint = (provider.shape.endpoint or openai_chat.ENDPOINT).replace("{model}", decision.upstream_model)
        query = f"?{urlencode(dict(provider.shape.query))}" if provider.shape.query else ""
        flow.request.path = urlsplit(provider.base_url).path + endpoint + query  # the Router set the host
        flow.request.content = upstream_json(chat)
        headers = flow.request.headers
        for name in ANTHROPIC_ONLY_HEADERS:
            headers.pop(name, None)
        headers["content-type"] = "application/json"
        headers["accept-encoding"] = "identity"  # the answer is rewritten, so no gzip
        translation = {"protocol": provider.protocol, "stream": bool(body.get("stream")), "context": context.to_dict()}
        flow.metadata["modelmux"]["translation"] = translation
        if translation["stream"]:
            # Only a stream's message_start shows the estimate (whole answers carry the
            # upstream's count). It is worked out once the request is on its way, while
            # the upstream thinks, not before the request leaves.
            asyncio.get_running_loop().call_soon(_estimate, translation["context"], body)

    def responseheaders(self, flow: http.HTTPFlow) -> None:
        translation = translation_of(flow)
        response = flow.response
        if translation is None or response is None or response.status_code >= 400:
            return
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            response.headers.pop("content-length", None)
            response.headers["transfer-encoding"] = "chunked"
            response.stream = as_stream(openai_chat.ChatStream(_context(translation)))

    def response(self, flow: http.HTTPFlow) -> None:
        translation = translation_of(flow)
        response = flow.response
        if translation is None or response is None or response.status_code >= 400 or response.stream:
            return
        try:
            body = json.loads(response.content or b"")
        except ValueError:
            answer_error(flow, GatewayError(502, f"provider '{flow.metadata['modelmux']['provider']}' answered "
                                                 f"HTTP {response.status_code} with a body that is not JSON"))
            return
        message = openai_chat.from_chat(body, _context(translation))
        if translation["stream"]:  # the client asked for a stream; this upstream ignored that
            response.content = messages.as_events(message)
            response.headers["content-type"] = "text/event-stream"
        else:
            response.content = json.dumps(message, ensure_ascii=False).encode()
            response.headers.update(JSON)


def _estimate(context: dict[str, Any], body: dict[str, Any]) -> None:
    context["input_tokens"] = estimate_input_tokens(body)


def translation_of(flow: http.HTTPFlow) -> dict[str, Any] | None:
    """The Translator's notes on a flow; None when it was not translated."""
    return (flow.metadata.get("modelmux") or {}).get("translation")


def _context(translation: dict[str, Any]) -> openai_chat.Context:
    return openai_chat.Context(**translation["context"])
