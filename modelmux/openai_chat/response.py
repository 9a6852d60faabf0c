"""OpenAI Chat Completions answer → Anthropic message (whole JSON bodies). Pure."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from modelmux import toolnames
from modelmux.errors import GatewayError, error_type_for
from modelmux import messages
from modelmux.openai_chat import google

STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}
CALLS = ("tool_calls", "function_call")  # finish reasons that say the model called tools
# OpenRouter ends an answer that failed mid-way with finish_reason "error" (beside an
# `error` object); SGLang one it aborted with "abort".
FAILED = ("error", "abort")
# Which stop sequence matched, where an upstream says: vLLM's `stop_reason`, SGLang's
# `matched_stop` (a string; a number is a stop token, not a sequence).
MATCHED_STOP = ("stop_reason", "matched_stop")
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


def stop_of(finish: str | None, called_tools: bool, refused: bool, matched: str | None) -> tuple[str, str | None]:
    """stop_reason and stop_sequence: a refusal whatever the finish, as Anthropic says
    it; the stop sequence the upstream says it stopped at."""
    if refused:
        return "refusal", None
    if matched is not None and finish == "stop" and not called_tools:
        return "stop_sequence", matched
    return stop_reason(finish, called_tools), None


def matched_stop(choice: dict[str, Any]) -> str | None:
    found = next((choice[f] for f in MATCHED_STOP if isinstance(choice.get(f), str) and choice[f]), None)
    return found if choice.get("finish_reason") == "stop" else None


def contradiction(finish: str | None, called_tools: bool) -> str | None:
    """Why an answer that finished this way is no answer: it failed, or it claims tool
    calls that never came (a call the client would never see)."""
    if finish in FAILED:
        return f"it ended with finish_reason '{finish}'"
    if finish in CALLS and not called_tools:
        return f"it finished for tool calls (finish_reason '{finish}') but made none"
    return None


def error_of(error: dict[str, Any]) -> GatewayError:
    """An OpenAI-style error object (a body, an event in a stream) as the client's error."""
    code = error.get("code")
    status = code if isinstance(code, int) else STATUS_OF_TYPE.get(str(error.get("type") or code), 500)
    message = str(error.get("message") or error)
    return GatewayError(status, message, error_type_for(status), code=code if isinstance(code, str) else None)


def usage(chat_usage: dict[str, Any] | None, tier: Any = None) -> dict[str, Any]:
    """`tier`: the answer's service_tier, which only a whole answer gives before the end."""
    chat_usage = chat_usage or {}
    return disjoint_usage(chat_usage.get("prompt_tokens"), chat_usage.get("completion_tokens"),
                          chat_usage.get("prompt_tokens_details"), chat_usage.get("completion_tokens_details"), tier)


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


def reasoning_of(message: dict[str, Any]) -> str:
    return next((message[f] for f in REASONING_FIELDS if isinstance(message.get(f), str) and message[f]), "")


def tool_use(call: dict[str, Any], context: Context) -> dict[str, Any]:
    """A whole answer's tool call; GatewayError when its arguments are not a JSON object,
    so the tool_use input would not be what the model called with."""
    function = call.get("function") or {}
    name = function.get("name") or ""
    name = context.tool_names.get(name, name)
    arguments = function.get("arguments") or ""
    if not isinstance(arguments, str):  # a few servers send an object
        arguments = json.dumps(arguments, ensure_ascii=False)
    found = tool_input(arguments)
    if found is None:
        raise GatewayError(502, f"the upstream's answer is broken: {bad_arguments(name, arguments)}", "api_error")
    return messages.tool_use_block(toolnames.client_id(call.get("id")), name, found)


def tool_input(arguments: str) -> dict[str, Any] | None:
    """Tool arguments as a tool_use input (none: {}); None when they are not a JSON object."""
    if not arguments.strip():
        return {}
    try:
        parsed = json.loads(arguments)
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def bad_arguments(name: str, arguments: str) -> str:
    shown = arguments[:120] + ("…" if len(arguments) > 120 else "")
    return f"the arguments of its call to '{name}' are not a JSON object: {shown!r}"


def parse_arguments(arguments: str) -> dict[str, Any]:
    """Arguments modelmux serialised itself (Gemini's, which come as objects) as an object."""
    return tool_input(arguments) or {}


def from_chat(body: dict[str, Any], context: Context) -> dict[str, Any]:
    """An Anthropic message from a whole Chat Completions response. Raises GatewayError
    when the answer is an error (an HTTP 200 can carry one) or contradicts itself."""
    if isinstance(body.get("error"), dict):
        raise error_of(body["error"])
    if body.get("object") == "error":  # vLLM's older error body
        raise error_of(body)
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise GatewayError(502, "the upstream's answer is broken: it has no choices", "api_error")
    choice = choices[0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    if reasoning := reasoning_of(message):
        content.append(messages.thinking_block(reasoning))
    if isinstance(message.get("content"), str) and message["content"]:
        content.append(messages.text_block(message["content"]))
    if message.get("refusal"):
        content.append(messages.text_block(message["refusal"]))
    calls = [call for call in message.get("tool_calls") or () if isinstance(call, dict)]
    finish = choice.get("finish_reason")
    if problem := contradiction(finish, bool(calls)):
        raise GatewayError(502, f"the upstream's answer is broken: {problem}", "api_error")
    for call in calls:
        if signature := google.signature_of(call):
            content.append(google.carrier(signature))
        content.append(tool_use(call, context))
    reason, sequence = stop_of(finish, bool(calls), bool(message.get("refusal")), matched_stop(choice))
    counts = usage(body.get("usage"), body.get("service_tier"))
    return messages.message(context.model, content, reason, counts, sequence)
