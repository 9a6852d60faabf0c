"""Anthropic Messages ⇄ OpenAI Responses: requests, whole answers and streams. Pure."""

from modelmux.config.types import Shape
from modelmux.translate import openai_side
from modelmux.translate.anthropic_side import tool_names
from modelmux.translate.openai_responses import reasoning_state
from modelmux.translate.openai_responses.request import EFFORTS, ENDPOINT, to_responses
from modelmux.translate.openai_responses.response import Context, from_responses
from modelmux.translate.openai_responses.stream import ResponsesStream
from modelmux.translate.protocol import SHAPING, Translation

PROTOCOL = openai_side.protocol(
    "openai-responses",
    Translation(
        request=lambda body, shape, model, wanted: to_responses(
            body, shape, model, openai_side.named(wanted), shape.reasoning_summary),
        endpoint=openai_side.endpoint(ENDPOINT),
        context=lambda body, shown, model: Context(model=shown, tool_names=tool_names(body), upstream_model=model),
        context_type=Context,
        answer=from_responses,
        stream=ResponsesStream,
    ),
    shaping=SHAPING - {"max_tokens_field", "reasoning_history"},
    shape=Shape(documents=True, reasoning_effort=True),  # OpenAI's Responses API reads PDFs
    effort_field="reasoning",
    packs=reasoning_state.packed,
    packed_mark=reasoning_state.MARK,
)

__all__ = ["EFFORTS", "ENDPOINT", "PROTOCOL", "Context", "ResponsesStream", "from_responses", "to_responses"]
