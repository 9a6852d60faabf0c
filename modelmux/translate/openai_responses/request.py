"""Anthropic Messages request → OpenAI Responses request. Pure.

Like the Chat Completions translation, the upstream body is built from the fields
the Responses API knows, never copied from the client's. What differs:

- The conversation is a list of items: messages whose parts are `input_text`,
  `input_image`, `input_file` (user) or `output_text` (assistant), and top-level
  `function_call` / `function_call_output` items tied by `call_id`.
- Nothing is stored upstream (`store: false`), so reasoning comes back only as
  encrypted content that modelmux packs into thinking signatures (see reasoning_state.py)
  and replays as `reasoning` items. Like OpenAI's own stateless client (Codex), no
  replayed item carries an `id`: the encrypted content is all OpenAI needs, while
  an id can make it look the item up in the store that `store: false` leaves empty
  ("Item with id 'rs_…' not found", reported through other gateways).
- Reasoning effort: an `effort` given by the caller (the route's `MODEL(EFFORT)`)
  wins over the client's `thinking`; a thinking budget maps to an effort by the
  thresholds of the Chat translation: below 4096 tokens low, below 16384 medium,
  else high (Claude Code's "ultrathink" asks 31999). "xhigh", "minimal" and "none"
  exist on some models only, so only an explicit `effort` sends them.
- `stop_sequences` has no Responses equivalent and is dropped, and so are
  `temperature` and `top_p` for a model that reasons (unless its effort is "none").
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from modelmux.translate import repeated, tool_names
from modelmux.translate.anthropic_side import (
    BILLING_LINE,
    DOCUMENT_OMITTED,
    IMAGE_OMITTED,
    NO_RESULT,
    compact_json,
    content_blocks,
    max_tokens,
    source_url,
    text_of,
)
from modelmux.config.types import Shape
from modelmux.translate.effort import NAMED
from modelmux.translate.openai_responses.reasoning_state import unpack
from modelmux.translate.openai_side import is_function_tool, reasoning_effort, sampling_fields, tool_fields

ENDPOINT = "/responses"
EFFORTS = NAMED
SUMMARY = "auto"  # reasoning summaries, shown to the client as thinking
# OpenAI rejects a max_output_tokens below 16; Claude Code's model probe asks for 1.
MIN_OUTPUT_TOKENS = 16
ENCRYPTED_REASONING = "reasoning.encrypted_content"

Item = dict[str, Any]
Block = dict[str, Any]


def to_responses(
    body: dict[str, Any], shape: Shape, model: str, effort: str | None = None, summary: str | None = SUMMARY
) -> dict[str, Any]:
    """The Responses body for an Anthropic `body`, sent as `model`. `effort` overrides the
    client's thinking; `summary` (None: none asked) is the reasoning summary mode."""
    if effort is not None and effort not in EFFORTS:
        raise ValueError(f"reasoning effort '{effort}' is not one of {', '.join(EFFORTS)}")
    out: dict[str, Any] = {"model": model}
    system = [b for b in content_blocks(body.get("system")) if not b.get("text", "").startswith(BILLING_LINE)]
    if instructions := text_of(system):
        out["instructions"] = instructions
    out["input"] = input_items(body, shape, model)
    out.update(tool_fields(body, _tools, _tool_choice))
    if (limit := max_tokens(body, shape)) is not None:
        out["max_output_tokens"] = max(limit, MIN_OUTPUT_TOKENS)
    out.update(sampling_fields(body))
    if effort is not None or shape.reasoning_effort:
        reasoning = _reasoning(body, effort, summary)
        if reasoning:
            out["reasoning"] = reasoning
        out["include"] = [ENCRYPTED_REASONING]
        if reasoning.get("effort") != "none":
            # OpenAI's reasoning models reject sampling parameters ("Unsupported
            # parameter: 'temperature'"), and Anthropic's thinking fixes them anyway.
            out.pop("temperature", None)
            out.pop("top_p", None)
    out["store"] = False
    if body.get("stream"):
        out["stream"] = True
    for name in shape.drop_fields:
        out.pop(name, None)
    return out


