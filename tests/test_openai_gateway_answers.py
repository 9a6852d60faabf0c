"""An `openai-chat` provider behind the real gateway: what the client gets back, whole
and streamed, from scripted OpenAI answers (tool calls, reasoning, usage, stop reasons,
errors, broken streams). The requests themselves are in test_openai_gateway.py."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from typing import Any

import anthropic
import httpx
import pytest
from gateway import Gateway
from openai_upstream import (  # noqa: F401 (fixtures: fresh, gateway, server)
    CLIENT_KEY, GREETING, KEEPALIVE, check_error_answer, chunk, client, completion, error, error_reply, fresh, gateway, json_reply,
    openai_like, server, sse, text_chunks, tool_call, usage,
)
from upstream import Reply, Stream

MODEL = "claude-sonnet-4-5"  # routed to the plain provider as gpt-test; the client must see this name back
HI = [{"role": "user", "content": "hi"}]


def answer_json(gateway: Gateway, **request: Any) -> dict[str, Any]:
    """A non-streamed answer as the raw JSON the client received (the SDK must parse it too)."""
    raw = client(gateway).messages.with_raw_response.create(
        **{"model": MODEL, "max_tokens": 256, "messages": HI, "timeout": 30, **request})
    raw.parse()
    return raw.http_response.json()


def final_message(gateway: Gateway, **request: Any) -> anthropic.types.Message:
    """A streamed answer, accumulated by the SDK."""
    with client(gateway).messages.stream(**{"model": MODEL, "max_tokens": 256, "messages": HI, **request}) as stream:
        return stream.get_final_message()


def blocks(message: anthropic.types.Message) -> list[dict[str, Any]]:
    """The blocks as the client got them: the fields the answer set, nulls included."""
    return [block.model_dump(exclude_unset=True) for block in message.content]


def raw_events(gateway: Gateway, **request: Any) -> list[tuple[str, Any]]:
    """A streamed answer as (event name, parsed data) pairs, straight off the wire."""
    body = {"model": MODEL, "max_tokens": 256, "messages": HI, **request, "stream": True}
    with httpx.stream("POST", f"{gateway.url}/v1/messages", json=body, headers={"x-api-key": CLIENT_KEY},
                      timeout=30) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        text = response.read().decode()
    assert "[DONE]" not in text
    events = []
    for frame in text.replace("\r\n", "\n").split("\n\n"):
        lines = [line for line in frame.split("\n") if line and not line.startswith(":")]
        if not lines:
            continue
        name = next(line[6:].strip() for line in lines if line.startswith("event:"))
        data = "\n".join(line[5:].strip() for line in lines if line.startswith("data:"))
        events.append((name, json.loads(data)))
    return events


def check_sequence(events: list[tuple[str, Any]]) -> None:
    """Anthropic's stream grammar: message_start, blocks opened and closed one at a time with
    indexes 0, 1, ..., deltas of the open block's kind, message_delta, message_stop."""
    kinds = {"text": "text_delta", "thinking": "thinking_delta", "tool_use": "input_json_delta"}
    names = [name for name, _ in events if name != "ping"]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"], names
    assert names.count("message_start") == names.count("message_delta") == names.count("message_stop") == 1, names
    open_block: tuple[int, str] | None = None
    next_index = 0
    for name, data in events[1:-2]:
        assert data["type"] == name, (name, data)
        if name == "content_block_start":
            assert open_block is None and data["index"] == next_index, (events, data)
            open_block = (next_index, data["content_block"]["type"])
            next_index += 1
        elif name == "content_block_delta":
            assert open_block is not None and data["index"] == open_block[0], data
            assert data["delta"]["type"] in (kinds[open_block[1]], "signature_delta"), (open_block, data)
        elif name == "content_block_stop":
            assert open_block is not None and data["index"] == open_block[0], data
            open_block = None
        else:
            assert name == "ping", name
    assert open_block is None


def runs(events: list[tuple[str, Any]]) -> list[str]:
    """Event names with repeated deltas collapsed: the shape of a stream, whatever its chunking."""
    names = [name for name, _ in events if name != "ping"]
    return [name for i, name in enumerate(names) if i == 0 or name != names[i - 1] or name != "content_block_delta"]


