"""Anthropic Messages ⇄ OpenAI Chat Completions: requests, whole answers and streams. Pure."""

from modelmux.openai_chat.request import to_chat
from modelmux.openai_chat.response import Context, from_chat
from modelmux.openai_chat.stream import ChatStream

ENDPOINT = "/chat/completions"

__all__ = ["ENDPOINT", "ChatStream", "Context", "from_chat", "to_chat"]
