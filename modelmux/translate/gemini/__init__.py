"""Anthropic Messages ⇄ Gemini generateContent: requests, whole answers and streams. Pure."""

from modelmux.config.types import Shape
from modelmux.translate import thought_signatures
from modelmux.translate.gemini.errors import error_from, error_of
from modelmux.translate.gemini.request import (
    ENDPOINT,
    STREAM_ENDPOINT,
    context_for,
    function_name,
    path,
    restore_map,
    to_gemini,
)
from modelmux.translate.gemini.response import Context, from_gemini
from modelmux.translate.gemini.stream import GeminiStream
from modelmux.translate.gemini.thinking import effort_problem
from modelmux.translate.protocol import Protocol, Translation

PROTOCOL = Protocol(
    name="gemini",
    auth="x-goog-api-key: {key}",
    forwarded=frozenset(),
    model_list="/models?pageSize=1000",
    effort_problem=effort_problem,
    translation=Translation(
        request=to_gemini,
        endpoint=lambda shape, model, stream: path(model, stream),  # the model's method: no `endpoint`
        context=lambda body, shown, model: context_for(body, shown),
        context_type=Context,
        answer=from_gemini,
        stream=GeminiStream,  # also (context, envelope=True): Code Assist's answers, wrapped
    ),
    # Gemini always gets a thinkingConfig (no reasoning_effort), and reads PDFs.
    shaping=frozenset({"query", "max_tokens_limit", "drop_fields", "images", "documents"}),
    shape=Shape(documents=True),
    model_in_path=True,
    read_error=error_of,  # its status names say more than HTTP's (gemini/errors.py)
    packs=thought_signatures.carries,
    packed_mark=thought_signatures.MARK,
)

__all__ = [
    "ENDPOINT", "PROTOCOL", "STREAM_ENDPOINT", "Context", "GeminiStream", "context_for", "error_from", "error_of",
    "effort_problem", "from_gemini", "function_name", "path", "restore_map", "to_gemini",
]  # fmt: skip
