"""A provider's model list: where each protocol keeps it, what `modelmux check` sends
to ask it, and the model names in its answer. Pure: no network.

A model list answers with no model name known, so it shows that a provider is there
and takes the key even when routes.yaml only has globs for it (`gpt-*`)."""

from __future__ import annotations

import json
from collections.abc import Iterable

from modelmux.config import Credential, Provider, Route, route_for
from modelmux.exchange import upstream_url

ANTHROPIC_VERSION = "2023-06-01"  # Anthropic requires the header on every endpoint, this one too
# Anthropic pages its list (20 by default, at most 1000 a page: "List Models" in its API
# reference), Gemini too (pageSize 50 by default, at most 1000); OpenAI-compatible
# servers send all of theirs. One page of 1000 holds every list seen so far.
ENDPOINTS = {
    "anthropic": "/v1/models?limit=1000",
    "openai-chat": "/models",
    "openai-responses": "/models",
    "gemini": "/models?pageSize=1000",
}
GEMINI_PREFIX = "models/"  # Gemini names its models "models/gemini-2.5-flash"


def request(provider: Provider, credential: Credential | None) -> tuple[str, dict[str, str]]:
    """The list's URL and headers: the provider's own headers and, given a credential,
    the credential as the gateway sends it (`auth`); passthrough and keyless providers
    send none."""
    url, headers = bare(provider)
    headers.update({name.lower(): value for name, value in provider.headers.items()})
    if credential is not None and provider.auth is not None:
        headers[provider.auth.header.lower()] = provider.auth.value(credential)
    return url, headers


def bare(provider: Provider) -> tuple[str, dict[str, str]]:
    """The list request with nothing of the provider's (its headers may hold a key too):
    whether the list asks for a key at all."""
    headers = {"anthropic-version": ANTHROPIC_VERSION} if provider.protocol == "anthropic" else {}
    return upstream_url(provider.base_url, ENDPOINTS[provider.protocol], provider.shape.query), headers


def asks(credential: Credential | None) -> bool:
    """Whether a model list can tell anything about `credential`. A subscription login's
    requests go to its own backend (Codex, Code Assist), which has no model list, and
    Anthropic's /v1/models refuses OAuth tokens (deepchat PR #1000, rivet-dev/sandbox-agent
    PR #109): its list would only report a working login as refused."""
    return credential is None or credential.oauth is None


def names(text: str) -> list[str] | None:
    """The model names of a list answer, in its order: `data[].id` (Anthropic, OpenAI and
    the servers that copy it), `models[].name` (Gemini, Ollama's own API). None when
    `text` is not a model list (an HTML page: base_url points at a website)."""
    items = _items(text)
    if items is None:
        return None
    found = []
    for item in items:
        name = item.get("id") or item.get("name") if isinstance(item, dict) else None
        if isinstance(name, str) and name:
            found.append(name.removeprefix(GEMINI_PREFIX))
    return found


# What a list entry says of a model's limits, where it says anything: Gemini's
# inputTokenLimit/outputTokenLimit, Anthropic's max_input_tokens/max_tokens (its
# ModelInfo), OpenRouter's context_length and top_provider.max_completion_tokens (Together
# and Moonshot name the window alike), Groq's context_window/max_completion_tokens,
# Mistral's max_context_length, vLLM's max_model_len. DeepSeek's, OpenAI's and Ollama's
# name only ids.
CONTEXT_FIELDS = ("inputTokenLimit", "max_input_tokens", "context_length", "context_window", "max_context_length",
                  "max_model_len")  # fmt: skip
OUTPUT_FIELDS = ("outputTokenLimit", "max_completion_tokens")


def limits(text: str, model: str) -> tuple[int | None, int | None]:
    """The context window and output limit the list answer `text` gives `model`; None
    for what it does not say."""
    for item in _items(text) or ():
        if isinstance(item, dict) and str(item.get("id") or item.get("name") or "").removeprefix(GEMINI_PREFIX) == model:
            top = item.get("top_provider") if isinstance(item.get("top_provider"), dict) else {}
            outputs = [item.get(f) for f in OUTPUT_FIELDS] + [top.get("max_completion_tokens")]
            if "max_input_tokens" in item:  # Anthropic's max_tokens: the largest max_tokens it takes
                outputs.append(item.get("max_tokens"))
            return _first(item.get(f) for f in CONTEXT_FIELDS), _first(outputs)
    return None, None


def _items(text: str) -> list[object] | None:
    """A list answer's entries: `data` (Anthropic, OpenAI and the servers that copy it),
    `models` (Gemini, Ollama's own API) or the answer itself; None when it is no list."""
    try:
        body = json.loads(text)
    except ValueError:
        return None
    items = body if isinstance(body, list) else body.get("data", body.get("models")) if isinstance(body, dict) else None
    return items if isinstance(items, list) else None


def _first(values: Iterable[object]) -> int | None:
    return next((v for v in values if isinstance(v, int) and not isinstance(v, bool) and v > 0), None)


def routed_here(listed: Iterable[str], routes: Iterable[Route], provider: str) -> str | None:
    """The first listed model a client could ask for by that name and reach `provider`
    with, as the gateway routes it (first match wins: a listed `gpt-4o` that an earlier
    route sends elsewhere does not count)."""
    routes = tuple(routes)
    for name in listed:
        route = route_for(routes, name)
        if route is not None and route.provider == provider:
            return name
    return None
