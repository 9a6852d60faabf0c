"""Local answers: responses modelmux makes itself instead of asking an upstream."""

from __future__ import annotations

import json
from typing import Any

from mitmproxy import http

from modelmux.addons.notes import ensure_notes
from modelmux.errors import GatewayError

JSON = {"content-type": "application/json"}


def answer(flow: http.HTTPFlow, status: int, body: bytes, headers: dict[str, str]) -> None:
    """Answer without asking any upstream; marked so no addon takes it for an upstream's."""
    if flow.request.method == "HEAD":
        # The headers of the answer a GET would get, and no body: a body after them would
        # be read as the next response on a kept-alive connection.
        flow.response = http.Response.make(status, b"", headers)
        flow.response.headers["content-length"] = str(len(body))
    else:
        flow.response = http.Response.make(status, body, headers)
    ensure_notes(flow)["local"] = True


def answer_json(flow: http.HTTPFlow, status: int, data: Any) -> None:
    answer(flow, status, json.dumps(data, ensure_ascii=False).encode(), JSON)


def answer_error(flow: http.HTTPFlow, error: GatewayError) -> None:
    """An Anthropic error envelope, marked so the dashboard shows the failure."""
    answer(flow, error.status, error.body(), {**JSON, **error.headers})
    mark_failed(flow, error)


def mark_failed(flow: http.HTTPFlow, error: GatewayError) -> None:
    """The flow shows `error`, modelmux's, in the dashboard: marked, in its comment and notes."""
    ensure_notes(flow)["error"] = error.message
    flow.marked = ":warning:"
    flow.comment = f"modelmux {error.status} {error.error_type}: {error.message}"


def as_kept(response: http.Response, body: bytes | None) -> dict:
    """An upstream's answer as the record keeps it (the Dashboard's `upstream_response`)."""
    return {"status": response.status_code, "headers": header_fields(response.headers), "body": body}


def header_fields(headers: http.Headers) -> list[list[str]]:
    """Headers as plain [name, value] pairs, as flow metadata can hold them."""
    return [[name.decode("latin-1"), value.decode("latin-1")] for name, value in headers.fields]


def loggable_url(flow: http.HTTPFlow) -> str:
    """The request's URL without its query string, which may carry a provider's key."""
    request = flow.request
    return f"{request.scheme}://{request.host}:{request.port}{request_path(flow)}"


def request_path(flow: http.HTTPFlow) -> str:
    """The path without its query string (Claude Code sends /v1/messages?beta=true)."""
    return flow.request.path.partition("?")[0]
