"""Whole OpenAI Responses answers → Anthropic messages, and failures → Anthropic errors."""

from __future__ import annotations

import json

import pytest

from modelmux.errors import GatewayError
from modelmux.translate.openai_responses import Context, from_responses
from modelmux.translate.openai_responses.response import usage

CONTEXT = Context(model="claude-haiku-4-5", upstream_model="gpt-test")


def test_calls_refusals_and_skipped_items():
    body = {"status": "completed", "output": [
        {"type": "web_search_call", "id": "ws_1", "status": "completed", "action": {"type": "search", "query": "x"}},
        {"type": "reasoning", "id": "rs_1", "summary": []},  # no summary, no encrypted content: nothing to show or carry
        {"type": "message", "id": "msg_1", "role": "assistant", "content": [
            {"type": "output_text", "text": "Part one, ", "annotations": []}, {"type": "output_text", "text": "part two."}]},
        {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "Edit", "arguments": '{"file":"a"}'},
        {"type": "function_call", "id": "fc_2", "call_id": "call_2", "name": "Grep", "arguments": {"pattern": "x"}},
        {"type": "function_call", "id": "fc_3", "call_id": "call_3", "name": "Noop", "arguments": ""},
    ], "usage": {"input_tokens": 10, "output_tokens": 5}}
    message = from_responses(body, CONTEXT)
    assert message["content"] == [
        {"type": "text", "text": "Part one, part two.", "citations": None},
        {"type": "tool_use", "id": "call_1", "name": "Edit", "input": {"file": "a"}, "caller": {"type": "direct"}},
        {"type": "tool_use", "id": "call_2", "name": "Grep", "input": {"pattern": "x"}, "caller": {"type": "direct"}},
        {"type": "tool_use", "id": "call_3", "name": "Noop", "input": {}, "caller": {"type": "direct"}},
    ]
    assert (message["model"], message["stop_reason"]) == ("claude-haiku-4-5", "tool_use")
    assert message["usage"] == {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 0,
                                "cache_creation_input_tokens": 0, "cache_creation": None, "server_tool_use": None,
                                "service_tier": None, "inference_geo": None, "output_tokens_details": None}


NOTHING_ELSE = {"cache_creation": None, "server_tool_use": None, "inference_geo": None}  # no Responses server says these


def test_usage_counts_are_disjoint_and_the_reasoning_apart():
    counts = {"input_tokens": 5000, "input_tokens_details": {"cached_tokens": 4096}, "output_tokens": 300,
              "output_tokens_details": {"reasoning_tokens": 256}}
    assert usage(counts, "priority") == {
        "input_tokens": 904, "output_tokens": 300, "cache_read_input_tokens": 4096, "cache_creation_input_tokens": 0,
        "service_tier": "priority", "output_tokens_details": {"thinking_tokens": 256}, **NOTHING_ELSE}
    assert usage(None) == {"input_tokens": 0, "output_tokens": 0, "cache_read_input_tokens": 0,
                           "cache_creation_input_tokens": 0, "service_tier": None, "output_tokens_details": None,
                           **NOTHING_ELSE}


def test_a_whole_answer_says_its_service_tier():
    body = {"status": "completed", "output": [], "service_tier": "default", "usage": {"input_tokens": 1, "output_tokens": 1}}
    assert from_responses(body, CONTEXT)["usage"]["service_tier"] == "standard"


@pytest.mark.parametrize("body, status, error_type, message", [
    ({"status": "failed", "output": [], "error": {"code": "server_error", "message": "The server had an error"}},
     500, "api_error", "the upstream failed: The server had an error"),
    ({"status": "failed", "output": [], "error": {"code": "rate_limit_exceeded", "message": "Slow down"}},
     429, "rate_limit_error", "the upstream failed: Slow down"),
    ({"status": "failed", "output": [], "error": {"code": "image_too_large", "message": "Too big"}},
     400, "invalid_request_error", "the upstream failed: Too big"),
    ({"status": "failed", "output": [], "error": None}, 500, "api_error", "the upstream failed: no reason given"),
    ({"error": {"type": "invalid_request_error", "code": None, "param": "input", "message": "Bad input"}},
     400, "invalid_request_error", "the upstream failed: Bad input"),
    ({"status": "cancelled", "output": []}, 500, "api_error", "the upstream cancelled the response"),
    ({"id": "resp_1", "object": "response"}, 502, "api_error", "the upstream's answer is broken: it has no output"),
    ({"status": "completed", "output": [{"type": "function_call", "call_id": "c1", "name": "Bash", "arguments": '{"a":'}]},
     502, "api_error", "the upstream's answer is broken: the arguments of its call to 'Bash' are not a JSON object: "
                       "'{\"a\":'"),
    ({"status": "failed", "output": [], "error": {"code": "context_length_exceeded", "message": "Your input exceeds the "
                                                  "context window of this model."}},
     400, "invalid_request_error", "the upstream failed: Your input exceeds the context window of this model."),
])
def test_a_failed_answer_is_an_anthropic_error(body, status, error_type, message):
    with pytest.raises(GatewayError) as raised:
        from_responses(body, CONTEXT)
    assert (raised.value.status, raised.value.error_type, raised.value.message) == (status, error_type, message)
    assert json.loads(raised.value.body()) == {"type": "error", "error": {"type": error_type, "message": message}}
