"""The Anthropic side of every translation: what the translators read from a Messages
request and write into an Anthropic answer alike, kept once so that no translator
imports another. Pure.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from modelmux.config.types import Shape
from modelmux.translate import tool_names as toolnames

CONTINUED = "(continued)"  # a user turn for histories that start with the assistant
NO_RESULT = "Error: no result was recorded for this tool call."
IMAGE_BELOW = "[image attached below]"
IMAGE_OMITTED = "[image omitted: this model does not accept images]"
DOCUMENT_OMITTED = "[document omitted: this model does not accept documents]"
# Claude Code's first system block is an attribution line for Anthropic's billing; it
# means nothing to another provider and, changing with every Claude Code version, would
# break the provider's prefix cache.
BILLING_LINE = "x-anthropic-billing-header:"
# budget_tokens → a named effort. Claude Code asks 31999 for "ultrathink".
EFFORT_BUDGETS = ((4096, "low"), (16384, "medium"))
UNNAMED_TOOL = "unnamed_tool"  # a streamed tool call whose name never came


@dataclass
class Context:
    """What the answer's translation needs to know about the request (JSON-able, so it
    can sit in flow.metadata for the dashboard)."""

    model: str  # the model name the client sees
    tool_names: dict[str, str] = field(default_factory=dict)  # shortened → original
    input_tokens: int = 0  # modelmux's estimate, for message_start before the real count

    def to_dict(self) -> dict[str, Any]:
        return {"model": self.model, "tool_names": self.tool_names, "input_tokens": self.input_tokens}


def tool_names(body: dict[str, Any]) -> dict[str, str]:
    """The request's tool names as an answer gets them back: by the name sent upstream
    (toolnames.shorten)."""
    names = [t["name"] for t in body.get("tools") or () if isinstance(t, dict) and isinstance(t.get("name"), str)]
    return toolnames.restore_map(names)


# -- the request ------------------------------------------------------------------


def content_blocks(content: Any) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    return [b for b in content or () if isinstance(b, dict)]


def text_of(blocks: list[dict[str, Any]]) -> str:
    return "\n\n".join(b["text"] for b in blocks if b.get("type") == "text" and b.get("text"))


def source_url(source: dict[str, Any], default_type: str) -> str:
    if source.get("type") == "url":
        return source.get("url", "")
    return f"data:{source.get('media_type') or default_type};base64,{source.get('data', '')}"


def max_tokens(body: dict[str, Any], shape: Shape) -> int | None:
    """The client's max_tokens, within the provider's limit."""
    if not isinstance(body.get("max_tokens"), int):
        return None
    limit = shape.max_tokens_limit
    return min(body["max_tokens"], limit) if limit else body["max_tokens"]


def compact_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# -- the answer -------------------------------------------------------------------


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
