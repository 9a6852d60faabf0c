"""Bodies as the content view shows them: SSE split into events and an Anthropic
answer assembled, streamed or whole."""

from __future__ import annotations

import json

from upstream import message, message_events, sse

from modelmux.replay.transcript import assembled, events, pretty
from modelmux.translate.messages import error_event

SSE = "text/event-stream"


def tool_and_thinking_stream() -> bytes:
    start = {"type": "message_start", "message": {"id": "m1", "model": "x", "content": [], "usage": {"input_tokens": 9}}}
    return b"".join([
        sse("message_start", start),
        sse("content_block_start", {"type": "content_block_start", "index": 0,
                                    "content_block": {"type": "thinking", "thinking": ""}}),
        sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                    "delta": {"type": "thinking_delta", "thinking": "Let me "}}),
        sse("content_block_delta", {"type": "content_block_delta", "index": 0,
                                    "delta": {"type": "thinking_delta", "thinking": "look."}}),
        sse("content_block_start", {"type": "content_block_start", "index": 1,
                                    "content_block": {"type": "tool_use", "id": "t1", "name": "Bash", "input": {}}}),
        sse("content_block_delta", {"type": "content_block_delta", "index": 1,
                                    "delta": {"type": "input_json_delta", "partial_json": '{"command": '}}),
        sse("content_block_delta", {"type": "content_block_delta", "index": 1,
                                    "delta": {"type": "input_json_delta", "partial_json": '"ls"}'}}),
        b": a comment\n\n",
        sse("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 4}}),
        sse("message_stop", {"type": "message_stop"}),
    ])


def test_a_stream_is_assembled_into_its_blocks():
    assert assembled(tool_and_thinking_stream(), SSE) == [
        "[thinking] Let me look.",
        '[tool_use Bash] {"command": "ls"}',
        '[stop_reason tool_use] usage {"input_tokens": 9, "output_tokens": 4}',
    ]


def test_a_whole_message_and_a_text_stream_assemble_alike():
    whole = assembled(json.dumps(message("m", "Hi there")).encode())
    streamed = assembled(b"".join(message_events("m", "Hi there")), SSE)
    assert whole == streamed == ["Hi there", '[stop_reason end_turn] usage {"input_tokens": 12, "output_tokens": 7}']


def test_the_usage_shows_what_was_counted_not_the_nulls():
    whole = message("m", "Hi")
    whole["usage"] |= {"cache_read_input_tokens": 0, "cache_creation": None, "service_tier": None,
                       "output_tokens_details": {"thinking_tokens": 2}}
    assert assembled(json.dumps(whole).encode())[-1] == (
        '[stop_reason end_turn] usage {"input_tokens": 12, "output_tokens": 7, "cache_read_input_tokens": 0, '
        '"output_tokens_details": {"thinking_tokens": 2}}')


def test_an_error_is_what_assembles():
    body = b"".join(message_events("m", "Half an")[:3]) + error_event("overloaded_error", "busy")
    assert assembled(body, SSE) == ["Half ", '[stop_reason None] usage {"input_tokens": 12, "output_tokens": 1}',
                                    "[error overloaded_error] busy"]
    assert assembled(b'{"type": "error", "error": {"type": "api_error", "message": "x"}}') == ["[error api_error] x"]


def test_events_skip_comments_and_keep_non_json_data():
    assert events(b": keep-alive\n\ndata: [DONE]\n\nevent: ping\r\ndata: {}\r\n\r\n") == [(None, "[DONE]"), ("ping", {})]


def test_pretty_indents_json_and_splits_streams():
    assert pretty(b'{"a": [1]}') == '{\n  "a": [\n    1\n  ]\n}'
    assert pretty(b"event: ping\ndata: {}\n\ndata: [DONE]\n\n", SSE) == "event: ping\n{}\n\n[DONE]"
    assert pretty(b"\xffnot json") == "\ufffdnot json"
