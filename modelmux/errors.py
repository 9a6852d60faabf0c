"""Anthropic-format errors: the only shape of failure a client of modelmux ever sees.

Status → type follows Anthropic's error table (docs "HTTP errors" and the SDK's
`ErrorObject` union, which includes `timeout_error` for 504).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from modelmux.config.types import Credential
from modelmux.secrets import scrub

ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


def error_type_for(status: int) -> str:
    """The Anthropic error type for an HTTP status; other 4xx are invalid requests, other 5xx api errors."""
    if status in ERROR_TYPES:
        return ERROR_TYPES[status]
    return "invalid_request_error" if 400 <= status < 500 else "api_error"


# The table read backwards; overloaded_error is Anthropic's own 529.
_STATUSES = {error_type: status for status, error_type in ERROR_TYPES.items()}


def status_for(error_type: str) -> int:
    """The HTTP status an Anthropic error type stands for (an error event in a 200 stream
    has none of its own); 500 for a type Anthropic does not define."""
    return _STATUSES.get(error_type, 500)


def error_body(status: int, message: str, error_type: str | None = None) -> bytes:
    """`{"type":"error","error":{"type","message"}}` as JSON bytes."""
    envelope = {
        "type": "error",
        "error": {"type": error_type or error_type_for(status), "message": message},
    }
    return json.dumps(envelope, ensure_ascii=False).encode()


def is_error_envelope(body: bytes) -> bool:
    """True when `body` already is an Anthropic error envelope (so it can pass unchanged)."""
    try:
        parsed = json.loads(body)
    except ValueError:
        return False
    return (
        isinstance(parsed, dict)
        and parsed.get("type") == "error"
        and isinstance(parsed.get("error"), dict)
        and isinstance(parsed["error"].get("type"), str)
        and isinstance(parsed["error"].get("message"), str)
    )


class GatewayError(Exception):
    """A failure modelmux answers itself, before or instead of asking an upstream."""

    def __init__(
        self, status: int, message: str, error_type: str | None = None, headers: dict[str, str] | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.error_type = error_type or error_type_for(status)
        self.headers = headers or {}  # e.g. Retry-After on a 429
        self.code = code  # the upstream's own name for the failure (OpenAI's `code`), when it gave one

    def body(self) -> bytes:
        return error_body(self.status, self.message, self.error_type)


def broken_answer(why: str) -> GatewayError:
    """A translated answer that cannot be given exactly (docs/errors.md, "An answer is
    exact or an error"): 502, so that before the client got anything the failover relay
    counts a failed attempt."""
    return GatewayError(502, f"the upstream's answer is broken: {why}", "api_error")


def untranslatable(what: str) -> GatewayError:
    """A translated answer holding `what`, which an Anthropic message has no place for:
    dropped, the client would get a different answer than the upstream gave."""
    return GatewayError(502, f"the upstream's answer holds {what}, which an Anthropic message cannot hold", "api_error")


SNIPPET_LIMIT = 300
_TAGS = re.compile(r"<[^>]+>")
_SPACE = re.compile(r"\s+")


def upstream_error(provider: str, status: int, reason: str, text: str, credentials: Iterable[Credential]) -> bytes:
    """An upstream's error answer as the client gets it: an Anthropic envelope as it
    came, anything else wrapped in one with the upstream's own words; keys it echoed
    are redacted either way."""
    text = scrub(text, credentials)
    if is_error_envelope(text.encode()):
        return text.encode()
    return error_body(status, f"provider '{provider}' answered HTTP {status} {reason}: {gist(text)}")


def gist(text: str) -> str:
    """The upstream's own words: the message of an OpenAI-style `{"error": {"message"}}`,
    `{"message"}` or `{"detail"}` body, else the text without markup, shortened."""
    try:
        body = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, dict):
        error = body.get("error")
        for candidate in (error.get("message") if isinstance(error, dict) else error, body.get("message"), body.get("detail")):
            if isinstance(candidate, str) and candidate:
                return candidate[:SNIPPET_LIMIT]
    return _SPACE.sub(" ", _TAGS.sub(" ", text)).strip()[:SNIPPET_LIMIT] or "(empty body)"
