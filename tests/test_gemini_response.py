"""Whole Gemini answers and Gemini errors → Anthropic messages and errors."""

from __future__ import annotations

import json

import pytest

from modelmux.errors import GatewayError
from modelmux.translate.gemini import Context, error_of, from_gemini

CONTEXT = Context(model="claude-sonnet-4-5", tool_names={"Bash_1234": "Bash tool"})
ZERO = {"input_tokens": 0, "output_tokens": 0, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0,
        "cache_creation": None, "server_tool_use": None, "service_tier": None, "inference_geo": None,
        "output_tokens_details": None}


def test_whole_body():
    body = {
        "candidates": [{"content": {"role": "model", "parts": [
            {"text": "**Planning**\nList the files.", "thought": True},
            {"text": "Here you go.", "thoughtSignature": "U0lH"},
            {"functionCall": {"name": "Bash_1234", "args": {"command": "ls"}}},
            {"functionCall": {"name": "Read"}},
        ]}, "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 1200, "cachedContentTokenCount": 1000, "candidatesTokenCount": 30,
                          "thoughtsTokenCount": 12, "totalTokenCount": 1242},
        "modelVersion": "gemini-2.5-pro",
    }  # fmt: skip
    message = from_gemini(body, CONTEXT)
    assert message.pop("id").startswith("msg_")
    ids = [b.pop("id") for b in message["content"] if b["type"] == "tool_use"]
    assert len(set(ids)) == 2 and all(i.startswith("toolu_") for i in ids)
    assert message == {
        "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "stop_sequence": None,
        "stop_details": None, "container": None,
        "content": [
            {"type": "thinking", "thinking": "**Planning**\nList the files.", "signature": "gemini-next:U0lH"},
            {"type": "text", "text": "Here you go.", "citations": None},
            {"type": "tool_use", "name": "Bash tool", "input": {"command": "ls"}, "caller": {"type": "direct"}},
            {"type": "tool_use", "name": "Read", "input": {}, "caller": {"type": "direct"}},
        ],
        "stop_reason": "tool_use",
        "usage": {**ZERO, "input_tokens": 200, "output_tokens": 42, "cache_read_input_tokens": 1000,
                  "output_tokens_details": {"thinking_tokens": 12}},
    }  # fmt: skip


def test_whole_body_probe_has_no_empty_text_block():
    body = {"candidates": [{"content": {"role": "model"}, "finishReason": "MAX_TOKENS"}], "usageMetadata": {"promptTokenCount": 9}}
    message = from_gemini(body, CONTEXT)
    assert (message["content"], message["stop_reason"], message["usage"]["input_tokens"]) == ([], "max_tokens", 9)


def test_whole_blocked_prompt_and_filtered_answer_are_refusals_that_say_why():
    """Said where Anthropic says why it refused (stop_details), not as text the model never wrote."""
    blocked = from_gemini({"promptFeedback": {"blockReason": "SAFETY"}}, CONTEXT)
    assert (blocked["stop_reason"], blocked["content"], blocked["stop_details"]) == (
        "refusal", [], {"type": "refusal", "category": None, "explanation": "Gemini blocked the prompt: SAFETY"})
    filtered = from_gemini({"candidates": [{"finishReason": "SAFETY", "safetyRatings": []}]}, CONTEXT)
    assert (filtered["content"], filtered["usage"], filtered["stop_details"]) == (
        [], ZERO, {"type": "refusal", "category": None, "explanation": "Gemini stopped: SAFETY"})


def test_a_whole_answer_that_failed_is_an_error_not_an_answer_with_a_note():
    body = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": "TOO_MANY_TOOL_CALLS"}]}
    with pytest.raises(GatewayError) as raised:
        from_gemini(body, CONTEXT)
    assert (raised.value.status, raised.value.error_type, raised.value.message) == (
        502, "api_error", "the upstream's answer is broken: Gemini stopped with finishReason 'TOO_MANY_TOOL_CALLS' "
                          "(it called too many tools in a row)")


# -- errors ---------------------------------------------------------------------------


def gemini_error(code: int, status: str, message: str = "m", details: list | None = None) -> str:
    return json.dumps({"error": {"code": code, "message": message, "status": status, "details": details or []}})


@pytest.mark.parametrize("http, status, ours, kind", [
    (400, "INVALID_ARGUMENT", 400, "invalid_request_error"),
    (400, "FAILED_PRECONDITION", 400, "invalid_request_error"),
    (401, "UNAUTHENTICATED", 401, "authentication_error"),
    (403, "PERMISSION_DENIED", 403, "permission_error"),
    (404, "NOT_FOUND", 404, "not_found_error"),
    (429, "RESOURCE_EXHAUSTED", 429, "rate_limit_error"),
    (500, "INTERNAL", 500, "api_error"),
    (503, "UNAVAILABLE", 529, "overloaded_error"),
    (504, "DEADLINE_EXCEEDED", 504, "timeout_error"),
    (499, "CANCELLED", 499, "api_error"),
])  # fmt: skip
def test_error_statuses(http, status, ours, kind):
    error = error_of(http, gemini_error(http, status, "what went wrong"))
    assert (error.status, error.error_type, error.message, error.headers) == (ours, kind, f"what went wrong ({status})", {})
    assert json.loads(error.body()) == {"type": "error", "error": {"type": kind, "message": f"what went wrong ({status})"}}


def test_an_invalid_key_is_an_authentication_error():
    details = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}]
    error = error_of(400, gemini_error(400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key.", details))
    assert (error.status, error.error_type) == (401, "authentication_error")


def test_a_rate_limit_names_its_retry_delay():
    details = [{"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
               {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}]  # fmt: skip
    assert error_of(429, gemini_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded", details)).headers == {"retry-after": "37"}
    details = [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.2s"}]
    assert error_of(429, gemini_error(429, "RESOURCE_EXHAUSTED", details=details).encode()).headers == {"retry-after": "1"}


def test_error_bodies_in_other_shapes():
    as_list = "[" + gemini_error(503, "UNAVAILABLE", "The model is overloaded.") + "]"
    assert (error_of(503, as_list).status, error_of(503, as_list).message) == (529, "The model is overloaded. (UNAVAILABLE)")
    html = error_of(502, "<html><body><h1>502 Bad Gateway</h1></body></html>")
    assert (html.status, html.error_type, html.message) == (502, "api_error", "Gemini answered HTTP 502: 502 Bad Gateway")
    no_status = error_of(418, json.dumps({"error": {"code": 418, "message": "odd"}}))
    assert (no_status.status, no_status.message) == (418, "odd")


@pytest.mark.parametrize("body, status, message", [
    (json.loads(gemini_error(503, "UNAVAILABLE", "The model is overloaded.")), 529, "The model is overloaded. (UNAVAILABLE)"),
    ({"usageMetadata": {"promptTokenCount": 3}, "modelVersion": "gemini-2.5-pro"}, 502,
     "the upstream's answer is broken: it has no candidate"),
])  # fmt: skip
def test_an_http_200_that_holds_no_answer_is_an_error(body, status, message):
    with pytest.raises(GatewayError) as raised:
        from_gemini(body, CONTEXT)
    assert (raised.value.status, raised.value.message) == (status, message)
