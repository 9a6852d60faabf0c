"""Anthropic messages modelmux makes or reshapes itself. Pure."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

from modelmux.translate.sse import format_event

WARMUP = "Warmup"  # the whole text of Claude Code's cache-warming background request
PING = format_event("ping", {"type": "ping"})


def message_id() -> str:
    return f"msg_{secrets.token_hex(12)}"


def error_event(error_type: str, message: str) -> bytes:
    """How a stream that has already started reports a failure."""
    return format_event("error", {"type": "error", "error": {"type": error_type, "message": message}})


def is_warmup(body: dict[str, Any]) -> bool:
    """Claude Code's warmup request, judged by the last message alone, so a real
    conversation that once contained the word is never mistaken for one."""
    messages = body.get("messages") or []
    if not messages or not isinstance(messages[-1], dict) or messages[-1].get("role") != "user":
        return False
    content = messages[-1].get("content")
    if isinstance(content, list):
        texts = [b.get("text", "") for b in content if isinstance(b, dict) and b.get("type") == "text"]
        if len(texts) != len(content):
            return False
        content = "".join(texts)
    return isinstance(content, str) and content.strip() == WARMUP


# -- the shape of what modelmux answers ------------------------------------------------
# Anthropic's OpenAPI specification (and the SDKs generated from it) marks these fields
# required, nullable ones included; a client that checks the shape fails on a message
# without them. What the upstream did not say is null, never a number made up; the
# cache counts, which Claude Code adds up, are 0 when the upstream read or wrote no
# cache it told of. Anthropic's own answers pass untouched.

# What message_delta's usage carries (MessageDeltaUsage); the rest of Message.usage is
# known from message_start on, or not at all.
DELTA_USAGE = ("input_tokens", "output_tokens", "cache_creation_input_tokens", "cache_read_input_tokens",
               "output_tokens_details", "server_tool_use")  # fmt: skip
MESSAGE_STOP = format_event("message_stop", {"type": "message_stop"})


def text_block(text: str) -> dict[str, Any]:
    """modelmux never asks for citations (they need documents that enable them)."""
    return {"type": "text", "text": text, "citations": None}


def tool_use_block(id: str, name: str, input: dict[str, Any]) -> dict[str, Any]:
    """An upstream's function call is the model's own: a direct caller, never one of
    Anthropic's server tools (code execution)."""
    return {"type": "tool_use", "id": id, "name": name, "input": input, "caller": {"type": "direct"}}


def thinking_block(thinking: str = "", signature: str = "") -> dict[str, Any]:
    return {"type": "thinking", "thinking": thinking, "signature": signature}


def usage(input_tokens: int, output_tokens: int, cache_read: int = 0, cache_write: int = 0,
          thinking: int | None = None, service_tier: str | None = None) -> dict[str, Any]:
    """Message.usage in full. Input is disjoint from the cache counts, as Anthropic's;
    `thinking`: the output tokens spent reasoning, where the upstream says. No upstream
    modelmux speaks to has Anthropic's TTL breakdown of cache writes, server tools or an
    inference region: null."""
    return {
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "cache_creation_input_tokens": cache_write,
        "cache_read_input_tokens": cache_read,
        "cache_creation": None,
        "server_tool_use": None,
        "service_tier": service_tier,
        "inference_geo": None,
        "output_tokens_details": None if thinking is None else {"thinking_tokens": thinking},
    }  # fmt: skip


def message_start(model: str, input_tokens: int) -> bytes:
    """A translated stream's first event, before the upstream said anything: its input
    count is modelmux's estimate, the rest comes with message_delta."""
    start = message(model, [], None, usage(input_tokens, 0))
    return format_event("message_start", {"type": "message_start", "message": start})


def refusal_details(explanation: str) -> dict[str, Any]:
    """A refusal's stop_details: why, in the upstream's words; none of Anthropic's policy
    categories (their `category`) is known to apply."""
    return {"type": "refusal", "category": None, "explanation": explanation}


