"""What OpenAI's two APIs, Chat Completions and Responses, share on their side of the
translation: what their Protocols say alike, the request fields they name alike,
their error types, their token counts. Kept once, so that neither translator imports
the other. Pure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from modelmux.config.types import Shape
from modelmux.translate import effort, messages, repeated
from modelmux.translate.anthropic_side import EFFORT_BUDGETS
from modelmux.translate.effort import Effort
from modelmux.translate.protocol import Protocol, Translation

EFFORTS = {"low": "low", "medium": "medium", "high": "high", "max": "high"}  # Anthropic's → OpenAI's
MAX_USER = 64
STATUS_OF_TYPE = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "insufficient_quota": 429,
    "overloaded_error": 529,
    "server_error": 500,
    "context_length_exceeded": 400,
}
# OpenAI's service tiers by Anthropic's name for them: "default" is OpenAI's standard
# pricing and speed; "flex" and "scale" have no Anthropic counterpart (null).
SERVICE_TIERS = {"default": "standard", "priority": "priority"}


def protocol(name: str, translation: Translation, **facts: Any) -> Protocol:
    """One of OpenAI's APIs as modelmux speaks it: a Bearer key, the model list at
    /models (OpenAI-compatible servers send all of theirs at once), named efforts only,
    none of the client's headers; and the `facts` it has of its own."""
    return Protocol(name=name, auth="Authorization: Bearer {key}", forwarded=frozenset(), model_list="/models",
                    effort_problem=partial(effort.openai_problem, name), translation=translation, **facts)


def endpoint(default: str) -> Callable[[Shape, str, bool], str]:
    """An API's path: routes.yaml's `endpoint` or `default`, with `{model}` filled in
    (Azure's `/openai/deployments/{model}/chat/completions`)."""
    return lambda shape, model, stream: (shape.endpoint or default).replace("{model}", model)


def named(effort: Effort | None) -> str | None:
    """A route's effort as OpenAI takes it: named, never a budget (which loading
    routes.yaml and exchange.check_effort refuse before a request is built)."""
    return effort if isinstance(effort, str) else None


def tool_fields(
    body: dict[str, Any], tools: Callable[[Sequence[Any]], list[dict[str, Any]]], choice: Callable[[Any], Any]
) -> dict[str, Any]:
    """`tools`, `tool_choice` and `parallel_tool_calls` (OpenAI's names in both APIs), with
    the API's own shapes of the tools (built once per distinct list: repeated.section)
    and of a choice. No function tools: none of them."""
    tools = repeated.section(body.get("tools") or (), tools)
    if not tools:
        return {}
    fields: dict[str, Any] = {"tools": tools}
    if chosen := choice(body.get("tool_choice")):
        fields["tool_choice"] = chosen
    if (body.get("tool_choice") or {}).get("disable_parallel_tool_use"):
        fields["parallel_tool_calls"] = False
    return fields


def is_function_tool(tool: dict[str, Any]) -> bool:
    """Client tools have no type (or "custom"); a typed tool such as web_search_20250305
    is one of Anthropic's server tools, which an OpenAI upstream cannot run."""
    return tool.get("type") in (None, "custom") and bool(tool.get("name"))


def sampling_fields(body: dict[str, Any]) -> dict[str, Any]:
    """temperature, top_p and the end user's id, which OpenAI's APIs name alike."""
    fields = {name: body[name] for name in ("temperature", "top_p") if body.get(name) is not None}
    if user := (body.get("metadata") or {}).get("user_id"):
        fields["user"] = str(user)[:MAX_USER]
    return fields


def reasoning_effort(body: dict[str, Any]) -> str | None:
    thinking = body.get("thinking") or {}
    if thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens") or 0
        return next((effort for limit, effort in EFFORT_BUDGETS if budget < limit), "high")
    if thinking.get("type") == "adaptive":
        return EFFORTS.get((body.get("output_config") or {}).get("effort", "medium"), "medium")
    return None


def disjoint_usage(prompt: Any, output: Any, prompt_details: Any, output_details: Any, tier: Any) -> dict[str, Any]:
    """Anthropic's usage from OpenAI's counts (a Chat or a Responses one), whose input
    includes what was read from the cache (`cached_tokens`) or, on OpenRouter, written
    to it (`cache_write_tokens`); Anthropic's input counts neither. OpenAI's output
    includes its reasoning, as Anthropic's includes thinking."""
    prompt_details = prompt_details if isinstance(prompt_details, dict) else {}
    cached, written = _count(prompt_details.get("cached_tokens")), _count(prompt_details.get("cache_write_tokens"))
    reasoning = output_details.get("reasoning_tokens") if isinstance(output_details, dict) else None
    return messages.usage(
        max(_count(prompt) - cached - written, 0), _count(output), cached, written,
        thinking=reasoning if isinstance(reasoning, int) else None,
        service_tier=SERVICE_TIERS.get(tier) if isinstance(tier, str) else None,
    )


def _count(value: Any) -> int:
    return value if isinstance(value, int) else 0
