"""Anthropic Messages ⇄ OpenAI Responses: requests, whole answers and streams. Pure."""

from modelmux.openai_responses.request import EFFORTS, ENDPOINT, to_responses
from modelmux.openai_responses.response import Context, from_responses
from modelmux.openai_responses.stream import ResponsesStream

__all__ = ["EFFORTS", "ENDPOINT", "Context", "ResponsesStream", "from_responses", "to_responses"]
