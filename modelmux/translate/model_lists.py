"""A provider's model list: where each protocol keeps it, what `modelmux check` and the
gateway send to ask it, and what its answer says: the model names, and what it reports
of each model (its facts). Pure: no network.

A model list answers with no model name known, so it shows that a provider is there
and takes the key even when routes.yaml only has globs for it (`gpt-*`)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from modelmux.config.model_facts import listed
from modelmux.config.types import Config, Credential, ModelFacts, Provider, Route, route_for
from modelmux.attempt.exchange import upstream_url
from modelmux.translate import effort
from modelmux.translate.registry import PROTOCOLS

# Where each protocol keeps its list is its `model_list`. Anthropic pages its list (20 by
# default, at most 1000 a page: "List Models" in its API reference), Gemini too (pageSize
# 50 by default, at most 1000); OpenAI-compatible servers send all of theirs. One page
# of 1000 holds every list seen so far.
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
    protocol = PROTOCOLS[provider.protocol]
    return upstream_url(provider.base_url, protocol.model_list, provider.shape.query), dict(protocol.model_list_headers)


def asks(credential: Credential | None) -> bool:
    """Whether a model list can tell anything about `credential`. A subscription login's
    requests go to its own backend (Codex, Code Assist), which has no model list, and
    Anthropic's /v1/models refuses OAuth tokens (deepchat PR #1000, rivet-dev/sandbox-agent
    PR #109): its list would only report a working login as refused."""
    return credential is None or credential.oauth is None


def askable(config: Config) -> list[tuple[Provider, Credential | None]]:
    """The providers whose lists modelmux can ask on its own, each with the credential to
    ask with: a keyless provider with none, a keyed one with its first API key. A
    passthrough provider has no key of modelmux's, and a subscription login no list
    (asks)."""
    found: list[tuple[Provider, Credential | None]] = []
    for provider in config.providers.values():
        if provider.keyless:
            found.append((provider, None))
        elif not provider.passthrough and (keyed := [c for c in provider.credentials if asks(c)]):
            found.append((provider, keyed[0]))
    return found


def names(text: str) -> list[str] | None:
    """The model names of a list answer, in its order: `data[].id` (Anthropic, OpenAI and
    the servers that copy it), `models[].name` (Gemini, Ollama's own API). None when
    `text` is not a model list (an HTML page: base_url points at a website)."""
    found = _items(text)
    return None if found is None else [name for name, _ in found]


def facts(text: str) -> dict[str, ModelFacts] | None:
    """What a list answer reports of each model it names, by name; a model it reports
    nothing of is left out. None when `text` is not a model list. See _facts for the
    fields read and where each is documented."""
    found = _items(text)
    return None if found is None else {name: known for name, item in found if (known := _facts(item))}


def limits(text: str, model: str) -> tuple[int | None, int | None]:
    """The context window and output limit the list answer `text` gives `model`; None
    for what it does not say."""
    known = (facts(text) or {}).get(model)
    return (known.context_window, known.max_output) if known else (None, None)


def _items(text: str) -> list[tuple[str, dict[str, Any]]] | None:
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
            found.append((name.removeprefix(GEMINI_PREFIX), item))
    return found


# Where each list keeps a model's context window, first found wins (a list uses one):
# Anthropic's `max_input_tokens` ("List Models" in its API reference), Gemini's
# `inputTokenLimit` (the Model resource), OpenRouter's and Together's `context_length`
# (openrouter.ai/docs/models, docs.together.ai/reference/models), Groq's
# `context_window` (its API reference's model list), Mistral's `max_context_length`
# (its BaseModelCard), vLLM's `max_model_len` (what `--max-model-len` set). Ollama,
# LM Studio, DeepSeek and OpenAI list names only; llama.cpp's `meta.n_ctx_train` is
# the context the model was trained with, not the one the server runs, so is not read.
WINDOW_FIELDS = ("max_input_tokens", "inputTokenLimit", "context_length", "context_window", "max_context_length",
                 "max_model_len")
# And its output limit: Gemini's `outputTokenLimit`, OpenRouter's
# `top_provider.max_completion_tokens`, Groq's `max_completion_tokens`; Anthropic's
# `max_tokens` ("maximum value for the max_tokens parameter") only beside its
# `max_input_tokens`: in another list a `max_tokens` may mean anything.
OUTPUT_FIELDS = ("outputTokenLimit", "max_completion_tokens")


def _facts(item: dict[str, Any]) -> ModelFacts:
    top = _mapping(item, "top_provider")
    capabilities = _mapping(item, "capabilities")
    modalities = _mapping(item, "architecture").get("input_modalities")
    modalities = modalities if isinstance(modalities, list) else None
    parameters = item.get("supported_parameters")
    # Gemini's `thinking` flag; Anthropic's capabilities.thinking; OpenRouter's
    # supported_parameters, which name `reasoning` for a model that takes it.
    if "thinking" in item:
        thinking = _flag(item["thinking"])
    elif "thinking" in capabilities:
        thinking = _supported(capabilities["thinking"])
    else:
        thinking = "reasoning" in parameters if isinstance(parameters, list) else None
    # Anthropic's image_input and pdf_input, Mistral's `vision`, OpenRouter's input
    # modalities (`image`, and `file` for documents).
    if "image_input" in capabilities:
        images = _supported(capabilities["image_input"])
    elif "vision" in capabilities:
        images = _flag(capabilities["vision"])
    else:
        images = "image" in modalities if modalities is not None else None
    if "pdf_input" in capabilities:
        documents = _supported(capabilities["pdf_input"])
    else:
        documents = "file" in modalities if modalities is not None else None
    return listed(
        context_window=_first_count(item, WINDOW_FIELDS),
        max_output=(_first_count(top, ("max_completion_tokens",)) or _first_count(item, OUTPUT_FIELDS)
                    or ("max_input_tokens" in item and _first_count(item, ("max_tokens",))) or None),
        thinking=thinking,
        efforts=_efforts(capabilities.get("effort")),
        images=images,
        documents=documents,
    )


def _mapping(item: dict[str, Any], name: str) -> dict[str, Any]:
    value = item.get(name)
    return value if isinstance(value, dict) else {}


def _first_count(item: dict[str, Any], names: tuple[str, ...]) -> int | None:
    for name in names:
        value = item.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value
    return None


def _flag(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _supported(capability: Any) -> bool | None:
    """Anthropic's `{"supported": bool}` capability leaves."""
    return _flag(capability.get("supported")) if isinstance(capability, dict) else None


def _efforts(capability: Any) -> tuple[str, ...] | None:
    """Anthropic's capabilities.effort: `supported`, then one `{"supported"}` per level."""
    if not isinstance(capability, dict) or not isinstance(capability.get("supported"), bool):
        return None
    if not capability["supported"]:
        return ()
    return tuple(level for level in effort.LEVELS if _supported(capability.get(level)))


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
