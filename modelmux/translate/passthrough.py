"""Anthropic → Anthropic: the protocol modelmux does not translate (`PROTOCOL`), and
the response rewriting that lets the client see the model name it asked for.

When a route sends `opus` upstream as `glm-4.6`, the upstream's answer says
`glm-4.6`; Claude Code keys context limits and cost display on that field, so it is
set back to the requested name unless the route says `response_model: upstream`.
Only `message_start` carries the model in a stream; everything after it passes
through byte for byte, so streaming stays as fast as without modelmux.
"""

from __future__ import annotations

import json
from typing import Any

from modelmux.config.types import Shape
from modelmux.errors import GatewayError, status_for
from modelmux.translate import validation
from modelmux.translate.effort import Effort
from modelmux.translate.protocol import Protocol
from modelmux.translate.sse import EventSplitter, format_event, parse_event

# A stream whose message_start has not shown up in this many bytes is left alone:
# it is not an Anthropic message stream, and buffering it longer would stall it.
SCAN_LIMIT = 64 * 1024
ANTHROPIC_VERSION = "2023-06-01"  # Anthropic requires the header on every endpoint, the model list's too


def effort_problem(model: str, effort: Effort) -> str:
    return ("an anthropic provider gets the request as the client sent it, thinking settings "
            "included; remove the suffix (Claude Code sets thinking itself)")


PROTOCOL = Protocol(
    name="anthropic",
    auth="x-api-key: {key}",
    # An Anthropic-compatible vendor reads the request as Anthropic defines it, so it gets
    # the version and the betas the body may depend on.
    forwarded=frozenset({
        "content-type", "content-encoding", "accept", "accept-encoding", "anthropic-version", "anthropic-beta",
    }),  # fmt: skip
    model_list="/v1/models?limit=1000",
    model_list_headers={"anthropic-version": ANTHROPIC_VERSION},
    effort_problem=effort_problem,
    shape=Shape(documents=True),
)


def restore_model_json(body: bytes, model: str) -> bytes | None:
    """The body with its top-level `model` set to `model`, every other byte as the
    upstream wrote it; None when there is nothing to change."""
    try:
        parsed, place = validation.parse_placed(body, recent=False)
    except validation.Malformed:
        return None
    if not isinstance(parsed, dict) or "model" not in parsed or parsed["model"] == model:
        return None
    if place is None:  # the model is there more than once (json reads the last)
        parsed["model"] = model
        return json.dumps(parsed, ensure_ascii=False, separators=(",", ":")).encode()
    start, end = place
    return body[:start] + json.dumps(model).encode() + body[end:]


class ModelRestorer:
    """Stream transform: rewrite message_start's model, then pass every byte through."""

    def __init__(self, model: str) -> None:
        self.model = model
        self._splitter = EventSplitter()
        self._scanned = 0
        self._done = False

    def feed(self, chunk: bytes) -> list[bytes]:
        if self._done:
            return [chunk] if chunk else []
        self._scanned += len(chunk)
        out: list[bytes] = []
        for raw in self._splitter.feed(chunk):
            if self._done:
                out.append(raw)
            else:
                out.append(self._rewrite(raw))
        if self._done or self._scanned > SCAN_LIMIT:
            self._done = True
            rest = self._splitter.rest()
            if rest:
                out.append(rest)
        return out

    def close(self) -> list[bytes]:
        self._done = True
        rest = self._splitter.rest()
        return [rest] if rest else []

    def _rewrite(self, raw: bytes) -> bytes:
        event = parse_event(raw)
        if event.name != "message_start":
            return raw
        self._done = True
        try:
            data = event.json()
        except ValueError:
            return raw
        return _with_model(data, self.model) or raw


class AnthropicEvents:
    """Stream transform for an Anthropic upstream's stream that another attempt could
    still replace (the failover relay's): passed on in whole events, so that a ping or
    an error modelmux adds never lands inside one, message_start's model set to
    `restore` when given, and what passed reported as a StreamWriter reports it
    (attempt.Facts): `content` once an event other than message_start and ping
    passed, `error` the error event's (type, message), `usage` the counts message_start
    and message_delta gave. These are read from the upstream's own event names, once
    per event, not searched for in bytes."""

    def __init__(self, restore: str | None = None) -> None:
        self.restore = restore
        self.content = False
        self.error: GatewayError | None = None  # its status read back from its type, as a translator's
        self.usage: dict[str, Any] = {}
        self._splitter = EventSplitter()

    def feed(self, chunk: bytes) -> list[bytes]:
        events = self._splitter.feed(chunk)
        if not events:
            return []
        return [b"".join([self._look(raw) for raw in events])]

    def close(self) -> list[bytes]:
        rest = self._splitter.rest()
        return [self._look(rest)] if rest.strip() else []

    def _look(self, raw: bytes) -> bytes:
        if raw.startswith(b"event: content_block_delta"):  # almost every event: nothing to learn
            self.content = True
            return raw
        name = _name(raw)
        if name in ("message_start", "message_delta", "error"):
            try:
                data = parse_event(raw).json()
            except (ValueError, UnicodeDecodeError):
                data = None
            if isinstance(data, dict):
                raw = self._read(name, data, raw)
        if name not in ("message_start", "ping", None):
            self.content = self.content or name != "error"
        return raw

    def _read(self, name: str, data: dict[str, Any], raw: bytes) -> bytes:
        if name == "error":
            error = data.get("error") if isinstance(data.get("error"), dict) else {}
            error_type = str(error.get("type") or "api_error")
            self.error = GatewayError(status_for(error_type), str(error.get("message") or ""), error_type)
            return raw
        usage = (data.get("message") or {}).get("usage") if name == "message_start" else data.get("usage")
        if isinstance(usage, dict):
            self.usage.update({k: v for k, v in usage.items() if isinstance(v, int)})
        if name == "message_start" and self.restore and (data.get("message") or {}).get("model") != self.restore:
            return _with_model(data, self.restore) or raw
        return raw


def _with_model(data: Any, model: str) -> bytes | None:
    """message_start's data as an event with its message's model set to `model`; None
    when it holds no message to set it in."""
    if not isinstance(data, dict) or not isinstance(data.get("message"), dict):
        return None
    data["message"]["model"] = model
    return format_event("message_start", data)


def _name(raw: bytes) -> str | None:
    """An event's `event:` field, read without parsing the whole event when it comes first.
    Its line ends at the first CR or LF: SSE allows CR-only line endings."""
    if raw.startswith(b"event:"):
        ends = [at for at in (raw.find(b"\n", 6), raw.find(b"\r", 6)) if at >= 0]
        return raw[6 : min(ends, default=len(raw))].strip().decode("utf-8", "replace") or None
    return parse_event(raw).name if b"event:" in raw else None

