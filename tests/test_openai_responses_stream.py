"""OpenAI Responses streams → Anthropic SSE, fed at every chunking, checked by an
event-grammar validator and by the anthropic SDK's own accumulator."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sse_checks import accumulated, events, feed, validate

from modelmux.config.types import Shape
from modelmux.translate.openai_responses import Context, ResponsesStream, from_responses, to_responses
from modelmux.translate.openai_responses.reasoning_state import Reasoning, pack

LONG = "mcp__plugin_superpowers_chrome__use_browser_with_a_really_long_name_indeed"
CONTEXT = Context(model="claude-sonnet-4-5", tool_names={"short_x": LONG}, input_tokens=321, upstream_model="gpt-test")
USAGE = {"input_tokens": 100, "input_tokens_details": {"cached_tokens": 60}, "output_tokens": 20,
         "output_tokens_details": {"reasoning_tokens": 12}, "total_tokens": 120}
# The usage fields no Responses server has counts for (the tier: none a stream says in time).
UNSAID = {"cache_creation": None, "server_tool_use": None, "service_tier": None, "inference_geo": None}
ANTHROPIC_USAGE = {"input_tokens": 40, "output_tokens": 20, "cache_read_input_tokens": 60, "cache_creation_input_tokens": 0,
                   "output_tokens_details": {"thinking_tokens": 12}, **UNSAID}
NO_USAGE = {"input_tokens": 0, "output_tokens": 0, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0,
            "output_tokens_details": None, **UNSAID}
SIGNATURE = pack(Reasoning("rs_1", "gAAAA-enc", "gpt-test"))


def ev(kind: str, **fields: Any) -> bytes:
    """One event as OpenAI frames it: the type twice, as the event name and in the data."""
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **fields}, ensure_ascii=False)}\n\n".encode()


def response(status: str = "completed", output: list | None = None, usage: dict | None = USAGE, **fields: Any) -> dict:
    return {"id": "resp_1", "object": "response", "model": "gpt-test-2025", "status": status, "error": None,
            "incomplete_details": None, "output": output or [], "usage": usage, **fields}


REASONING = {"id": "rs_1", "type": "reasoning", "encrypted_content": "gAAAA-enc", "summary": [
    {"type": "summary_text", "text": "Let me think."}, {"type": "summary_text", "text": "Then act."}]}
MESSAGE = {"id": "msg_1", "type": "message", "status": "completed", "role": "assistant",
           "content": [{"type": "output_text", "text": "Voilà — 日本語 ✓", "annotations": []}]}
CALL_A = {"id": "fc_1", "type": "function_call", "status": "completed", "call_id": "call_a", "name": "Bash", "arguments": '{"command":"ls"}'}
CALL_B = {"id": "fc_2", "type": "function_call", "status": "completed", "call_id": "functions.Read:1", "name": "short_x",
          "arguments": '{"path":"/tmp/a"}'}
OUTPUT = [REASONING, MESSAGE, CALL_A, CALL_B]

# A stream with everything: a keep-alive, a reasoning summary in two parts, text with
# multi-byte characters, a call streamed by deltas and one whose arguments come only
# in function_call_arguments.done, and the usage in response.completed.
FULL = [
    ev("response.created", sequence_number=0, response=response("in_progress", usage=None)),
    ev("response.in_progress", sequence_number=1, response=response("in_progress", usage=None)),
    b": keep-alive\n\n",
    ev("response.output_item.added", output_index=0, item={"id": "rs_1", "type": "reasoning", "summary": []}),
    ev("response.reasoning_summary_part.added", item_id="rs_1", output_index=0, summary_index=0, part={"type": "summary_text", "text": ""}),
    ev("response.reasoning_summary_text.delta", item_id="rs_1", output_index=0, summary_index=0, delta="Let me "),
    ev("response.reasoning_summary_text.delta", item_id="rs_1", output_index=0, summary_index=0, delta="think."),
    ev("response.reasoning_summary_text.done", item_id="rs_1", output_index=0, summary_index=0, text="Let me think."),
    ev("response.reasoning_summary_part.done", item_id="rs_1", output_index=0, summary_index=0, part={"type": "summary_text", "text": "Let me think."}),
    ev("response.reasoning_summary_part.added", item_id="rs_1", output_index=0, summary_index=1, part={"type": "summary_text", "text": ""}),
    ev("response.reasoning_summary_text.delta", item_id="rs_1", output_index=0, summary_index=1, delta="Then act."),
    ev("response.reasoning_summary_text.done", item_id="rs_1", output_index=0, summary_index=1, text="Then act."),
    ev("response.output_item.done", output_index=0, item=REASONING),
    ev("response.output_item.added", output_index=1, item={**MESSAGE, "status": "in_progress", "content": []}),
    ev("response.content_part.added", item_id="msg_1", output_index=1, content_index=0, part={"type": "output_text", "text": "", "annotations": []}),
    ev("response.output_text.delta", item_id="msg_1", output_index=1, content_index=0, delta="Voilà — "),
    ev("response.output_text.delta", item_id="msg_1", output_index=1, content_index=0, delta="日本語 ✓"),
    ev("response.output_text.done", item_id="msg_1", output_index=1, content_index=0, text="Voilà — 日本語 ✓"),
    ev("response.content_part.done", item_id="msg_1", output_index=1, content_index=0, part=MESSAGE["content"][0]),
    ev("response.output_item.done", output_index=1, item=MESSAGE),
    ev("response.output_item.added", output_index=2, item={**CALL_A, "status": "in_progress", "arguments": ""}),
    ev("response.function_call_arguments.delta", item_id="fc_1", output_index=2, delta='{"comm'),
    ev("response.function_call_arguments.delta", item_id="fc_1", output_index=2, delta='and":"ls"}'),
    ev("response.function_call_arguments.done", item_id="fc_1", output_index=2, arguments='{"command":"ls"}'),
    ev("response.output_item.done", output_index=2, item=CALL_A),
    ev("response.output_item.added", output_index=3, item={**CALL_B, "status": "in_progress", "arguments": ""}),
    ev("response.function_call_arguments.done", item_id="fc_2", output_index=3, arguments='{"path":"/tmp/a"}'),
    ev("response.output_item.done", output_index=3, item=CALL_B),
    ev("response.completed", sequence_number=99, response=response(output=OUTPUT)),
]
FULL_MESSAGE = {
    "model": "claude-sonnet-4-5",
    "content": [
        {"type": "thinking", "thinking": "Let me think.\n\nThen act.", "signature": SIGNATURE},
        {"type": "text", "text": "Voilà — 日本語 ✓", "citations": None},
        {"type": "tool_use", "id": "call_a", "name": "Bash", "input": {"command": "ls"}, "caller": {"type": "direct"}},
        {"type": "tool_use", "id": "mmx_ZnVuY3Rpb25zLlJlYWQ6MQ", "name": LONG, "input": {"path": "/tmp/a"},
         "caller": {"type": "direct"}},
    ],
    "stop_reason": "tool_use",
    "usage": ANTHROPIC_USAGE,
}
WHOLE_MESSAGE = {**FULL_MESSAGE, "type": "message", "role": "assistant", "stop_sequence": None, "stop_details": None,
                 "container": None}


def run(pieces: list[bytes], sizes: list[int] | None = None) -> list[bytes]:
    return feed(ResponsesStream(CONTEXT), b"".join(pieces), sizes)


def final(pieces: list[bytes]) -> dict:
    """The message a client ends up with, once the events passed the grammar check."""
    sequence = events(run(pieces))
    validate(sequence)
    return accumulated(sequence)


def completed(output: list | None = None, status: str = "completed", **fields: Any) -> bytes:
    return ev(f"response.{status}", response=response(status, output or [], **fields))


def test_full_stream():
    sequence = events(run(FULL))
    validate(sequence)
    assert [e["type"] for e in sequence] == [
        "message_start", "ping",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_delta", "content_block_delta",
        "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_stop",
        "message_delta", "message_stop",
    ]
    assert [e["delta"] for e in sequence[3:7]] == [
        {"type": "thinking_delta", "thinking": "Let me "}, {"type": "thinking_delta", "thinking": "think."},
        {"type": "thinking_delta", "thinking": "\n\nThen act."},
        {"type": "signature_delta", "signature": SIGNATURE},
    ]
    assert sequence[0]["message"]["model"] == "claude-sonnet-4-5"
    assert sequence[0]["message"]["usage"]["input_tokens"] == 321  # modelmux's estimate until the real count
    assert accumulated(sequence) == FULL_MESSAGE


@given(st.lists(st.integers(min_value=1, max_value=97), min_size=1, max_size=30), st.booleans())
@settings(max_examples=300, deadline=None)
def test_any_chunking_and_framing_gives_the_same_events(sizes, crlf):
    pieces = [p.replace(b"\n", b"\r\n") for p in FULL] if crlf else FULL
    without_ids = lambda seq: [{**e, "message": {**e["message"], "id": "x"}} if e["type"] == "message_start" else e for e in seq]  # noqa: E731
    assert without_ids(events(run(pieces, sizes))) == without_ids(events(run(FULL)))


def test_the_whole_answer_is_the_same_message():
    message = from_responses(response(output=OUTPUT), CONTEXT)
    assert message.pop("id").startswith("msg_")
    assert message == WHOLE_MESSAGE


def test_reasoning_state_makes_the_round_trip_through_the_client():
    """The client keeps only {type, thinking, signature}; the next request replays the item."""
    thinking = final(FULL)["content"][0]
    body = {"messages": [{"role": "user", "content": "go"}, {"role": "assistant", "content": [thinking]},
                         {"role": "user", "content": "more"}]}
    replayed = {"type": "reasoning", "summary": [], "encrypted_content": "gAAAA-enc"}
    assert to_responses(body, Shape(), "gpt-test")["input"][1] == replayed
    # after a switch to another upstream model the state cannot be decrypted: not sent
    assert [i["type"] for i in to_responses(body, Shape(), "gpt-other")["input"]] == ["message", "message"]


def test_reasoning_without_a_summary_still_carries_its_state():
    sealed = {"id": "rs_1", "type": "reasoning", "summary": [], "encrypted_content": "gAAAA-enc"}
    pieces = [ev("response.output_item.added", item={"id": "rs_1", "type": "reasoning", "summary": []}),
              ev("response.output_item.done", item=sealed),
              ev("response.output_item.added", item={"id": "rs_2", "type": "reasoning", "summary": []}),
              ev("response.output_item.done", item={"id": "rs_2", "type": "reasoning", "summary": []}),  # nothing to carry
              completed([sealed], usage=None)]
    expected = [{"type": "thinking", "thinking": "", "signature": SIGNATURE}]
    assert final(pieces)["content"] == expected
    assert from_responses(response(output=[sealed, {"id": "rs_2", "type": "reasoning", "summary": []}]), CONTEXT)["content"] == expected


def test_raw_reasoning_text_is_thinking_too():
    """gpt-oss behind vLLM and the like stream the reasoning itself, with no encrypted state."""
    pieces = [ev("response.output_item.added", item={"id": "rs_1", "type": "reasoning", "summary": []}),
              ev("response.reasoning_text.delta", item_id="rs_1", content_index=0, delta="raw "),
              ev("response.reasoning_text.delta", item_id="rs_1", content_index=0, delta="thoughts"),
              ev("response.output_item.done", item={"id": "rs_1", "type": "reasoning", "summary": [],
                                                    "content": [{"type": "reasoning_text", "text": "raw thoughts"}]}),
              completed()]
    assert final(pieces)["content"] == [{"type": "thinking", "thinking": "raw thoughts", "signature": ""}]


def test_done_events_fill_in_what_deltas_did_not_bring_and_repeat_nothing():
    pieces = [
        ev("response.output_item.added", item={"id": "msg_1", "type": "message", "content": []}),
        ev("response.output_text.delta", item_id="msg_1", content_index=0, delta="Hel"),
        ev("response.output_text.done", item_id="msg_1", content_index=0, text="Hello"),
        ev("response.output_item.done", item={**MESSAGE, "id": "msg_1", "content": [{"type": "output_text", "text": "Hello"}]}),
        # arguments only in the finished item: no delta, no arguments.done
        ev("response.output_item.added", item={**CALL_A, "arguments": ""}),
        ev("response.output_item.done", item=CALL_A),
        completed(usage=None),
    ]
    assert final(pieces)["content"] == [
        {"type": "text", "text": "Hello", "citations": None},
        {"type": "tool_use", "id": "call_a", "name": "Bash", "input": {"command": "ls"}, "caller": {"type": "direct"}},
    ]


def test_items_never_announced_are_written_anyway():
    """LM Studio streams text without output_item.added; other servers put everything in
    the final response only."""
    lm_studio = [ev("response.output_text.delta", item_id="msg_9", content_index=0, delta="hi"),
                 ev("response.output_text.delta", item_id="msg_9", content_index=0, delta=" there"),
                 completed([{**MESSAGE, "id": "msg_9", "content": [{"type": "output_text", "text": "hi there"}]}])]
    assert final(lm_studio)["content"] == [{"type": "text", "text": "hi there", "citations": None}]
    only_final = [ev("response.created", response=response("in_progress")), completed(OUTPUT)]
    assert final(only_final) == FULL_MESSAGE


def test_interleaved_items_stay_whole_and_in_order():
    pieces = [
        ev("response.output_item.added", item={**CALL_A, "arguments": ""}),
        ev("response.function_call_arguments.delta", item_id="fc_1", delta='{"command":'),
        ev("response.output_item.added", item={**CALL_B, "arguments": ""}),
        ev("response.function_call_arguments.delta", item_id="fc_2", delta='{"path":"/tmp/a"}'),
        ev("response.output_item.done", item=CALL_B),
        ev("response.function_call_arguments.delta", item_id="fc_1", delta='"ls"}'),
        ev("response.output_item.done", item=CALL_A),
        completed(),
    ]
    assert final(pieces)["content"] == FULL_MESSAGE["content"][2:]


def test_a_tool_call_waits_for_its_name():
    stream = ResponsesStream(CONTEXT)
    stream.feed(b"")
    assert stream.feed(ev("response.function_call_arguments.delta", item_id="fc_1", delta='{"a":1}')) == []
    started = events(stream.feed(ev("response.output_item.done", item={**CALL_A, "arguments": '{"a":1}'})))
    assert [e["type"] for e in started] == ["content_block_start", "content_block_delta", "content_block_stop"]
    assert (started[0]["content_block"]["id"], started[1]["delta"]["partial_json"]) == ("call_a", '{"a":1}')


def test_the_model_probe_is_a_clean_max_tokens_answer():
    pieces = [ev("response.created", response=response("in_progress")),
              ev("response.output_item.added", item={**MESSAGE, "content": []}),
              completed(status="incomplete", incomplete_details={"reason": "max_output_tokens"}, usage={"input_tokens": 9, "output_tokens": 16})]
    assert final(pieces) == {"model": "claude-sonnet-4-5", "content": [], "stop_reason": "max_tokens",
                             "usage": {**NO_USAGE, "input_tokens": 9, "output_tokens": 16}}


REFUSAL = {"id": "msg_2", "type": "message", "role": "assistant", "content": [{"type": "refusal", "refusal": "I can't help with that."}]}


@pytest.mark.parametrize("pieces, reason", [
    ([completed([MESSAGE])], "end_turn"),
    ([completed([MESSAGE, CALL_A])], "tool_use"),
    ([completed([MESSAGE], "incomplete", incomplete_details={"reason": "max_output_tokens"})], "max_tokens"),
    ([completed([MESSAGE], "incomplete", incomplete_details={"reason": "content_filter"})], "refusal"),
    ([ev("response.refusal.delta", item_id="msg_2", content_index=0, delta="I can't help with that."), completed()], "refusal"),
    ([completed([REFUSAL])], "refusal"),
])
def test_stop_reasons(pieces, reason):
    assert final(pieces)["stop_reason"] == reason
    whole = json.loads(pieces[-1].split(b"data: ", 1)[1])["response"]
    if whole["output"]:
        assert from_responses(whole, CONTEXT)["stop_reason"] == reason


def test_a_stream_that_breaks_off_ends_with_an_error_not_a_fake_stop():
    sequence = events(run(FULL[:16]))  # up to the first text delta
    assert [e["type"] for e in sequence][-3:] == ["content_block_start", "content_block_delta", "error"]
    assert sequence[-1]["error"] == {"type": "api_error", "message": "the upstream's stream ended before the answer was complete"}


@pytest.mark.parametrize("event, error", [
    (ev("response.failed", response=response("failed", error={"code": "rate_limit_exceeded", "message": "Slow down"})),
     {"type": "rate_limit_error", "message": "the upstream failed: Slow down"}),
    (ev("response.failed", response=response("failed", error={"code": "server_error", "message": "Oops"})),
     {"type": "api_error", "message": "the upstream failed: Oops"}),
    (ev("error", code="invalid_image_url", message="Bad image", param=None, sequence_number=3),
     {"type": "invalid_request_error", "message": "the upstream failed: Bad image"}),
    (ev("error", error={"type": "insufficient_quota", "code": "insufficient_quota", "message": "Out of credit"}),
     {"type": "rate_limit_error", "message": "the upstream failed: Out of credit"}),
    (ev("error", code="context_length_exceeded", message="Too long"),
     {"type": "invalid_request_error", "message": "prompt is too long; the upstream failed: Too long"}),
])
def test_an_upstream_failure_mid_stream_becomes_an_error_event(event, error):
    stream = ResponsesStream(CONTEXT)
    sequence = events(feed(stream, b"".join([*FULL[:17], event, *FULL[17:]])))
    assert sequence[-1] == {"type": "error", "error": error}
    assert [e["type"] for e in sequence].count("error") == 1 and "message_stop" not in [e["type"] for e in sequence]
    assert stream.error is not None and (stream.error.error_type, stream.error.message) == (error["type"], error["message"])
