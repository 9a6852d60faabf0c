"""Chat Completions answers → Anthropic: whole bodies, and streams fed at every chunking,
checked by an event-grammar validator and by the anthropic SDK's own accumulator."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelmux.errors import GatewayError
from modelmux.translate.openai_chat import ChatStream, Context, from_chat
from sse_checks import accumulated, events, feed, validate

LONG = "mcp__plugin_superpowers_chrome__use_browser_with_a_really_long_name_indeed"
CONTEXT = Context(model="claude-sonnet-4-5", tool_names={"short_x": LONG}, input_tokens=321)


def chunk(delta: dict | None = None, finish: str | None = None, usage: dict | None = None, choices: bool = True) -> bytes:
    body: dict[str, Any] = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "gpt-test"}
    body["choices"] = [{"index": 0, "delta": delta or {}, "finish_reason": finish}] if choices else []
    if usage is not None:
        body["usage"] = usage
    return b"data: " + json.dumps(body, ensure_ascii=False).encode() + b"\n\n"


def call(index: int, id: str | None = None, name: str | None = None, arguments: str | None = None) -> dict:
    fragment: dict[str, Any] = {"index": index, "function": {}}
    if id:
        fragment["id"], fragment["type"] = id, "function"
    if name:
        fragment["function"]["name"] = name
    if arguments is not None:
        fragment["function"]["arguments"] = arguments
    return fragment


USAGE = {"prompt_tokens": 100, "completion_tokens": 20, "prompt_tokens_details": {"cached_tokens": 60}}
# The usage fields no OpenAI server has counts for (or, in a stream, says in time).
UNSAID = {"cache_creation": None, "server_tool_use": None, "service_tier": None, "inference_geo": None,
          "output_tokens_details": None}
DONE = b"data: [DONE]\n\n"

# A stream with everything: keep-alive, reasoning, text with multi-byte characters,
# two parallel tool calls (the second's first chunk whole), the usage-only chunk.
FULL = [
    b": keep-alive\n\n",
    chunk({"role": "assistant", "content": None, "reasoning_content": "Let me "}),
    chunk({"reasoning_content": "think."}),
    chunk({"content": "Voilà — ", "tool_calls": []}),
    chunk({"content": "日本語 ✓"}),
    chunk({"tool_calls": [call(0, "call_a", "Bash", "")]}),
    chunk({"tool_calls": [call(0, arguments='{"comm')]}),
    chunk({"tool_calls": [call(0, arguments='and":"ls"}')]}),
    chunk({"tool_calls": [call(1, "functions.Read:1", "short_x", '{"path":"/tmp/a"}')]}),
    chunk(finish="tool_calls"),
    chunk(choices=False, usage=USAGE),
    DONE,
]
FULL_MESSAGE = {
    "content": [
        {"type": "thinking", "thinking": "Let me think.", "signature": ""},
        {"type": "text", "text": "Voilà — 日本語 ✓", "citations": None},
        {"type": "tool_use", "id": "call_a", "name": "Bash", "input": {"command": "ls"}, "caller": {"type": "direct"}},
        {"type": "tool_use", "id": "mmx_ZnVuY3Rpb25zLlJlYWQ6MQ", "name": LONG, "input": {"path": "/tmp/a"},
         "caller": {"type": "direct"}},
    ],
    "stop_reason": "tool_use",
    "usage": {"input_tokens": 40, "output_tokens": 20, "cache_read_input_tokens": 60, "cache_creation_input_tokens": 0,
              **UNSAID},
}


def run(pieces: list[bytes], sizes: list[int] | None = None) -> list[bytes]:
    """Feed the upstream bytes cut at `sizes` (cycled), then close."""
    return feed(ChatStream(CONTEXT), b"".join(pieces), sizes)


def final(pieces: list[bytes], sizes: list[int] | None = None) -> dict:
    sequence = events(run(pieces, sizes))
    validate(sequence)
    return accumulated(sequence)


def test_full_stream():
    sequence = events(run(FULL))
    validate(sequence)
    assert [e["type"] for e in sequence] == [
        "message_start", "ping",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_stop",
        "message_delta", "message_stop",
    ]
    assert sequence[0]["message"]["model"] == "claude-sonnet-4-5"
    assert sequence[0]["message"]["usage"]["input_tokens"] == 321  # modelmux's estimate until the real count
    assert accumulated(sequence) == {"model": "claude-sonnet-4-5", **FULL_MESSAGE}


@given(st.lists(st.integers(min_value=1, max_value=97), min_size=1, max_size=30), st.booleans())
@settings(max_examples=300, deadline=None)
def test_any_chunking_and_framing_gives_the_same_events(sizes, crlf):
    pieces = [p.replace(b"\n", b"\r\n") for p in FULL] if crlf else FULL
    strip_ids = lambda seq: [{**e, "message": {**e["message"], "id": "x"}} if e["type"] == "message_start" else e for e in seq]  # noqa: E731
    assert strip_ids(events(run(pieces, sizes))) == strip_ids(events(run(FULL)))


def test_interleaved_parallel_calls_stay_whole():
    pieces = [
        chunk({"tool_calls": [call(0, "c0", "A", '{"x":')]}),
        chunk({"tool_calls": [call(1, "c1", "B", '{"y":')]}),
        chunk({"tool_calls": [call(0, arguments="1}")]}),
        chunk({"tool_calls": [call(1, arguments="2}")]}),
        chunk({"content": "done"}),
        chunk(finish="tool_calls", usage=USAGE),
    ]
    assert final(pieces)["content"] == [
        {"type": "tool_use", "id": "c0", "name": "A", "input": {"x": 1}, "caller": {"type": "direct"}},
        {"type": "tool_use", "id": "c1", "name": "B", "input": {"y": 2}, "caller": {"type": "direct"}},
        {"type": "text", "text": "done", "citations": None},
    ]


def test_tool_block_starts_when_its_name_arrives():
    stream = ChatStream(CONTEXT)
    stream.feed(chunk({"tool_calls": [call(0, "c0", None, "")]}))
    assert stream.feed(chunk({"tool_calls": [call(0, arguments='{"a"')]})) == []
    started = events(stream.feed(chunk({"tool_calls": [call(0, name="Bash", arguments=":1}")]})))
    assert [e["type"] for e in started] == ["content_block_start", "content_block_delta"]
    assert started[1]["delta"]["partial_json"] == '{"a":1}'


def test_usage_repeated_on_every_chunk_counts_once():
    pieces = [chunk({"content": "a"}, usage=USAGE), chunk({"content": "b"}, usage=USAGE), chunk(finish="stop", usage=USAGE), DONE]
    assert final(pieces)["usage"] == FULL_MESSAGE["usage"]


def test_usage_says_what_the_upstream_counted_where_anthropic_has_a_place_for_it():
    """OpenAI's cached input, OpenRouter's cache writes (both part of prompt_tokens, never
    of Anthropic's input_tokens), the reasoning within the output; the tier only a whole
    answer can tell (message_delta has no place for it)."""
    counts = {"prompt_tokens": 100, "completion_tokens": 20, "completion_tokens_details": {"reasoning_tokens": 12},
              "prompt_tokens_details": {"cached_tokens": 60, "cache_write_tokens": 25}}
    body = {"choices": [{"message": {"role": "assistant", "content": "x"}, "finish_reason": "stop"}], "usage": counts,
            "service_tier": "default"}
    assert from_chat(body, CONTEXT)["usage"] == {
        "input_tokens": 15, "output_tokens": 20, "cache_read_input_tokens": 60, "cache_creation_input_tokens": 25,
        "cache_creation": None, "server_tool_use": None, "service_tier": "standard", "inference_geo": None,
        "output_tokens_details": {"thinking_tokens": 12}}
    sequence = events(run([chunk({"content": "x"}), chunk(finish="stop"), chunk(usage=counts, choices=False), DONE]))
    assert sequence[-2]["usage"] == {
        "input_tokens": 15, "output_tokens": 20, "cache_creation_input_tokens": 25, "cache_read_input_tokens": 60,
        "output_tokens_details": {"thinking_tokens": 12}, "server_tool_use": None}


@pytest.mark.parametrize("tier, shown", [("default", "standard"), ("priority", "priority"), ("flex", None),
                                         ("scale", None), (None, None), (["default"], None)])
def test_openai_service_tiers_by_anthropic_names(tier, shown):
    body = {"choices": [{"message": {"role": "assistant", "content": "x"}, "finish_reason": "stop"}], "service_tier": tier}
    assert from_chat(body, CONTEXT)["usage"]["service_tier"] == shown


def test_the_model_probe_is_a_clean_max_tokens_answer():
    assert final([chunk({"role": "assistant", "content": ""}), chunk(finish="length"), DONE]) == {
        "model": "claude-sonnet-4-5", "content": [], "stop_reason": "max_tokens",
        "usage": {"input_tokens": 0, "output_tokens": 0, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0,
                  **UNSAID}}


@pytest.mark.parametrize("finish, reason", [("stop", "end_turn"), ("length", "max_tokens"), ("content_filter", "refusal")])
def test_stop_reasons(finish, reason):
    assert final([chunk({"content": "x"}), chunk(finish=finish)])["stop_reason"] == reason


def test_tool_calls_with_finish_stop_are_tool_use():
    assert final([chunk({"tool_calls": [call(0, "c", "A", "{}")]}), chunk(finish="stop"), DONE])["stop_reason"] == "tool_use"


def test_a_stream_that_breaks_off_ends_with_an_error_not_a_fake_stop():
    sequence = events(run([chunk({"content": "partial"})]))
    assert [e["type"] for e in sequence] == ["message_start", "content_block_start", "content_block_delta", "error"]
    assert sequence[-1]["error"] == {"type": "api_error", "message": "the upstream's stream ended before the answer was complete"}


def test_an_upstream_error_mid_stream_becomes_an_error_event():
    error = b'data: {"error": {"message": "Rate limit reached", "type": "rate_limit_exceeded", "code": "rate_limit_exceeded"}}\n\n'
    sequence = events(run([chunk({"content": "x"}), error, chunk({"content": "ignored"}), DONE]))
    assert sequence[-1] == {"type": "error", "error": {"type": "rate_limit_error", "message": "Rate limit reached"}}
    assert "message_stop" not in [e["type"] for e in sequence]


def test_done_without_finish_reason_still_completes():
    assert final([chunk({"content": "hi"}), DONE])["stop_reason"] == "end_turn"


def test_whole_body():
    body = {
        "id": "chatcmpl-9", "object": "chat.completion", "model": "gpt-test",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Voilà", "reasoning_content": "thinking…",
            "tool_calls": [{"id": "call_a", "type": "function", "function": {"name": "Bash", "arguments": '{"command":"ls"}'}},
                           {"id": "functions.Read:1", "type": "function", "function": {"name": "short_x", "arguments": '{"path":"/a"}'}}]}}],
        "usage": USAGE,
    }
    message = from_chat(body, CONTEXT)
    assert message.pop("id").startswith("msg_")
    assert message == {
        "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "stop_sequence": None,
        "stop_details": None, "container": None,
        "content": [
            {"type": "thinking", "thinking": "thinking…", "signature": ""},
            {"type": "text", "text": "Voilà", "citations": None},
            {"type": "tool_use", "id": "call_a", "name": "Bash", "input": {"command": "ls"}, "caller": {"type": "direct"}},
            {"type": "tool_use", "id": "mmx_ZnVuY3Rpb25zLlJlYWQ6MQ", "name": LONG, "input": {"path": "/a"},
             "caller": {"type": "direct"}},
        ],
        "stop_reason": "tool_use",
        "usage": FULL_MESSAGE["usage"],
    }


def test_whole_body_probe_has_no_empty_text_block():
    body = {"choices": [{"finish_reason": "length", "message": {"role": "assistant", "content": ""}}],
            "usage": {"prompt_tokens": 9, "completion_tokens": 1}}
    message = from_chat(body, CONTEXT)
    assert (message["content"], message["stop_reason"], message["usage"]["input_tokens"]) == ([], "max_tokens", 9)


# -- stop sequences and refusals -------------------------------------------------------------


@pytest.mark.parametrize("field", ["stop_reason", "matched_stop"])  # vLLM's, SGLang's
def test_the_stop_sequence_the_upstream_says_matched(field):
    last = {"index": 0, "delta": {}, "finish_reason": "stop", field: "###"}
    stop = b"data: " + json.dumps({"choices": [last]}).encode() + b"\n\n"
    assert final([chunk({"content": "1, 2, 3"}), stop, DONE])["stop_reason"] == "stop_sequence"
    sequence = events(run([chunk({"content": "1, 2, 3"}), stop, DONE]))
    assert sequence[-2]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "###", "stop_details": None,
                                     "container": None}
    body = {"choices": [{"message": {"role": "assistant", "content": "1, 2, 3"}, "finish_reason": "stop", field: "###"}]}
    assert (from_chat(body, CONTEXT)["stop_reason"], from_chat(body, CONTEXT)["stop_sequence"]) == ("stop_sequence", "###")


def test_a_stop_token_is_no_stop_sequence():
    """vLLM names a stop token by its id, a number: the answer ended as any other."""
    stop = b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop","stop_reason":151645}]}\n\n'
    assert events(run([chunk({"content": "x"}), stop, DONE]))[-2]["delta"] == {
        "stop_reason": "end_turn", "stop_sequence": None, "stop_details": None, "container": None}


def test_a_streamed_refusal_stops_for_refusal():
    message = final([chunk({"refusal": "I can't help "}), chunk({"refusal": "with that."}), chunk(finish="stop"), DONE])
    assert (message["content"], message["stop_reason"]) == (
        [{"type": "text", "text": "I can't help with that.", "citations": None}], "refusal")


# -- whole answers that are errors or broken -----------------------------------------------------


@pytest.mark.parametrize("body, status, error_type, message", [
    ({"error": {"message": "The engine is overloaded", "type": "server_error", "code": None}}, 500, "api_error",
     "The engine is overloaded"),
    ({"error": {"message": "Slow down", "code": 429}}, 429, "rate_limit_error", "Slow down"),  # OpenRouter's
    ({"object": "error", "message": "Bad input", "type": "BadRequestError", "code": 400}, 400, "invalid_request_error",
     "Bad input"),  # vLLM's older shape
    ({"id": "chatcmpl-1", "choices": []}, 502, "api_error", "the upstream's answer is broken: it has no choices"),
    ({"choices": [{"message": {"role": "assistant", "content": "Let me check."}, "finish_reason": "tool_calls"}]},
     502, "api_error", "the upstream's answer is broken: it finished for tool calls (finish_reason 'tool_calls') but "
                       "made none"),
    ({"choices": [{"finish_reason": "tool_calls", "message": {"role": "assistant", "content": None, "tool_calls": [
        {"id": "c1", "type": "function", "function": {"name": "short_x", "arguments": '{"command": "rm'}}]}}]},
     502, "api_error", f"the upstream's answer is broken: the arguments of its call to '{LONG}' are not a JSON object: "
                       "'{\"command\": \"rm'"),
])  # fmt: skip
def test_a_whole_answer_that_is_no_answer_is_an_error(body, status, error_type, message):
    with pytest.raises(GatewayError) as raised:
        from_chat(body, CONTEXT)
    assert (raised.value.status, raised.value.error_type, raised.value.message) == (status, error_type, message)
