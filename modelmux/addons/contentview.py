"""The "modelmux" content view: mitmweb shows a routed flow as both sides of the
translation. Both start with what happened: the route, what the client got and why,
each attempt with its URL and reason, and the gateway's overview page. For the
request, what was sent upstream, then the client's Anthropic body; for the response,
the assembled answer (text, thinking, tool calls), the Anthropic stream the client
received, and the upstream's own answer when it differed. The Dashboard keeps the
bodies this needs (mitmproxy keeps no streamed body)."""

from __future__ import annotations

from typing import Any

from mitmproxy import contentviews
from mitmproxy import http

from modelmux.addons.notes import find_notes
from modelmux.replay import transcript

OVERVIEW_PATH = "/modelmux/overview"  # the gateway's own page of its providers and usage (LocalAPI)


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
        message, flow = metadata.http_message, metadata.flow
        overview = overview_url(flow) if isinstance(flow, http.HTTPFlow) else None
        if isinstance(message, http.Request):
            return "\n\n".join(_request_blocks(data, message, notes, overview))
        return "\n\n".join(_response_blocks(data, metadata.content_type or "", notes, overview))


def _notes(metadata: contentviews.Metadata) -> dict[str, Any] | None:
    flow = metadata.flow
    notes = find_notes(flow) if flow is not None else None
    return notes if notes and ("requested_model" in notes or "summary" in notes) else None


def _request_blocks(data: bytes, request: http.Request, notes: dict[str, Any], overview: str | None) -> list[str]:
    """What went upstream first: it is what people debug, and the client's request (a
    Claude Code one runs to some 800 lines) would push it past mitmweb's "Show more"."""
    content_type = request.headers.get("content-type", "")
    protocol = notes.get("protocol") or "anthropic"
    original = (notes.get("client_request") or {}).get("body")
    blocks = [_about(notes, overview)]
    blocks += [heading(f"sent upstream ({protocol})"), f"{request.method} {request.pretty_url}",
               transcript.pretty(data, content_type)]
    for attempt in _failed(notes):
        blocks += [heading(f"sent to {attempt['provider']}/{attempt['credential']} (failed attempt: "
                           f"{attempt.get('outcome')})"), f"POST {attempt.get('upstream') or '(not sent)'}"]
        body = attempt.get("request_body")
        blocks.append("(the same body as sent upstream above)" if body is None
                      else transcript.pretty(body, "application/json"))
    blocks += [heading("client sent (Anthropic)"),
               "(the same body)" if original is None else transcript.pretty(original, content_type)]
    return blocks


def _response_blocks(data: bytes, content_type: str, notes: dict[str, Any], overview: str | None) -> list[str]:
    blocks = [_about(notes, overview)]
    blocks += [heading("assembled"), "\n".join(transcript.assembled(data, content_type)) or "(nothing)"]
    blocks += [heading("client received (Anthropic)"), transcript.pretty(data, content_type)]
    upstream = notes.get("upstream_response")
    if upstream:
        headers = dict(upstream.get("headers") or [])
        kind = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
        blocks += [heading(f"upstream answered ({notes.get('protocol') or 'anthropic'})"),
                   f"HTTP {upstream.get('status')}", transcript.pretty(upstream.get("body") or b"", kind)]
    for attempt in _failed(notes):
        if attempt.get("response_body") is not None:
            blocks += [heading(f"{attempt['provider']}/{attempt['credential']} answered {attempt.get('outcome')} "
                               "(failed attempt)"), transcript.pretty(attempt["response_body"], "application/json")]
    return blocks


def _failed(notes: dict[str, Any]) -> list[dict[str, Any]]:
    """The relay's attempts before the one the flow shows as its request."""
    return (notes.get("attempts") or [])[:-1] if notes.get("relay") else []


def _about(notes: dict[str, Any], overview: str | None) -> str:
    summary = notes.get("summary") or {}
    lines = [
        f"model: {notes.get('requested_model')} → {notes.get('provider')}/{notes.get('model')}",
        f"route: {notes.get('route')}" + (f" (profile {notes['profile']})" if notes.get("profile") else ""),
        f"credential: {notes.get('credential')}",
    ]
    if summary:
        error = f" {summary['error_type']}" if summary.get("error_type") else ""
        lines.append(f"client got: {summary.get('status') or 'no answer'}{error}"
                     + (f": {notes['error']}" if notes.get("error") else ""))
    attempts = notes.get("attempts") or []
    if len(attempts) > 1 or any("error" in a for a in attempts):
        lines.append("attempts:")
        lines += [f"  {i}. {a['provider']}/{a['credential']} {a.get('outcome', '…')} "
                  f"at {a.get('upstream') or '(not sent)'}" + (f": {a['error']}" if a.get("error") else "")
                  for i, a in enumerate(attempts, 1)]
    if overview:
        lines.append(f"overview: {overview}")
    return "\n".join(lines)


def overview_url(flow: http.HTTPFlow) -> str | None:
    """The gateway's overview page, on the address this flow's client reached it at."""
    address = flow.client_conn.sockname
    if not address:
        return None
    host, port = address[0], address[1]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}{OVERVIEW_PATH}"
