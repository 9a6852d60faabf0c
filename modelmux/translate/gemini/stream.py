"""Gemini `streamGenerateContent?alt=sse` → Anthropic SSE: an explicit state machine. Pure.

Every Gemini event is one `data:` line holding a whole GenerateContentResponse: the
parts produced since the last one, and on the last its `finishReason`; the
`usageMetadata` of each is cumulative. There is no end marker: the stream ends when
the body does, so a body that ends before a finishReason broke off, and the client is
told so instead of getting a message that looks complete.
"""

from __future__ import annotations

from typing import Any

from modelmux.errors import GatewayError
from modelmux.translate.anthropic_side import Context
from modelmux.translate.gemini.errors import error_from
from modelmux.translate.gemini.response import (
    Blocks,
    candidate_of,
    failure,
    finish_message,
    finish_of,
    parts_of,
    stop_details,
    stop_reason,
    usage,
)
from modelmux.translate.sse import parse_event
from modelmux.translate.translated_stream import TranslatedStream


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
        self._blocks = Blocks(context, self.writer)
        self._finish: str | None = None
        self._finish_message: str | None = None
        self._usage: dict[str, Any] | None = None

    def _complete(self) -> bool:
        return self._finish is not None

    def _event(self, raw: bytes) -> None:
        try:
            event = parse_event(raw)
            if not event.data.strip():
                self._keep_alive(raw)
                return
            chunk = event.json()
        except ValueError:  # not UTF-8, or not JSON
            self._unreadable(raw)
            return
        if isinstance(chunk, list) and all(isinstance(item, dict) for item in chunk):  # the JSON-array framing
            for item in chunk:
                if self.writer.ended:
                    return
                self._chunk(item)
        elif isinstance(chunk, dict):
            self._chunk(chunk)
        else:
            self._unreadable(raw)

    def _chunk(self, chunk: dict[str, Any]) -> None:
        if self._envelope and isinstance(chunk.get("response"), dict):
            chunk = chunk["response"]
        if self._blocks.writes_text() and (text := _plain_text(chunk)) is not None:
            # The hot path, more text for the open text block: straight to bytes.
            if isinstance(chunk.get("usageMetadata"), dict):
                self._usage = chunk["usageMetadata"]
            self.writer.text(text)
            return
        if isinstance(chunk.get("error"), dict):
            self._fail(error_from(chunk["error"]))
            return
        if isinstance(chunk.get("usageMetadata"), dict):
            self._usage = chunk["usageMetadata"]
        try:
            for part in parts_of(candidate_of(chunk)):
                self._blocks.part(part)
        except GatewayError as error:  # a part an Anthropic message cannot hold: what came before it, then the error
            self._fail(error)
            return
        if finish := finish_of(chunk):
            self._finish = finish
            self._finish_message = finish_message(chunk) or self._finish_message

    def _end(self) -> None:
        if error := failure(self._finish, self._finish_message):
            self._fail(error)
            return
        self._blocks.end()
        reason = stop_reason(self._finish, self._blocks.called_tools)
        self.writer.end(reason, None, usage(self._usage), stop_details(self._finish, self._finish_message))
