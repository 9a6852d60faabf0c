"""Anthropic Messages request → OpenAI Chat Completions request. Pure.

The upstream body is built from the fields OpenAI knows, never copied from the
client's, so Anthropic-only fields (`thinking`, `output_config`,
`context_management`, `cache_control`, `top_k`, server tools) cannot leak.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from modelmux.translate import repeated, tool_names
from modelmux.translate.anthropic_side import (
    BILLING_LINE,
    CONTINUED,
    DOCUMENT_OMITTED,
    IMAGE_BELOW,
    IMAGE_OMITTED,
    NO_RESULT,
    compact_json,
    content_blocks,
    max_tokens,
    source_url,
    text_of,
)
from modelmux.config.types import Shape
from modelmux.translate.effort import reasons
from modelmux.translate.openai_chat import google
from modelmux.translate.openai_side import is_function_tool, reasoning_effort, sampling_fields, tool_fields

MAX_STOP_SEQUENCES = 4  # OpenAI's limit

Message = dict[str, Any]


def to_chat(body: dict[str, Any], shape: Shape, model: str, effort: str | None = None) -> dict[str, Any]:
    """The Chat Completions body for an Anthropic `body`, sent as `model`; `effort` (a
    route's `NAME(EFFORT)`) overrides the client's thinking."""
    chat: dict[str, Any] = {"model": model, "messages": messages(body, shape, google.takes_signatures(model))}
    chat.update(tool_fields(body, _tools, _tool_choice))
    if (limit := max_tokens(body, shape)) is not None:
        chat[shape.max_tokens_field] = limit
    if stops := body.get("stop_sequences"):
        chat["stop"] = stops[:MAX_STOP_SEQUENCES]
    chat.update(sampling_fields(body))
    if effort is not None:
        chat["reasoning_effort"] = effort
    elif (asked := reasoning_effort(body)) and (
        shape.reasoning_effort if shape.reasoning_effort is not None else reasons(model)
    ):
        chat["reasoning_effort"] = asked
    if body.get("stream"):
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    for name in shape.drop_fields:
        chat.pop(name, None)
    return chat


# -- messages ---------------------------------------------------------------------


def messages(body: dict[str, Any], shape: Shape, signatures: bool = False) -> list[Message]:
    """`signatures`: the calls get back the Gemini signatures their blocks carry (google.py).
    Each turn's messages are built once (repeated.translated): a conversation's earlier
    turns come again with every request."""
    out: list[Message] = []
    system_blocks = tuple(b for b in content_blocks(body.get("system")) if not b.get("text", "").startswith(BILLING_LINE))
    if system_blocks:
        out += repeated.translated(_system, system_blocks)
    for message in body.get("messages") or ():
        role = message.get("role")
        if role == "system":
            out += repeated.translated(_system, tuple(content_blocks(message.get("content"))))
        elif role == "assistant":
            out += repeated.translated(_assistant_turn, message, shape, signatures)
        else:
            out += repeated.translated(_user_turn, message, shape, frozenset(_open_calls(out)))
    return _ordered(out)


def _system(blocks: tuple[dict[str, Any], ...]) -> list[Message]:
    text = text_of(list(blocks))
    return [{"role": "system", "content": text}] if text else []


def _assistant_turn(message: dict[str, Any], shape: Shape, signatures: bool) -> list[Message]:
    assistant = _assistant(content_blocks(message.get("content")), shape, signatures)
    return [assistant] if assistant else []


def _user_turn(message: dict[str, Any], shape: Shape, open_calls: frozenset[str]) -> list[Message]:
    return _user(content_blocks(message.get("content")), shape, open_calls)


def _assistant(blocks: list[dict[str, Any]], shape: Shape, signatures: bool) -> Message | None:
    text = text_of(blocks)
    calls = [
        {
            "id": tool_names.upstream_id(b.get("id", "")),
            "type": "function",
            "function": {
                "name": tool_names.shorten(b.get("name", "")),
                "arguments": compact_json(b.get("input") or {}),
            },
        }
        for b in blocks
        if b.get("type") == "tool_use"
    ]
    if signatures:
        calls = google.restore(blocks, calls)
    reasoning = "".join(b.get("thinking", "") for b in blocks if b.get("type") == "thinking")
    if not (text or calls or (reasoning and shape.reasoning_history)):
        return None
    message: Message = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    if reasoning and shape.reasoning_history:
        message["reasoning_content"] = reasoning
    return message


def _user(blocks: list[dict[str, Any]], shape: Shape, open_calls: frozenset[str]) -> list[Message]:
    """Tool messages first (they must follow the assistant's calls), then images the
    tool messages could not carry, then the user's own content."""
    tools: list[Message] = []
    hoisted: list[dict[str, Any]] = []
    parts: list[dict[str, Any]] = []
    for block in blocks:
        if block.get("type") != "tool_result":
            parts += _parts(block, shape)
            continue
        call = tool_names.upstream_id(block.get("tool_use_id", ""))
        text, images = _tool_result(block, shape)
        if call in open_calls:
            tools.append({"role": "tool", "tool_call_id": call, "content": text})
            hoisted += images
        else:  # its call is not in the history (e.g. compacted away): keep it as text
            parts += [{"type": "text", "text": f"[result of tool call {call}]\n{text}"}, *images]
    out = tools
    if hoisted:
        out.append({"role": "user", "content": _content(hoisted)})
    if content := _content(parts):
        out.append({"role": "user", "content": content})
    return out


def _tool_result(block: dict[str, Any], shape: Shape) -> tuple[str, list[dict[str, Any]]]:
    inner = content_blocks(block.get("content"))
    images = [p for b in inner if b.get("type") == "image" for p in _parts(b, shape)]
    text = text_of(inner)
    if any(p["type"] == "image_url" for p in images):
        text = f"{text}\n{IMAGE_BELOW}" if text else IMAGE_BELOW
        images = [p for p in images if p["type"] == "image_url"]
    else:
        text = "\n".join(filter(None, [text, *(p["text"] for p in images)]))
        images = []
    if block.get("is_error"):
        text = f"Error: {text}"
    return text, images


def _parts(block: dict[str, Any], shape: Shape) -> list[dict[str, Any]]:
    kind = block.get("type")
    source = block.get("source") or {}
    if kind == "text":
        return [{"type": "text", "text": block["text"]}] if block.get("text") else []
    if kind == "image":
        if not shape.images:
            return [{"type": "text", "text": IMAGE_OMITTED}]
        return [{"type": "image_url", "image_url": {"url": source_url(source, "image/jpeg")}}]
    if kind == "document":
        if source.get("type") == "text":
            return [{"type": "text", "text": source.get("data", "")}]
        if not shape.documents:
            return [{"type": "text", "text": DOCUMENT_OMITTED}]
        if source.get("type") == "url":
            return [{"type": "file", "file": {"file_url": source.get("url", "")}}]
        name = block.get("title") or "document.pdf"
        return [{"type": "file", "file": {"filename": name, "file_data": source_url(source, "application/pdf")}}]
    return []  # thinking in a user turn, server tool blocks: nothing an OpenAI model reads


def _content(parts: list[dict[str, Any]]) -> str | list[dict[str, Any]] | None:
    """A plain string when there is only text (many OpenAI-compatible servers accept
    nothing else), a list of parts otherwise."""
    if not parts:
        return None
    if all(p["type"] == "text" for p in parts):
        return "\n\n".join(p["text"] for p in parts)
    return parts


def _open_calls(out: list[Message]) -> set[str]:
    """Ids of the tool calls the latest assistant message made, if it is the last one."""
    for message in reversed(out):
        if message["role"] == "assistant":
            return {call["id"] for call in message.get("tool_calls", ())}
        if message["role"] != "tool":
            return set()
    return set()


def _ordered(out: list[Message]) -> list[Message]:
    """OpenAI's ordering rules: every call answered right after its assistant message,
    no consecutive messages of one role, and a user turn before the first assistant.
    The messages are shared (repeated.translated): two are merged into a new one."""
    ordered: list[Message] = []
    for i, message in enumerate(out):
        previous = ordered[-1] if ordered else None
        if previous and previous["role"] == message["role"] != "tool" and "tool_calls" not in previous:
            ordered[-1] = _merged(previous, message)
        else:
            ordered.append(message)
        following = out[i + 1] if i + 1 < len(out) else None
        if message["role"] in ("assistant", "tool") and (following is None or following["role"] != "tool"):
            _answer_open_calls(ordered)
    first = next((i for i, m in enumerate(ordered) if m["role"] != "system"), None)
    if first is not None and ordered[first]["role"] == "assistant":
        ordered.insert(first, {"role": "user", "content": CONTINUED})
    return ordered


def _answer_open_calls(ordered: list[Message]) -> None:
    answered = set()
    for message in reversed(ordered):
        if message["role"] == "tool":
            answered.add(message["tool_call_id"])
            continue
        if message["role"] == "assistant":
            for call in message.get("tool_calls", ()):
                if call["id"] not in answered:
                    ordered.append({"role": "tool", "tool_call_id": call["id"], "content": NO_RESULT})
        return


def _merged(one: Message, other: Message) -> Message:
    merged = dict(one)
    a, b = one.get("content"), other.get("content")
    if isinstance(a, str) and isinstance(b, str):
        merged["content"] = f"{a}\n\n{b}"
    elif a is None or b is None:
        merged["content"] = a if b is None else b
    else:
        merged["content"] = _as_parts(a) + _as_parts(b)
    if "tool_calls" in other:
        merged["tool_calls"] = one.get("tool_calls", []) + other["tool_calls"]
    if "reasoning_content" in other:
        merged["reasoning_content"] = one.get("reasoning_content", "") + other["reasoning_content"]
    return merged


def _as_parts(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


# -- tools ------------------------------------------------------------------------


def _tools(tools: Sequence[Any]) -> list[dict[str, Any]]:
    return [_tool(t) for t in tools if is_function_tool(t)]


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    function: dict[str, Any] = {"name": tool_names.shorten(tool["name"])}
    if tool.get("description"):
        function["description"] = tool["description"]
    function["parameters"] = tool.get("input_schema") or {"type": "object", "properties": {}}
    return {"type": "function", "function": function}


def _tool_choice(choice: dict[str, Any] | None) -> str | dict[str, Any] | None:
    kind = (choice or {}).get("type")
    if kind == "tool":
        return {"type": "function", "function": {"name": tool_names.shorten(choice["name"])}}
    return {"auto": "auto", "any": "required", "none": "none"}.get(kind)
