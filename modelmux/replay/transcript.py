"""Bodies as a person reads them: SSE split into events, JSON indented, and an
Anthropic answer (streamed or whole) assembled into its text, thinking and tool calls.
Used by the mitmweb content view and the replay diffs."""

from __future__ import annotations

import json
from typing import Any

Event = tuple[str | None, Any]  # (the `event:` name, the data: parsed JSON, or the raw text)


def events(data: bytes) -> list[Event]:
    """The events of an SSE body, in order; comments and empty events are skipped."""
    found: list[Event] = []
    text = data.decode("utf-8", "replace").replace("\r\n", "\n")
    for block in text.split("\n\n"):
        name, lines = None, []
        for line in block.split("\n"):
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                name = value
            elif field == "data":
                lines.append(value)
        if name is None and not lines:
            continue
        payload = "\n".join(lines)
        try:
            found.append((name, json.loads(payload)))
        except ValueError:
            found.append((name, payload))
    return found


def pretty(data: bytes, content_type: str = "") -> str:
    """SSE one event per block, JSON indented, anything else as text."""
    if content_type.startswith("text/event-stream"):
        return "\n\n".join(_event_text(name, payload) for name, payload in events(data))
    try:
        return json.dumps(json.loads(data), indent=2, ensure_ascii=False)
    except ValueError:
        return data.decode("utf-8", "replace")


def _event_text(name: str | None, payload: Any) -> str:
    shown = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"event: {name}\n{shown}" if name else shown


def assembled(data: bytes, content_type: str = "") -> list[str]:
    """An Anthropic message's content, one entry per block: text as it reads,
    `[thinking] ...`, `[tool_use NAME] {input}`, then how it stopped and its usage."""
    if content_type.startswith("text/event-stream"):
        message = _from_events(events(data))
    else:
        try:
            message = json.loads(data)
        except ValueError:
            return []
    if not isinstance(message, dict):
        return []
    lines = [_block_text(block) for block in message.get("content") or [] if isinstance(block, dict)]
    if message.get("stop_reason") or message.get("usage"):
        usage = message.get("usage") if isinstance(message.get("usage"), dict) else {}
        said = {name: value for name, value in usage.items() if value is not None}  # null: nothing to read
        lines.append(f"[stop_reason {message.get('stop_reason')}] usage {json.dumps(said)}")
    if isinstance(error := message.get("error"), dict):  # a whole error, or one that ended a stream
        lines.append(f"[error {error.get('type')}] {error.get('message')}")
    return lines


def _block_text(block: dict[str, Any]) -> str:
    kind = block.get("type")
    if kind == "text":
        return str(block.get("text", ""))
    if kind == "thinking":
        return f"[thinking] {block.get('thinking', '')}"
    if kind == "redacted_thinking":
        return "[redacted_thinking]"
    if kind in ("tool_use", "server_tool_use"):
        return f"[{kind} {block.get('name')}] {json.dumps(block.get('input'), ensure_ascii=False)}"
    return f"[{kind}] {json.dumps(block, ensure_ascii=False)}"


def _from_events(stream: list[Event]) -> dict[str, Any]:
    """The message a client would assemble from these events, as far as they go."""
    message: dict[str, Any] = {"content": []}
    partial: dict[int, str] = {}  # tool_use input JSON, as it arrives
    blocks: dict[int, dict[str, Any]] = {}
    for name, data in stream:
        if not isinstance(data, dict):
            continue
        if name == "error":
            message["error"] = data.get("error")
        elif name == "message_start":
            message.update({k: v for k, v in (data.get("message") or {}).items() if k != "content"})
        elif name == "content_block_start":
            block = dict(data.get("content_block") or {})
            blocks[data.get("index", len(blocks))] = block
            message["content"].append(block)
        elif name == "content_block_delta":
            _apply_delta(blocks.get(data.get("index", -1)), data.get("delta") or {}, partial, data.get("index", -1))
        elif name == "message_delta":
            message.update(data.get("delta") or {})
            message["usage"] = {**(message.get("usage") or {}), **(data.get("usage") or {})}
    for index, text in partial.items():
        try:
            blocks[index]["input"] = json.loads(text)
        except ValueError:
            blocks[index]["input"] = text
    return message


def _apply_delta(block: dict[str, Any] | None, delta: dict[str, Any], partial: dict[int, str], index: int) -> None:
    if block is None:
        return
    kind = delta.get("type")
    if kind == "text_delta":
        block["text"] = block.get("text", "") + delta.get("text", "")
    elif kind == "thinking_delta":
        block["thinking"] = block.get("thinking", "") + delta.get("thinking", "")
    elif kind == "input_json_delta":
        partial[index] = partial.get(index, "") + delta.get("partial_json", "")
