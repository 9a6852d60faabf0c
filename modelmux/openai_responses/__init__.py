"""Anthropic Messages ⇄ OpenAI Responses: requests, whole answers and streams. Pure."""

from modelmux.openai_responses.request import EFFORTS, ENDPOINT, to_responses
from modelmux.openai_responses.response import Context, from_responses

__all__ = ["EFFORTS", "ENDPOINT", "Context", "from_responses", "to_responses"]