def message_end(stop_reason: str, stop_sequence: str | None, usage: dict[str, Any],
                stop_details: dict[str, Any] | None = None) -> list[bytes]:
    """A stream's message_delta (with `usage`'s part of it) and message_stop."""
    delta = {"stop_reason": stop_reason, "stop_sequence": stop_sequence, "stop_details": stop_details, "container": None}
    counts = delta_usage(usage)
    return [format_event("message_delta", {"type": "message_delta", "delta": delta, "usage": counts}), MESSAGE_STOP]


def delta_usage(usage: dict[str, Any]) -> dict[str, Any]:
    """The counts of Message.usage that message_delta carries."""
    return {name: usage[name] for name in DELTA_USAGE}


def text_message(model: str, text: str) -> dict[str, Any]:
    return message(model, [text_block(text)], "end_turn", usage(0, 0))


def message(model: str, content: list[dict[str, Any]], stop_reason: str | None, usage: dict[str, Any],
            stop_sequence: str | None = None, stop_details: dict[str, Any] | None = None) -> dict[str, Any]:
    """A whole answer, as Anthropic's Messages API returns it. `stop_details` says more
    about a refusal, where the upstream said why (Gemini does); `container` is the code
    execution tool's, which modelmux never offers."""
    return {
        "id": message_id(),
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": stop_sequence,
        "stop_details": stop_details,
        "container": None,
        "usage": usage,
    }


def as_events(message: dict[str, Any]) -> bytes:
    """A whole message as the SSE stream Anthropic would have sent for it."""
    start = {**message, "content": [], "stop_reason": None, "stop_sequence": None}
    events = [format_event("message_start", {"type": "message_start", "message": start})]
    for index, block in enumerate(message["content"]):
        kind = block["type"]
        empty = {"text": {"text": ""}, "thinking": {"thinking": "", "signature": ""}, "tool_use": {"input": {}}}
        head = {**block, **empty.get(kind, {})}
        events.append(format_event("content_block_start", {"type": "content_block_start", "index": index, "content_block": head}))
        for delta in _deltas(block):
            events.append(format_event("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}))
        events.append(format_event("content_block_stop", {"type": "content_block_stop", "index": index}))
    events += message_end(message["stop_reason"], message.get("stop_sequence"), message["usage"],
                          message.get("stop_details"))
    return b"".join(events)


def _deltas(block: dict[str, Any]) -> list[dict[str, Any]]:
    kind = block["type"]
    if kind == "text" and block["text"]:
        return [{"type": "text_delta", "text": block["text"]}]
    if kind == "thinking":
        deltas = [{"type": "thinking_delta", "thinking": block["thinking"]}] if block["thinking"] else []
        return deltas + ([{"type": "signature_delta", "signature": block["signature"]}] if block.get("signature") else [])
    if kind == "tool_use" and block["input"]:
        return [{"type": "input_json_delta", "partial_json": json.dumps(block["input"], ensure_ascii=False)}]
    return []


def without_blocks(body: dict[str, Any], drop: Callable[[Any], bool]) -> dict[str, Any]:
    """A request without the content blocks `drop` picks; a message left with nothing is
    dropped. `body` itself is not changed, and comes back as it is when nothing goes."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not any(
        isinstance(m, dict) and isinstance(m.get("content"), list) and any(map(drop, m["content"])) for m in messages
    ):
        return body
    kept = []
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if not isinstance(content, list) or not any(map(drop, content)):
            kept.append(message)
            continue
        content = [block for block in content if not drop(block)]
        if content:
            kept.append({**message, "content": content})
    return {**body, "messages": kept}


def without_idle_effort(body: dict[str, Any]) -> dict[str, Any]:
    """A request without `output_config.effort` when its thinking is disabled, for
    Anthropic-compatible vendors. Claude Code (2.1.166 and later) sends that pair for
    subagents; Anthropic takes it, DeepSeek's Anthropic endpoint answers 400 "thinking
    options type cannot be disabled when reasoning_effort is set" (anthropics/claude-code
    #65863). `body` itself is not changed, and comes back as it is when nothing goes."""
    thinking, config = body.get("thinking"), body.get("output_config")
    if not (isinstance(thinking, dict) and thinking.get("type") == "disabled"
            and isinstance(config, dict) and "effort" in config):
        return body
    rest = {key: value for key, value in config.items() if key != "effort"}
    kept = {key: value for key, value in body.items() if key != "output_config"}
    return {**kept, "output_config": rest} if rest else kept