def _reasoning(body: dict[str, Any], effort: str | None, summary: str | None) -> dict[str, Any]:
    """Effort as asked; summaries only when the client wants thinking (or the route
    asked for an effort), as they are what the client is shown as thinking."""
    asked = reasoning_effort(body)
    chosen = effort or asked
    reasoning: dict[str, Any] = {"effort": chosen} if chosen else {}
    if summary and chosen and chosen != "none":
        reasoning["summary"] = summary
    return reasoning


# -- input items --------------------------------------------------------------------


def input_items(body: dict[str, Any], shape: Shape, model: str) -> list[Item]:
    """Every function_call is answered by its function_call_output before the next
    message: OpenAI rejects a call without output ("No tool output found"). Each turn's
    items are built once (repeated.translated): a conversation's earlier turns come
    again with every request."""
    items: list[Item] = []
    open_calls: tuple[str, ...] = ()  # the latest assistant turn's calls, not yet answered
    for role, turn in _turns(body.get("messages") or ()):
        if role == "assistant":
            items += _no_results(open_calls)
            made = repeated.translated(_assistant_turn, turn, model)
            items += made
            open_calls = tuple(item["call_id"] for item in made if item["type"] == "function_call")
        elif role == "system":
            items += repeated.translated(_system_turn, turn, open_calls)
            open_calls = ()
        else:
            items += repeated.translated(_user_turn, turn, shape, open_calls)
            open_calls = ()
    return items + _no_results(open_calls)


def _turns(messages: Any) -> list[tuple[str, tuple[dict[str, Any], ...]]]:
    """Consecutive messages of one role as one turn, as Anthropic reads them: tool
    results then always follow the turn that made their calls."""
    turns: list[tuple[str, tuple[dict[str, Any], ...]]] = []
    for message in messages:
        if not isinstance(message, dict):
            continue
        role = str(message["role"]) if message.get("role") in ("assistant", "system") else "user"
        if turns and turns[-1][0] == role:
            turns[-1] = (role, (*turns[-1][1], message))
        else:
            turns.append((role, (message,)))
    return turns


def _blocks(turn: tuple[dict[str, Any], ...]) -> list[Block]:
    return [block for message in turn for block in content_blocks(message.get("content"))]


def _assistant_turn(turn: tuple[dict[str, Any], ...], model: str) -> list[Item]:
    return _assistant(_blocks(turn), model)


def _system_turn(turn: tuple[dict[str, Any], ...], open_calls: tuple[str, ...]) -> list[Item]:
    items = _no_results(open_calls)
    if text := text_of(_blocks(turn)):
        items.append(_message("system", [{"type": "input_text", "text": text}]))
    return items


def _user_turn(turn: tuple[dict[str, Any], ...], shape: Shape, open_calls: tuple[str, ...]) -> list[Item]:
    outputs, parts = _user(_blocks(turn), shape, open_calls)
    answered = {output["call_id"] for output in outputs}
    items = outputs + _no_results([c for c in open_calls if c not in answered])
    if parts:
        items.append(_message("user", parts))
    return items


def _message(role: str, parts: list[dict[str, Any]]) -> Item:
    return {"type": "message", "role": role, "content": parts}


def _no_results(calls: Sequence[str]) -> list[Item]:
    return [{"type": "function_call_output", "call_id": call, "output": NO_RESULT} for call in calls]


def _assistant(blocks: list[Block], model: str) -> list[Item]:
    """Items in the order the blocks came: reasoning, text, calls. A thinking block
    whose signature modelmux did not make for this model is dropped."""
    items: list[Item] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "text" and block.get("text"):
            if not (items and items[-1]["type"] == "message"):
                items.append(_message("assistant", []))
            items[-1]["content"].append({"type": "output_text", "text": block["text"]})
        elif kind == "tool_use":
            items.append({
                "type": "function_call",
                "call_id": tool_names.upstream_id(block.get("id", "")),
                "name": tool_names.shorten(block.get("name", "")),
                "arguments": compact_json(block.get("input") or {}),
            })  # fmt: skip
        elif kind == "thinking" and (reasoning := unpack(block.get("signature"), model)):
            items.append({"type": "reasoning", "summary": [], "encrypted_content": reasoning.encrypted_content})
    return items