def streaming(*chunks: dict[str, Any] | str, done: bool = True):
    """A reply that streams `chunks` as OpenAI SSE (with `data: [DONE]` unless `done=False`)."""
    return lambda request: Stream(sse(chunks, done=done))


def whole(body: dict[str, Any]):
    """A reply that answers `body` as JSON."""
    return lambda request: json_reply(body)


# A thinking model that explains, then calls a tool: reasoning, text, tool call, cached usage.
REASONED = [
    chunk({"role": "assistant", "content": ""}),
    chunk({"reasoning_content": "Weighing "}),
    chunk({"reasoning_content": "it."}),
    chunk({"content": "Check"}),
    chunk({"content": "ing."}),
    chunk({"tool_calls": [tool_call("call_1", "get_weather", "", index=0)]}),
    chunk({"tool_calls": [tool_call(None, None, '{"city":', index=0)]}),
    chunk({"tool_calls": [tool_call(None, None, '"Paris"}', index=0)]}),
    chunk({}, finish="tool_calls"),
    chunk(usage=usage(100, 20, cached=30), choices=False),
]
REASONED_BLOCKS = [
    {"type": "thinking", "thinking": "Weighing it.", "signature": ""},
    {"type": "text", "text": "Checking.", "citations": None},
    {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}, "caller": {"type": "direct"}},
]


def delta_usage(input_tokens: int, output_tokens: int, cached: int = 0) -> dict[str, Any]:
    """message_delta's usage: the counts, and null for what OpenAI does not count."""
    return {"input_tokens": input_tokens, "output_tokens": output_tokens, "cache_read_input_tokens": cached,
            "cache_creation_input_tokens": 0, "output_tokens_details": None, "server_tool_use": None}


def anthropic_usage(input_tokens: int, output_tokens: int, cached: int = 0) -> dict[str, Any]:
    """A whole message's usage (the fake names no service tier)."""
    return {**delta_usage(input_tokens, output_tokens, cached), "cache_creation": None, "service_tier": None,
            "inference_geo": None}


REASONED_USAGE = anthropic_usage(70, 20, cached=30)


def test_whole_answer(gateway, server):
    server.reply = whole(completion("Checking.", [tool_call("call_1", "get_weather", {"city": "Paris"})],
                                    reasoning="Weighing it.", finish="tool_calls", usage=usage(100, 20, cached=30)))
    answer = answer_json(gateway)
    assert answer["id"].startswith("msg_")
    assert answer == {"id": answer["id"], "type": "message", "role": "assistant", "model": MODEL,
                      "content": REASONED_BLOCKS, "stop_reason": "tool_use", "stop_sequence": None,
                      "stop_details": None, "container": None, "usage": REASONED_USAGE}


def test_streamed_answer(gateway, server):
    server.reply = streaming(*REASONED)
    events = raw_events(gateway)
    check_sequence(events)
    assert runs(events) == ["message_start",
                            "content_block_start", "content_block_delta", "content_block_stop",
                            "content_block_start", "content_block_delta", "content_block_stop",
                            "content_block_start", "content_block_delta", "content_block_stop",
                            "message_delta", "message_stop"]  # fmt: skip
    start = events[0][1]["message"]
    assert start["id"].startswith("msg_")
    assert (start["model"], start["content"], start["stop_reason"], start["role"]) == (MODEL, [], None, "assistant")
    assert isinstance(start["usage"]["input_tokens"], int) and start["usage"]["input_tokens"] > 0  # the local estimate
    assert "output_tokens" in start["usage"]
    assert [d["content_block"]["type"] for n, d in events if n == "content_block_start"] == ["thinking", "text", "tool_use"]
    assert events[-2][1] == {"type": "message_delta", "delta": {"stop_reason": "tool_use", "stop_sequence": None,
                                                                "stop_details": None, "container": None},
                             "usage": delta_usage(70, 20, cached=30)}
    assert blocks(final_message(gateway)) == REASONED_BLOCKS


