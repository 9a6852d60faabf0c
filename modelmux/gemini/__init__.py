"""Anthropic Messages ⇄ Gemini generateContent: requests, whole answers and streams. Pure."""

from modelmux.gemini.errors import error_from, error_of
from modelmux.gemini.request import (
    ENDPOINT,
    STREAM_ENDPOINT,
    context_for,
    function_name,
    path,
    restore_map,
    to_gemini,
)
from modelmux.gemini.response import Context, from_gemini
from modelmux.gemini.stream import GeminiStream
from modelmux.gemini.thinking import effort_problem

__all__ = [
    "ENDPOINT", "STREAM_ENDPOINT", "Context", "GeminiStream", "context_for", "error_from", "error_of",
    "effort_problem", "from_gemini", "function_name", "path", "restore_map", "to_gemini",
]  # fmt: skip
