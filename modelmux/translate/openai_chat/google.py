"""Gemini through its OpenAI-compatible endpoint: thought signatures on tool calls. Pure.

Google's thought-signatures page ("Signatures for OpenAI compatibility"): a tool call
Gemini makes carries `extra_content: {"google": {"thought_signature": ...}}`, and the
assistant message replayed in the next request must carry it on the same call,
"Required and Validated" (Gemini 3 answers 400 "Function call is missing a
thought_signature"). An Anthropic client keeps no such field, so it travels as
Gemini's native signatures do (thought_signatures.py): on an empty thinking block
right before the tool_use (`gemini-next:`), or right after it when it came late
(`gemini-previous:`), and goes back as `extra_content` on that call. Only to a
Gemini model: OpenAI rejects fields it does not know on a message.
"""

from __future__ import annotations

from typing import Any

from modelmux.translate import thought_signatures


def takes_signatures(model: str) -> bool:
    """Whether `model` is a Gemini model, whose calls carry signatures."""
    return "gemini" in model.lower()


def signature_of(call: Any) -> str | None:
    """`extra_content.google.thought_signature` of a tool call or a streamed piece of one."""
    if not isinstance(call, dict) or not isinstance(call.get("extra_content"), dict):
        return None
    signature = (call["extra_content"].get("google") or {}).get("thought_signature")
    return signature if isinstance(signature, str) and signature else None


def carried(signature: str, late: bool = False) -> str:
    """The Anthropic `signature` that carries a call's: on a thinking block right before
    the call, or right after it when it came `late`."""
    return thought_signatures.carrier(thought_signatures.PREVIOUS if late else thought_signatures.NEXT, signature)


def carrier(signature: str) -> dict[str, Any]:
    """The thinking block that carries a call's signature, right before the call."""
    return {"type": "thinking", "thinking": "", "signature": carried(signature)}


def signed(call: dict[str, Any], signature: str) -> dict[str, Any]:
    return {**call, "extra_content": {"google": {"thought_signature": signature}}}


def restore(blocks: list[dict[str, Any]], calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`calls` (one per tool_use block, in order) with the signatures the blocks carry."""
    out = list(calls)
    at = -1  # the call of the last tool_use seen
    previous: int | None = None  # that call, if it is the part right before
    following: str | None = None  # a signature for the part right after
    for block in blocks:
        kind = block.get("type")
        if kind == "tool_use" and at + 1 < len(out):
            at = previous = at + 1
            if following is not None:
                out[at] = signed(out[at], following)
            following = None
        elif kind == "text" and block.get("text"):
            previous = following = None  # the part the carriers around it belong to is this text
        elif kind == "thinking" and (carried := thought_signatures.parse(block.get("signature"))) is not None:
            what, signature = carried
            if what == thought_signatures.NEXT:
                following = signature
            elif what == thought_signatures.PREVIOUS and previous is not None and "extra_content" not in out[previous]:
                out[previous] = signed(out[previous], signature)
    return out
