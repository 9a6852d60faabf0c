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
    try:
        body = json.loads(text)
    except ValueError:
        return None
    items = body if isinstance(body, list) else body.get("data", body.get("models")) if isinstance(body, dict) else None
    if not isinstance(items, list):
        return None
    found = []
    for item in items:
        name = item.get("id") or item.get("name") if isinstance(item, dict) else None
        if isinstance(name, str) and name:
            found.append(name.removeprefix(GEMINI_PREFIX))
    return found


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
