"""One attempt's request to an upstream, and how its answer becomes the client's.

Both ways of sending build on this: mitmproxy sending a flow itself (one possible
upstream), and the failover relay (several). Pure: no mitmproxy, no network.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode, urlsplit

from modelmux import messages, openai_chat, toolnames
from modelmux.config import Credential, Provider
from modelmux.errors import GatewayError
from modelmux.headers import CLIENT_AUTH_HEADERS, OWN_HEADER_PREFIX, PLACEHOLDER_TOKEN, client_tokens
from modelmux.passthrough import ModelRestorer, restore_model_json
from modelmux.routing import Decision
from modelmux.tokens import estimate_input_tokens

COUNT_TOKENS = "/v1/messages/count_tokens"
ANTHROPIC_ONLY_HEADERS = ("anthropic-version", "anthropic-beta", "anthropic-dangerous-direct-browser-access")
TRANSLATED = ("openai-chat",)


@dataclass
class Outgoing:
    """What to send: the URL, header edits on top of the client's headers, the body,
    and what the answer needs (translation notes, or the model name to restore)."""

    url: str
    content: bytes
    remove: set[str] = field(default_factory=set)  # lowercase header names to drop
    set: dict[str, str] = field(default_factory=dict)  # lowercase header name → value
    translation: dict[str, Any] | None = None  # {"protocol", "stream", "context"}: JSON-able
    restore: str | None = None  # model name an Anthropic answer gets back

    def headers(self, client: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """The client's headers with the edits applied, for a sender that builds its own
        request; framing headers are left to that sender."""
        dropped = self.remove | self.set.keys() | FRAMING | {"content-encoding"}  # the body is sent decoded
        return [(n, v) for n, v in client if n.lower() not in dropped] + list(self.set.items())


FRAMING = frozenset({"host", "content-length", "transfer-encoding", "connection", "keep-alive", "expect"})


def check_protocol(decision: Decision) -> None:
    provider = decision.provider
    if provider.protocol != "anthropic" and provider.protocol not in TRANSLATED:
        raise GatewayError(
            501,
            f"model '{decision.requested}' routes to provider '{provider.name}' ({decision.route.source}), "
            f"which speaks {provider.protocol}; this modelmux version translates only to openai-chat",
            "api_error",
        )


def check_client_token(provider: Provider, client: Mapping[str, str]) -> None:
    """A passthrough provider gets the client's own token, which must not be the
    launcher's placeholder. `client`: headers by lowercase name."""
    if PLACEHOLDER_TOKEN in client_tokens(client).values():
        raise GatewayError(
            401,
            f"provider '{provider.name}' uses the client's own Anthropic credentials (auth: passthrough), "
            "but this request carries modelmux's placeholder token; log in to Claude Code (or set "
            "ANTHROPIC_API_KEY), or use a profile whose providers have credentials of their own",
        )


def prepare(
    decision: Decision, body: dict[str, Any], raw: bytes, path: str, query: str,
    client: Mapping[str, str], credential: Credential | None,
) -> Outgoing:
    """The request for `decision`'s provider. `raw` is the client's body as sent, `path`
    its path without the query, `client` its headers by lowercase name."""
    check_protocol(decision)
    provider = decision.provider
    remove = {name for name in client if name.startswith(OWN_HEADER_PREFIX)}
    if provider.auth is None:
        check_client_token(provider, client)
        set_headers: dict[str, str] = {}
    else:
        assert credential is not None
        remove.update(CLIENT_AUTH_HEADERS)
        set_headers = {provider.auth.header.lower(): provider.auth.value(credential)}
    set_headers.update({name.lower(): value for name, value in provider.headers.items()})
    if provider.protocol == "anthropic":
        return _anthropic(decision, body, raw, path, query, remove, set_headers)
    return _chat(decision, body, remove, set_headers)


def _anthropic(
    decision: Decision, body: dict[str, Any], raw: bytes, path: str, query: str,
    remove: set[str], set_headers: dict[str, str],
) -> Outgoing:
    content = raw
    if decision.rewrites_model:
        content = upstream_json({**body, "model": decision.upstream_model})
    restore = decision.requested if decision.restores_model else None
    if restore:
        set_headers["accept-encoding"] = "identity"  # the answer gets rewritten: plain bytes, not gzip
    url = decision.provider.base_url + path + (f"?{query}" if query else "")
    return Outgoing(url, content, remove, set_headers, restore=restore)


def _chat(decision: Decision, body: dict[str, Any], remove: set[str], set_headers: dict[str, str]) -> Outgoing:
    provider = decision.provider
    names = [t["name"] for t in body.get("tools") or () if isinstance(t, dict) and isinstance(t.get("name"), str)]
    context = openai_chat.Context(
        model=decision.requested if decision.route.response_model == "requested" else decision.upstream_model,
        tool_names=toolnames.restore_map(names),
    )
    chat = openai_chat.to_chat(body, provider.shape, decision.upstream_model)
    endpoint = (provider.shape.endpoint or openai_chat.ENDPOINT).replace("{model}", decision.upstream_model)
    query = f"?{urlencode(dict(provider.shape.query))}" if provider.shape.query else ""
    base = urlsplit(provider.base_url)
    url = f"{base.scheme}://{base.netloc}{base.path}{endpoint}{query}"
    remove.update(ANTHROPIC_ONLY_HEADERS)
    set_headers.update({"content-type": "application/json", "accept-encoding": "identity"})
    translation = {"protocol": provider.protocol, "stream": bool(body.get("stream")), "context": context.to_dict()}
    return Outgoing(url, upstream_json(chat), remove, set_headers, translation=translation)


def estimate(translation: dict[str, Any], body: dict[str, Any]) -> None:
    """A stream's message_start shows modelmux's input-token estimate (whole answers carry
    the upstream's count). Callers run it once the request is on its way."""
    translation["context"]["input_tokens"] = estimate_input_tokens(body)


def stream_transform(
    translation: dict[str, Any] | None, restore: str | None
) -> ModelRestorer | openai_chat.ChatStream | None:
    """What turns the upstream's event stream into the client's (see Outgoing's fields);
    None: bytes pass as they are."""
    if translation is not None:
        return openai_chat.ChatStream(context_of(translation))
    return ModelRestorer(restore) if restore else None


def whole_answer(translation: dict[str, Any] | None, restore: str | None, body: bytes) -> tuple[bytes, str]:
    """A successful whole (non-streamed) answer as the client's body and content type.
    Raises ValueError when a translated answer is not JSON."""
    if translation is None:
        restored = restore_model_json(body, restore) if restore else None
        return restored or body, "application/json"
    message = openai_chat.from_chat(json.loads(body), context_of(translation))
    if translation["stream"]:  # the client asked for a stream; this upstream ignored that
        return messages.as_events(message), "text/event-stream"
    return json.dumps(message, ensure_ascii=False).encode(), "application/json"


def context_of(translation: dict[str, Any]) -> openai_chat.Context:
    return openai_chat.Context(**translation["context"])


def upstream_json(body: Any) -> bytes:
    """A request body for an upstream, compact. ASCII-only output (non-ASCII as \\u escapes,
    which every JSON parser reads) takes json's C fast path: about 0.15 ms less per
    80 KB Claude Code request than ensure_ascii=False."""
    return json.dumps(body, separators=(",", ":")).encode()