def test_reasoning_under_its_other_name(gateway, server):
    server.reply = whole(completion("Yes.", reasoning="Because.", reasoning_field="reasoning"))
    assert answer_json(gateway)["content"] == [{"type": "thinking", "thinking": "Because.", "signature": ""},
                                               {"type": "text", "text": "Yes.", "citations": None}]
    server.reply = streaming(chunk({"role": "assistant"}), chunk({"reasoning": "Because."}), chunk({"content": "Yes."}),
                             chunk({}, finish="stop"), chunk(usage=usage(), choices=False))
    assert blocks(final_message(gateway)) == [{"type": "thinking", "thinking": "Because.", "signature": ""},
                                              {"type": "text", "text": "Yes.", "citations": None}]


PARALLEL = [tool_call("call_a", "Read", {"path": "a.txt"}), tool_call("call_b", "Grep", {"pattern": "TODO"})]
PARALLEL_BLOCKS = [
    {"type": "tool_use", "id": "call_a", "name": "Read", "input": {"path": "a.txt"}, "caller": {"type": "direct"}},
    {"type": "tool_use", "id": "call_b", "name": "Grep", "input": {"pattern": "TODO"}, "caller": {"type": "direct"}}]


@pytest.mark.parametrize("chunks", [
    pytest.param([  # one call after the other, as OpenAI does
        chunk({"tool_calls": [tool_call("call_a", "Read", "", index=0)]}),
        chunk({"tool_calls": [tool_call(None, None, '{"path":', index=0)]}),
        chunk({"tool_calls": [tool_call(None, None, '"a.txt"}', index=0)]}),
        chunk({"tool_calls": [tool_call("call_b", "Grep", "", index=1)]}),
        chunk({"tool_calls": [tool_call(None, None, '{"pattern":"TODO"}', index=1)]}),
    ], id="sequential"),
    pytest.param([  # fragments of both calls interleaved, several in one chunk
        chunk({"tool_calls": [tool_call("call_a", "Read", "", index=0), tool_call("call_b", "Grep", "", index=1)]}),
        chunk({"tool_calls": [tool_call(None, None, '{"path":', index=0)]}),
        chunk({"tool_calls": [tool_call(None, None, '{"pattern":', index=1)]}),
        chunk({"tool_calls": [tool_call(None, None, '"a.txt"}', index=0), tool_call(None, None, '"TODO"}', index=1)]}),
    ], id="interleaved"),
    pytest.param([  # each call whole in its first chunk (xAI, Gemini's OpenAI endpoint)
        chunk({"tool_calls": [tool_call("call_a", "Read", {"path": "a.txt"}, index=0)]}),
        chunk({"tool_calls": [tool_call("call_b", "Grep", {"pattern": "TODO"}, index=1)]}),
    ], id="whole-in-one-chunk"),
])  # fmt: skip
def test_parallel_tool_calls_streamed(gateway, server, chunks):
    script = [chunk({"role": "assistant", "content": None}), *chunks, chunk({}, finish="tool_calls"),
              chunk(usage=usage(), choices=False)]
    server.reply = streaming(*script)
    events = raw_events(gateway)
    check_sequence(events)
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
    assert blocks(final_message(gateway)) == PARALLEL_BLOCKS


def test_parallel_tool_calls_whole(gateway, server):
    server.reply = whole(completion(None, PARALLEL, finish="tool_calls"))
    answer = answer_json(gateway)
    assert (answer["content"], answer["stop_reason"]) == (PARALLEL_BLOCKS, "tool_use")


LONG_NAME = "mcp__plugin_superpowers_github__search_issues_and_pull_requests_everywhere"
SHORT_NAME = LONG_NAME[:55] + "_" + hashlib.sha256(LONG_NAME.encode()).hexdigest()[:8]


