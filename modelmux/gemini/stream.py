"""Gemini `streamGenerateContent?alt=sse` → Anthropic SSE: an explicit state machine. Pure.

Every Gemini event is one `data:` line holding a whole GenerateContentResponse: the
parts produced since the last one, and on the last its `finishReason`; the
`usageMetadata` of each is cumulative. There is no end marker: the stream ends when
the body does, so a body that ends before a finishReason broke off, and the client is
told so instead of getting a message that looks complete.
"""

from __future__ import annotations

import json
from typing import Any

from modelmux.anthropic_side import Context
from modelmux.errors import GatewayError
from modelmux.gemini.errors import error_from
from modelmux.gemini.response import (
    Blocks,
    Event,
    candidate_of,
    failure,
    finish_message,
    finish_of,
    parts_of,
    stop_details,
    stop_reason,
    usage,
)
from modelmux.messages import PING, message_end
from modelmux.sse import format_event, parse_event
from modelmux.translated_stream import TranslatedStream, text_delta, text_delta_prefix




def _plain_text(chunk: dict[str, Any]) -> str | None:
    """The text of an event that is one plain text part and nothing else (no thought,
    signature, finish or error); None for any other event."""
    candidates = chunk.get("candidates")
    if not isinstance(candidates, list) or len(candidates) != 1 or "error" in chunk or "promptFeedback" in chunk:
        return None
    candidate = candidates[0]
    if not isinstance(candidate, dict) or candidate.get("finishReason"):
        return None
    parts = (candidate.get("content") or {}).get("parts")
    if not isinstance(parts, list) or len(parts) != 1 or not isinstance(parts[0], dict) or parts[0].keys() != {"text"}:
        return None
    text = parts[0]["text"]
    return text if isinstance(text, str) else None


class GeminiStream(TranslatedStream):
    """Feed upstream bytes in any chunking, get Anthropic SSE events back."""

    def __init__(self, context: Context, envelope: bool = False) -> None:
        """`envelope`: each event is wrapped as `{"response": ...}` (Google's Code Assist
        endpoint, behind Gemini CLI and Antigravity logins). An error Gemini sends inside
        the stream stays in `error` with its Retry-After."""
        super().__init__(context)
        self._envelope = envelope
        self._blocks = Blocks(context)
        self._finish: str | None = None
        self._finish_message: str | None = None
        self._usage: dict[str, Any] | None = None

    def _complete(self) -> bool:
        return self._finish is not None

    def _event(self, raw: bytes) -> list[bytes]:
        if self._ended:
            return []
        try:
            event = parse_event(raw)
            if not event.data.strip():
                return [PING] if raw.lstrip().startswith(b":") else []  # an SSE comment: a keep-alive
            chunk = json.loads(event.data)
        except ValueError:  # not UTF-8, or not JSON
            return self._unreadable(raw)
        if isinstance(chunk, list) and all(isinstance(item, dict) for item in chunk):  # the JSON-array framing
            return [b for item in chunk for b in self._chunk(item)]
        return self._chunk(chunk) if isinstance(chunk, dict) else self._unreadable(raw)

    def _chunk(self, chunk: dict[str, Any]) -> list[bytes]:
        if self._ended:
            return []
        if self._envelope and isinstance(chunk.get("response"), dict):
            chunk = chunk["response"]
        if (index := self._blocks.open_text()) is not None and (text := _plain_text(chunk)) is not None:
            # The hot path, more text for the open text block: straight to bytes.
            if isinstance(chunk.get("usageMetadata"), dict):
                self._usage = chunk["usageMetadata"]
            return [text_delta(text_delta_prefix(index), text)] if text else []
        if isinstance(chunk.get("error"), dict):
            return self._fail(error_from(chunk["error"]))
        if isinstance(chunk.get("usageMetadata"), dict):
            self._usage = chunk["usageMetadata"]
        events: list[Event] = []
        try:
            for part in parts_of(candidate_of(chunk)):
                events += self._blocks.part(part)
        except GatewayError as error:  # a part an Anthropic message cannot hold: what came before it, then the error
            return [format_event(e["type"], e) for e in events] + self._fail(error)
        if finish := finish_of(chunk):
            self._finish = finish
            self._finish_message = finish_message(chunk) or self._finish_message
        return [format_event(e["type"], e) for e in events]

    def _end(self) -> list[bytes]:
        if error := failure(self._finish, self._finish_message):
            return self._fail(error)
        self._ended = True
        out = [format_event(e["type"], e) for e in self._blocks.end()]
        reason = stop_reason(self._finish, self._blocks.called_tools)
        return out + message_end(reason, None, usage(self._usage), stop_details(self._finish, self._finish_message))
