"""Gemini's function-call ids, carried in the client's tool_use ids. Pure.

A `functionCall` may carry an `id`; Gemini's API reference (FunctionCall.id) says
the client returns the response "with the matching id", and FunctionResponse.id is
"populated by the client to match the corresponding function call id". So the id
goes back on the replayed call and on its functionResponse. Only Gemini's own ids
do: a tool_use id Gemini did not make (modelmux's stand-in for a call without one,
another provider's after a model switch) is left out, as Google's ADK leaves out
the ids it made itself ("to avoid sending internal tracking IDs to the model").
The prefix tells Gemini's apart, and tool_names keeps the whole within the
characters an Anthropic client accepts.
"""

from __future__ import annotations

from typing import Any

from modelmux.translate import tool_names

GEMINI_ID = "gemini_"


def tool_use_id(call: dict[str, Any]) -> str:
    """The client's tool_use id for a functionCall: Gemini's id behind the prefix, or a
    fresh `toolu_` id when Gemini gave none."""
    given = call.get("id")
    return tool_names.client_id(GEMINI_ID + given if isinstance(given, str) and given else None)


def gemini_id(tool_use: str) -> str | None:
    """The id Gemini gave the call behind a client's tool_use id; None when it gave none."""
    upstream = tool_names.upstream_id(tool_use)
    return upstream[len(GEMINI_ID) :] if upstream.startswith(GEMINI_ID) and len(upstream) > len(GEMINI_ID) else None
