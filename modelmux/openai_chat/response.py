"""OpenAI Chat Completions answer → Anthropic message (whole JSON bodies). Pure."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from modelmux import toolnames
from modelmux.messages import message_id
from modelmux.openai_chat import google

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
# Reasoning text comes as `reasoning_content` (DeepSeek, Kimi, GLM, vLLM) or
# `reasoning` (OpenRouter, newer vLLM).
REASONING_FIELDS = ("reasoning_content", "reasoning")


@dataclass
class Context:
    """What the answer's translation needs to know about the request (JSON-able, so it
    can sit in flow.metadata for the dashboard)."""

    model: str  # the model name the client sees
    tool_names: dict[str, str] = field(default_factory=dict)  # shortened → original
    input_tokens: int = 0  # modelmux's estimate, for message_start before the real count

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "tool_names": self.tool_names, "input_tokens": self.input_tokens}


def stop_reason(finish: str | None, called_tools: bool) -> str:
    # Several upstreams answer tool calls with finish_reason "stop".
    if called_tools and finish in (None, "stop"):
        return "tool_use"
    return STOP_REASONS.get(finish or "stop", "end_turn")


def usage(chat_usage: dict[str, Any] | None) -> dict[str, int]:
    chat_usage = chat_usage or {}
    cached = (chat_usage.get("prompt_tokens_details") or {}).get("cached_tokens") or 0
    return disjoint_usage(chat_usage.get("prompt_tokens") or 0, cached, chat_usage.get("completion_tokens") or 0)


def disjoint_usage(prompt: int, cached: int, output: int) -> dict[str, int]:
    """Anthropic's disjoint counts from OpenAI's: input excludes what was read from the cache."""
    return {
        "input_tokens": max(prompt - cached, 0),
        "output_tokens": output,
        "cache_read_input_tokens": cached,
        "cache_creation_input_tokens": 0,
    }


def reasoning_of(message: dict[str, Any]) -> str:
    return next((message[f] for f in REASONING_FIELDS if isinstance(message.get(f), str) and message[f]), "")


def tool_use(call: dict[str, Any], context: Context, arguments: str) -> dict[str, Any]:
    name = (call.get("function") or {}).get("name") or ""
    return {
        "type": "tool_use",
        "id": toolnames.client_id(call.get("id")),
        "name": context.tool_names.get(name, name),
        "input": parse_arguments(arguments),
    }


def parse_arguments(arguments: str) -> dict[str, Any]:
    """Tool arguments as an object; what is not a JSON object is kept under `arguments`
    rather than dropped, so the model's mistake stays visible."""
    if not arguments.strip():
        return {}
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return {"arguments": arguments}
    return parsed if isinstance(parsed, dict) else {"arguments": parsed}


def from_chat(body: dict[str, Any], context: Context) -> dict[str, Any]:
    """An Anthropic message from a whole Chat Completions response."""
    choice = (body.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    if reasoning := reasoning_of(message):
        content.append({"type": "thinking", "thinking": reasoning, "signature": ""})
    if isinstance(message.get("content"), str) and message["content"]:
        content.append({"type": "text", "text": message["content"]})
    if message.get("refusal"):
        content.append({"type": "text", "text": message["refusal"]})
    calls = message.get("tool_calls") or []
    for call in calls:
        if signature := google.signature_of(call):
            content.append(google.carrier(signature))
        content.append(tool_use(call, context, (call.get("function") or {}).get("arguments") or ""))
    reason = "refusal" if message.get("refusal") else stop_reason(choice.get("finish_reason"), bool(calls))
    return {
        "id": message_id(),
        "type": "message",
        "role": "assistant",
        "model": context.model,
        "content": content,
        "stop_reason": reason,
        "stop_sequence": None,
        "usage": usage(body.get("usage")),
    }
