"""Gemini errors → Anthropic errors. Pure.

Gemini answers `{"error": {"code", "message", "status", "details"}}` (google.rpc.Status;
a JSON array of one such object on some endpoints). `status` names the canonical
code, which says more than the HTTP status: an invalid API key is a 400
INVALID_ARGUMENT whose ErrorInfo reason is API_KEY_INVALID. A RESOURCE_EXHAUSTED
answer may carry a RetryInfo `retryDelay` ("37s"), which becomes Retry-After.
"""

from __future__ import annotations

import json
import math
from typing import Any

from modelmux.credentials.cooldowns import delay
from modelmux.errors import GatewayError, gist

STATUSES = {
    "INVALID_ARGUMENT": 400,
    "FAILED_PRECONDITION": 400,  # e.g. "User location is not supported", billing not enabled
    "OUT_OF_RANGE": 400,
    "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INTERNAL": 500,
    "DATA_LOSS": 500,
    "UNIMPLEMENTED": 501,
    "UNAVAILABLE": 529,  # Anthropic's "overloaded": the client retries it
    "DEADLINE_EXCEEDED": 504,
}
# ErrorInfo reasons that say more than their status.
REASONS = {"API_KEY_INVALID": 401, "API_KEY_EXPIRED": 401, "SERVICE_DISABLED": 403, "API_KEY_SERVICE_BLOCKED": 403}
ERROR_TYPES = {499: "api_error"}  # beside modelmux.errors' status table


def error_of(status: int, text: str | bytes) -> GatewayError:
    """The client's error for a Gemini error answer with HTTP `status`."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    try:
        body: Any = json.loads(text)
    except ValueError:
        body = None
    if isinstance(body, list) and body:
        body = body[0]
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return GatewayError(status, f"Gemini answered HTTP {status}: {gist(text)}")
    return error_from(error, status)


def error_from(error: dict[str, Any], status: int | None = None) -> GatewayError:
    """The client's error for a google.rpc.Status object (a whole answer's, or one that
    came inside a stream, where `status` is unknown)."""
    details = [d for d in error.get("details") or () if isinstance(d, dict)]
    reason = next((d.get("reason") for d in details if str(d.get("@type", "")).endswith("ErrorInfo")), None)
    code = error.get("status")
    mapped = REASONS.get(str(reason)) or STATUSES.get(str(code)) or status
    if mapped is None:
        mapped = error["code"] if isinstance(error.get("code"), int) and error["code"] >= 400 else 500
    message = str(error["message"]) if isinstance(error.get("message"), str) and error["message"] else json.dumps(error)
    if isinstance(code, str) and code:
        message = f"{message} ({code})"
    headers: dict[str, str] = {}
    if (seconds := retry_delay(details)) is not None:
        headers["retry-after"] = str(seconds)
    return GatewayError(mapped, message, ERROR_TYPES.get(mapped), headers)


def retry_delay(details: list[dict[str, Any]]) -> int | None:
    """Whole seconds from a RetryInfo detail, rounded up so a retry is never early."""
    for detail in details:
        value = detail.get("retryDelay")
        if str(detail.get("@type", "")).endswith("RetryInfo") and isinstance(value, str):
            seconds = delay(value, 0.0)
            if seconds is not None and seconds >= 0:
                return math.ceil(seconds)
    return None
