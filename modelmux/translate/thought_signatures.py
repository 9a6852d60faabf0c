"""Gemini thought signatures, carried through an Anthropic client. Pure. Both ways of
reaching Gemini use them: its own API (gemini/) and its OpenAI-compatible endpoint
(openai_chat/google.py).

Gemini returns a `thoughtSignature` (base64 text in the JSON) on the part it belongs
to: a thought, a text part or a function call. It must come back on that same part
in the next request, and Gemini 3 rejects a function call of the current turn that
lacks it ("Function call is missing a thought_signature", 400). An Anthropic client
keeps only the fields it knows, so the signature travels as the `signature` of a
thinking block, which Claude Code stores and sends back verbatim. The prefix says
which part the signature belongs to:

- `gemini-thought:` the thought part whose text is this block's `thinking`;
- `gemini-next:` the part right after this block (a tool_use or text block); the
  block's own text, if any, is an unsigned thought summary;
- `gemini-previous:` the part right before this block (a text block whose signature
  arrived at the end of the stream, after its text was already sent).

The signature text after the prefix is Gemini's own, byte for byte: never decoded or
re-encoded. A signature without one of these prefixes (Anthropic's, or the empty one
of a translated OpenAI answer) is never sent to Gemini, and one with them must never
reach another upstream (`without_gemini_thinking`).

Claude Code drops signed thinking blocks from messages whose `model` differs from the
model of the request it is sending (it strips them on a model switch), so a tool call
can come back without its signature; for Gemini 3, `DUMMY` is Google's documented
stand-in for such history (thought-signatures FAQ).
"""

from __future__ import annotations

from typing import Any

from modelmux.translate.messages import without_blocks

THOUGHT = "gemini-thought:"
NEXT = "gemini-next:"
PREVIOUS = "gemini-previous:"
KINDS = (THOUGHT, NEXT, PREVIOUS)
DUMMY = "skip_thought_signature_validator"
MARK = b'"gemini-'  # what every carrier shows in a request body: a JSON string starting with a kind


def carrier(kind: str, signature: str) -> str:
    """The Anthropic `signature` value that carries Gemini's `signature`."""
    assert kind in KINDS
    return kind + signature


def parse(signature: Any) -> tuple[str, str] | None:
    """(kind, Gemini's signature) for a carrier; None for any other signature."""
    if not isinstance(signature, str):
        return None
    for kind in KINDS:
        if signature.startswith(kind) and len(signature) > len(kind):
            return kind, signature[len(kind) :]
    return None


def carries(signature: Any) -> bool:
    """Whether `signature` is a carrier of Gemini's."""
    return parse(signature) is not None


def is_gemini(block: Any) -> bool:
    """Whether `block` is a thinking block whose signature is Gemini's."""
    return isinstance(block, dict) and block.get("type") == "thinking" and carries(block.get("signature"))


def without_gemini_thinking(body: dict[str, Any]) -> dict[str, Any]:
    """An Anthropic request without Gemini-signed thinking blocks, for any upstream
    that is not Gemini (Anthropic would reject the foreign signature)."""
    return without_blocks(body, is_gemini)