def _user(blocks: list[Block], shape: Shape, open_calls: Sequence[str]) -> tuple[list[Item], list[dict[str, Any]]]:
    """The outputs for the open calls, and the parts of the user's own message."""
    outputs: list[Item] = []
    parts: list[dict[str, Any]] = []
    waiting = set(open_calls)
    for block in blocks:
        if block.get("type") != "tool_result":
            parts += _parts(block, shape)
            continue
        call = tool_names.upstream_id(block.get("tool_use_id", ""))
        output = _tool_output(block, shape)
        if call in waiting:
            waiting.discard(call)
            outputs.append({"type": "function_call_output", "call_id": call, "output": output})
        else:  # its call is not in the history (e.g. compacted away): keep it as text
            head = f"[result of tool call {call}]"
            if isinstance(output, str):
                parts.append({"type": "input_text", "text": f"{head}\n{output}"})
            else:
                parts += [{"type": "input_text", "text": head}, *output]
    return outputs, parts


def _tool_output(block: Block, shape: Shape) -> str | list[dict[str, Any]]:
    """A string when the result is text only; a list of parts when it holds images
    or documents, which function_call_output carries as they are."""
    inner = content_blocks(block.get("content"))
    prefix = "Error: " if block.get("is_error") else ""
    parts = [p for b in inner for p in _parts(b, shape)]
    if all(p["type"] == "input_text" for p in parts):
        return prefix + "\n\n".join(p["text"] for p in parts)
    if prefix:
        parts.insert(0, {"type": "input_text", "text": prefix.rstrip()})
    return parts


def _parts(block: Block, shape: Shape) -> list[dict[str, Any]]:
    kind = block.get("type")
    source = block.get("source") or {}
    if kind == "text":
        return [{"type": "input_text", "text": block["text"]}] if block.get("text") else []
    if kind == "image":
        if not shape.images:
            return [{"type": "input_text", "text": IMAGE_OMITTED}]
        return [{"type": "input_image", "image_url": source_url(source, "image/jpeg")}]
    if kind == "document":
        if source.get("type") == "text":
            return [{"type": "input_text", "text": source.get("data", "")}]
        if not shape.documents:
            return [{"type": "input_text", "text": DOCUMENT_OMITTED}]
        if source.get("type") == "url":
            return [{"type": "input_file", "file_url": source.get("url", "")}]
        name = block.get("title") or "document.pdf"
        return [{"type": "input_file", "filename": name, "file_data": source_url(source, "application/pdf")}]
    return []  # thinking in a user turn, server tool blocks: nothing OpenAI reads


# -- tools --------------------------------------------------------------------------


def _tools(tools: Sequence[Any]) -> list[dict[str, Any]]:
    return [_tool(t) for t in tools if is_function_tool(t)]


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    """`strict` stated: the Responses API turns strict mode on when it is omitted, and
    strict mode rewrites schemas (every property required, nothing additional) that
    Claude Code's tools were not written for."""
    function: dict[str, Any] = {"type": "function", "name": tool_names.shorten(tool["name"])}
    if tool.get("description"):
        function["description"] = tool["description"]
    function["parameters"] = tool.get("input_schema") or {"type": "object", "properties": {}}
    function["strict"] = False
    return function


def _tool_choice(choice: dict[str, Any] | None) -> str | dict[str, Any] | None:
    choice = choice or {}
    kind = str(choice.get("type"))
    if kind == "tool":
        return {"type": "function", "name": tool_names.shorten(str(choice.get("name", "")))}
    return {"auto": "auto", "any": "required", "none": "none"}.get(kind)