def test_long_tool_names_are_shortened_and_restored(gateway, server):
    assert len(LONG_NAME) > 64 and len(SHORT_NAME) == 64
    request = {
        "tools": [{"name": LONG_NAME, "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}}}],
        "tool_choice": {"type": "tool", "name": LONG_NAME},
        "messages": [
            {"role": "user", "content": "find bugs"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": LONG_NAME, "input": {"q": "a"}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "none"}]},
        ],
    }  # fmt: skip
    expected = [{"type": "tool_use", "id": "call_9", "name": LONG_NAME, "input": {"q": "bug"}, "caller": {"type": "direct"}}]
    server.reply = whole(completion(None, [tool_call("call_9", SHORT_NAME, {"q": "bug"})], finish="tool_calls"))
    assert answer_json(gateway, **request)["content"] == expected
    body = server.received[0].json()
    assert [tool["function"]["name"] for tool in body["tools"]] == [SHORT_NAME]
    assert body["tool_choice"] == {"type": "function", "function": {"name": SHORT_NAME}}
    assert body["messages"][1]["tool_calls"][0]["function"]["name"] == SHORT_NAME
    server.reply = streaming(chunk({"tool_calls": [tool_call("call_9", SHORT_NAME, {"q": "bug"}, index=0)]}),
                             chunk({}, finish="tool_calls"), chunk(usage=usage(), choices=False))
    assert blocks(final_message(gateway, **request)) == expected


KIMI_ID = "functions.Bash:0"  # Kimi's tool-call ids do not match Anthropic's ^[a-zA-Z0-9_-]+$
MAPPED_ID = "mmx_" + base64.urlsafe_b64encode(KIMI_ID.encode()).decode().rstrip("=")


@pytest.mark.parametrize("streamed", [False, True])
def test_foreign_tool_ids_round_trip(gateway, server, streamed):
    call = tool_call(KIMI_ID, "Bash", {"command": "ls"}, index=0 if streamed else None)
    if streamed:
        server.reply = streaming(chunk({"tool_calls": [call]}), chunk({}, finish="tool_calls"))
        content = blocks(final_message(gateway))
    else:
        server.reply = whole(completion(None, [call], finish="tool_calls"))
        content = answer_json(gateway)["content"]
    assert content == [{"type": "tool_use", "id": MAPPED_ID, "name": "Bash", "input": {"command": "ls"},
                        "caller": {"type": "direct"}}]
    server.received.clear()
    server.reply = openai_like
    answer_json(gateway, messages=[
        *HI,
        {"role": "assistant", "content": content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": MAPPED_ID, "content": "a.txt"}]},
    ])  # fmt: skip
    messages = server.received[0].json()["messages"]
    assert messages[1]["tool_calls"][0]["id"] == KIMI_ID
    assert messages[2] == {"role": "tool", "tool_call_id": KIMI_ID, "content": "a.txt"}


STOPS = [("stop", "end_turn"), ("length", "max_tokens"), ("tool_calls", "tool_use"), ("content_filter", "refusal")]


@pytest.mark.parametrize("finish, stop_reason", STOPS)
def test_stop_reasons(gateway, server, finish, stop_reason):
    calls = [tool_call("call_1", "Bash", {})] if finish == "tool_calls" else None
    server.reply = whole(completion("Hm.", calls, finish=finish))
    assert answer_json(gateway)["stop_reason"] == stop_reason
    called = [chunk({"tool_calls": [tool_call("call_1", "Bash", {}, index=0)]})] if calls else []
    server.reply = streaming(chunk({"content": "Hm."}), *called, chunk({}, finish=finish),
                             chunk(usage=usage(), choices=False))
    events = raw_events(gateway)
    check_sequence(events)
    assert events[-2][1]["delta"] == {"stop_reason": stop_reason, "stop_sequence": None, "stop_details": None,
                                      "container": None}


def test_tool_calls_with_finish_stop_still_stop_for_tool_use(gateway, server):
    server.reply = whole(completion(None, [tool_call("call_1", "Bash", {})], finish="stop"))
    assert answer_json(gateway)["stop_reason"] == "tool_use"
    server.reply = streaming(chunk({"tool_calls": [tool_call("call_1", "Bash", {}, index=0)]}), chunk({}, finish="stop"))
    assert final_message(gateway).stop_reason == "tool_use"


@pytest.mark.parametrize("content", ["", None])
def test_the_max_tokens_probe(gateway, server, content):
    """Claude Code's /model switch sends max_tokens: 1; an empty text block would break its replay."""
    server.reply = whole(completion(content, finish="length", usage=usage(9, 1)))
    answer = answer_json(gateway, max_tokens=1)
    assert (answer["content"], answer["stop_reason"]) == ([], "max_tokens")
    assert answer["usage"] == anthropic_usage(9, 1)
    server.reply = streaming(chunk({"role": "assistant", "content": content}), chunk({}, finish="length"),
                             chunk(usage=usage(9, 1), choices=False))
    final = final_message(gateway, max_tokens=1)
    assert (final.content, final.stop_reason) == ([], "max_tokens")


def test_usage_repeated_on_every_chunk_counts_once(gateway, server):
    server.reply = streaming(*[chunk({"content": word}, usage=usage(50, n)) for n, word in enumerate(["a", "b", "c"], 1)],
                             chunk({}, finish="stop", usage=usage(50, 4, cached=10)))
    events = raw_events(gateway)
    check_sequence(events)
    assert events[-2][1]["usage"] == delta_usage(40, 4, cached=10)


@pytest.mark.parametrize("size", [1, 5, 64])
def test_any_chunk_boundary_and_crlf_framing(gateway, server, size):
    """The upstream's bytes cut anywhere, inside JSON and inside UTF-8 characters, with
    `\\r\\n` line endings."""
    text = "Café 🚀 naïve — done."
    script = sse([chunk({"role": "assistant", "content": ""}), chunk({"reasoning_content": "Réflexion…"}),
                  *[chunk({"content": part}) for part in ("Café 🚀 ", "naïve — done.")],
                  chunk({"tool_calls": [tool_call("call_1", "Write", {"text": "ü"}, index=0)]}),
                  chunk({}, finish="tool_calls"), chunk(usage=usage(), choices=False)])
    wire = b"".join(script).replace(b"\n", b"\r\n")
    pieces = [wire[i:i + size] for i in range(0, len(wire), size)]
    server.reply = lambda r: Stream(pieces)
    assert blocks(final_message(gateway)) == [{"type": "thinking", "thinking": "Réflexion…", "signature": ""},
                                              {"type": "text", "text": text, "citations": None},
                                              {"type": "tool_use", "id": "call_1", "name": "Write", "input": {"text": "ü"},
                                               "caller": {"type": "direct"}}]


def test_content_and_finish_in_one_chunk(gateway, server):
    """Fake-streaming providers send the whole answer, its finish reason and usage at once."""
    server.reply = streaming(chunk({"role": "assistant", "content": "All at once."}, finish="stop", usage=usage(5, 3)))
    events = raw_events(gateway)
    check_sequence(events)
    assert events[-2][1]["usage"] == delta_usage(5, 3)
    assert blocks(final_message(gateway)) == [{"type": "text", "text": "All at once.", "citations": None}]


def test_a_call_without_arguments_has_an_empty_input(gateway, server):
    """Some servers send `arguments: ""` for a tool without parameters (beyond the spec:
    anything else than {} would make the client's replay invalid)."""
    server.reply = whole(completion(None, [tool_call("call_1", "Snapshot", "")], finish="tool_calls"))
    snapshot = [{"type": "tool_use", "id": "call_1", "name": "Snapshot", "input": {}, "caller": {"type": "direct"}}]
    assert answer_json(gateway)["content"] == snapshot
    server.reply = streaming(chunk({"tool_calls": [tool_call("call_1", "Snapshot", "", index=0)]}),
                             chunk({}, finish="tool_calls"))
    assert blocks(final_message(gateway)) == snapshot


def test_keep_alive_comments_become_pings(gateway, server):
    server.reply = streaming(KEEPALIVE, *text_chunks()[:2], KEEPALIVE, *text_chunks()[2:])
    events = raw_events(gateway)
    check_sequence(events)
    assert [data for name, data in events if name == "ping"] and all(
        data == {"type": "ping"} for name, data in events if name == "ping")
    server.reply = streaming(KEEPALIVE, *text_chunks())
    assert blocks(final_message(gateway)) == [{"type": "text", "text": GREETING, "citations": None}]


@pytest.mark.parametrize("status, error_type", [
    (400, "invalid_request_error"), (401, "authentication_error"), (403, "permission_error"),
    (404, "not_found_error"), (413, "request_too_large"), (429, "rate_limit_error"), (500, "api_error"),
    (502, "api_error"), (503, "overloaded_error"), (529, "overloaded_error"),
])  # fmt: skip
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_errors_become_anthropic_errors(gateway, server, status, error_type, stream):
    check_error_answer(gateway, server, MODEL, status, error_type, stream)


def test_an_error_page_that_is_not_json(gateway, server):
    server.reply = lambda r: Reply(status=502, body=b"<html>Bad Gateway</html>", headers={"content-type": "text/html"})
    response = httpx.post(f"{gateway.url}/v1/messages", headers={"x-api-key": CLIENT_KEY},
                          json={"model": MODEL, "max_tokens": 8, "messages": HI})
    assert response.status_code == 502
    assert response.json()["type"] == "error" and response.json()["error"]["type"] == "api_error"


def test_a_stream_cut_short_ends_with_an_error(gateway, server):
    server.reply = streaming(chunk({"role": "assistant", "content": ""}), chunk({"content": "Hel"}),
                             chunk({"content": "lo"}), done=False)
    events = raw_events(gateway)
    names = [name for name, _ in events]
    assert names[0] == "message_start" and names[-1] == "error", names
    assert "message_stop" not in names
    assert events[-1][1]["type"] == "error" and events[-1][1]["error"]["type"] == "api_error"
    with pytest.raises(anthropic.APIError):
        final_message(gateway)


def test_a_finish_reason_without_done_is_a_complete_stream(gateway, server):
    server.reply = streaming(chunk({"content": "Hello"}), chunk({}, finish="stop"), chunk(usage=usage(), choices=False),
                             done=False)
    check_sequence(raw_events(gateway))
    assert blocks(final_message(gateway)) == [{"type": "text", "text": "Hello", "citations": None}]


def test_text_after_a_tool_call_is_a_block_of_its_own(gateway, server):
    server.reply = streaming(chunk({"tool_calls": [tool_call("call_1", "Bash", {"command": "ls"}, index=0)]}),
                             chunk({"content": "Running it."}), chunk({}, finish="tool_calls"))
    check_sequence(raw_events(gateway))
    assert blocks(final_message(gateway)) == [
        {"type": "tool_use", "id": "call_1", "name": "Bash", "input": {"command": "ls"}, "caller": {"type": "direct"}},
        {"type": "text", "text": "Running it.", "citations": None}]


def test_an_error_object_mid_stream(gateway, server):
    server.reply = streaming(chunk({"role": "assistant", "content": ""}), chunk({"content": "Hi"}),
                             error("The model is overloaded, try again", "server_error"), done=False)
    events = raw_events(gateway)
    names = [name for name, _ in events]
    assert names[-1] == "error" and "message_stop" not in names, names
    assert "The model is overloaded" in events[-1][1]["error"]["message"]


def test_the_first_delta_arrives_while_the_upstream_holds_the_rest(gateway, server):
    pieces = sse(text_chunks("First second third"))  # role, "First ", "second ", "third", finish, usage, [DONE]
    server.reply = lambda r: Stream(pieces, delays=[0, 0, 1.5])
    sent = time.monotonic()
    arrivals: list[tuple[str, float]] = []
    with client(gateway).messages.stream(model=MODEL, max_tokens=16, messages=HI) as stream:
        for event in stream:
            arrivals.append((event.type, time.monotonic() - sent))
    first_text = next(t for kind, t in arrivals if kind == "content_block_delta")
    assert first_text < 1.0, arrivals
    assert arrivals[-1][1] >= 1.5, arrivals
    assert stream.get_final_message().content[0].text == "First second third"


def test_a_plain_streamed_text_answer(gateway, server):
    final = final_message(gateway)
    assert blocks(final) == [{"type": "text", "text": GREETING, "citations": None}]
    assert (final.model, final.stop_reason) == (MODEL, "end_turn")
    assert (final.usage.input_tokens, final.usage.output_tokens) == (12, 7)  # message_delta's usage wins
