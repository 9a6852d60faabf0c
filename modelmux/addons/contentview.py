"""The "modelmux" content view: mitmweb shows a routed flow as both sides of the
translation. For the request, the client's Anthropic body next to what was sent
upstream; for the response, the assembled answer (text, thinking, tool calls), the
Anthropic stream the client received, and the upstream's own answer when it differed.
The Dashboard keeps the bodies this needs (mitmproxy keeps no streamed body)."""

from __future__ import annotations

from typing import Any

from mitmproxy import contentviews
from mitmproxy import http

from modelmux.addons.notes import find_notes
from modelmux.replay import transcript


def heading(title: str) -> str:
    return f"── {title} ──"


class ModelmuxContentview(contentviews.Contentview):
    @property
    def name(self) -> str:
        return "modelmux"

    @property
    def syntax_highlight(self) -> contentviews.SyntaxHighlight:
        return "yaml"

    def render_priority(self, data: bytes, metadata: contentviews.Metadata) -> float:
        return 3 if _notes(metadata) is not None else -1

    def prettify(self, data: bytes, metadata: contentviews.Metadata) -> str:
        notes = _notes(metadata)
        if notes is None:
            raise ValueError("not a flow modelmux routed")
        message = metadata.http_message
        if isinstance(message, http.Request):
            return "\n\n".join(_request_blocks(data, message, notes))
        return "\n\n".join(_response_blocks(data, metadata.content_type or "", notes))


def _notes(metadata: contentviews.Metadata) -> dict[str, Any] | None:
    flow = metadata.flow
    notes = find_notes(flow) if flow is not None else None
    return notes if notes and ("requested_model" in notes or "summary" in notes) else None


def _request_blocks(data: bytes, request: http.Request, notes: dict[str, Any]) -> list[str]:
    content_type = request.headers.get("content-type", "")
    protocol = notes.get("protocol") or "anthropic"
    client = notes.get("client_request") or {}
    blocks = [_about(notes)]
    original = client.get("body")
    blocks += [heading("client sent (Anthropic)"), transcript.pretty(original if original is not None else data, content_type)]
    blocks += [heading(f"sent upstream ({protocol})"), f"POST {request.pretty_url}"]
    blocks.append(transcript.pretty(data, content_type) if original is not None else "(the same body)")
    for attempt in notes.get("attempts") or []:
        if attempt.get("request_body") is not None:
            blocks += [heading(f"sent to {attempt['provider']}/{attempt['credential']} (failed attempt)"),
                       transcript.pretty(attempt["request_body"], "application/json")]
    return blocks


def _response_blocks(data: bytes, content_type: str, notes: dict[str, Any]) -> list[str]:
    blocks = [heading("assembled"), "\n".join(transcript.assembled(data, content_type)) or "(nothing)"]
    blocks += [heading("client received (Anthropic)"), transcript.pretty(data, content_type)]
    upstream = notes.get("upstream_response")
    if upstream:
        headers = dict(upstream.get("headers") or [])
        kind = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        blocks += [heading(f"upstream answered ({notes.get('protocol') or 'anthropic'})"),
                   f"HTTP {upstream.get('status')}", transcript.pretty(upstream.get("body") or b"", kind)]
    for attempt in notes.get("attempts") or []:
        if attempt.get("response_body") is not None:
            blocks += [heading(f"{attempt['provider']}/{attempt['credential']} answered {attempt.get('outcome')} "
                               "(failed attempt)"), transcript.pretty(attempt["response_body"], "application/json")]
    return blocks


def _about(notes: dict[str, Any]) -> str:
    summary = notes.get("summary") or {}
    lines = [
        f"model: {notes.get('requested_model')} → {notes.get('provider')}/{notes.get('model')}",
        f"route: {notes.get('route')}" + (f" (profile {notes['profile']})" if notes.get("profile") else ""),
        f"credential: {notes.get('credential')}",
    ]
    if trail := summary.get("failover"):
        lines.append("attempts: " + " → ".join(trail))
    return "\n".join(lines)
