"""Anthropic Messages ⇄ OpenAI Chat Completions: requests, whole answers and streams. Pure."""

from modelmux.config.types import Shape
from modelmux.translate import openai_side, thought_signatures
from modelmux.translate.anthropic_side import tool_names
from modelmux.translate.openai_chat.request import to_chat
from modelmux.translate.openai_chat.response import Context, from_chat
from modelmux.translate.openai_chat.stream import ChatStream
from modelmux.translate.protocol import SHAPING, Translation

ENDPOINT = "/chat/completions"

PROTOCOL = openai_side.protocol(
    "openai-chat",
    Translation(
        request=lambda body, shape, model, wanted: to_chat(body, shape, model, openai_side.named(wanted)),
        endpoint=openai_side.endpoint(ENDPOINT),
        context=lambda body, shown, model: Context(model=shown, tool_names=tool_names(body)),
        context_type=Context,
        answer=from_chat,
        stream=ChatStream,
    ),
    shaping=SHAPING - {"reasoning_summary"},
    # Most Chat Completions vendors read no PDFs; reasoning_effort: by the model's
    # family unless written (effort.reasons).
    shape=Shape(documents=False, reasoning_effort=None),
    effort_field="reasoning_effort",
    # A Gemini model behind Google's OpenAI-compatible endpoint signs its calls (google.py).
    packs=thought_signatures.carries,
    packed_mark=thought_signatures.MARK,
)

__all__ = ["ENDPOINT", "PROTOCOL", "ChatStream", "Context", "from_chat", "to_chat"]
