"""An `openai-responses` provider behind the real gateway: what the client gets back,
whole and streamed, from scripted Responses answers (reasoning, tool calls, usage,
stop reasons, failures), the reasoning state carried to the next turn, and the relay
path (a pool whose first key is limited, a fallback to another provider). The
requests themselves are in test_responses_gateway.py."""

from __future__ import annotations

from typing import Any

import anthropic
import httpx
import pytest
from gateway import Gateway
from openai_upstream import GREETING as CHAT_GREETING
from openai_upstream import check_error_answer, error_reply
from responses_upstream import (  # noqa: F401 (fixtures: fresh, gateway, server)
    CLIENT_KEY, ENCRYPTED, GREETING, POOL_KEYS, UPSTREAM_MODEL, client, error_event, events, failed, fresh,
    function_call, gateway, incomplete, is_responses, message, responses_like, reasoning, response, server, sse, streaming, usage,
    whole,
)
from sse_checks import accumulated, validate
from sse_checks import events as parse_events
from upstream import Received, Reply, Stream

from modelmux.translate.openai_responses.reasoning_state import Reasoning, pack

MODEL = "claude-sonnet-4-5"  # routed to codex as gpt-5.3-codex; the client must see this name back
HI = [{"role": "user", "content": "hi"}]
SIGNATURE = pack(Reasoning("rs_1", ENCRYPTED, UPSTREAM_MODEL))
# A model that reasons in two summary parts, explains, calls a tool; part of its input was cached.
OUTPUT = [reasoning("Weighing it.", "Then acting."), message("Checking."),
          function_call("call_1", "get_weather", {"city": "Paris"})]
USAGE = usage(100, 20, cached=30, reasoning=12)
BLOCKS = [
    {"type": "thinking", "thinking": "Weighing it.\n\nThen acting.", "signature": SIGNATURE},
    {"type": "text", "text": "Checking.", "citations": None},
    {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}, "caller": {"type": "direct"}},
]
DELTA_USAGE = {"input_tokens": 70, "output_tokens": 20, "cache_read_input_tokens": 30, "cache_creation_input_tokens": 0,
               "output_tokens_details": {"thinking_tokens": 12}, "server_tool_use": None}  # message_delta's part
ANTHROPIC_USAGE = {**DELTA_USAGE, "cache_creation": None, "service_tier": None, "inference_geo": None}
DELTA = {"stop_reason": "tool_use", "stop_sequence": None, "stop_details": None, "container": None}


def answer_json(gateway: Gateway, **request: Any) -> dict[str, Any]:
    """A non-streamed answer as the raw JSON the client received (the SDK must parse it too)."""
    raw = client(gateway).messages.with_raw_response.create(
        **{"model": MODEL, "max_tokens": 256, "messages": HI, "timeout": 30, **request})
    raw.parse()
    return raw.http_response.json()


def stream_events(gateway: Gateway, **request: Any) -> list[dict[str, Any]]:
    """A streamed answer's events, straight off the wire (each event's name its data's type)."""
    body = {"model": MODEL, "max_tokens": 256, "messages": HI, **request, "stream": True}
    with httpx.stream("POST", f"{gateway.url}/v1/messages", json=body, headers={"x-api-key": CLIENT_KEY},
                      timeout=30) as answer:
        assert answer.status_code == 200, answer.read()
        assert answer.headers["content-type"].startswith("text/event-stream")
        return parse_events([answer.read()])


def streamed(gateway: Gateway, **request: Any) -> dict[str, Any]:
    """A streamed answer held to Anthropic's grammar, then accumulated as the SDK does."""
    sequence = stream_events(gateway, **request)
    validate(sequence)
    return accumulated(sequence)


def message_start(sequence: list[dict[str, Any]]) -> dict[str, Any]:
    start = sequence[0]["message"]
    assert start["id"].startswith("msg_") and start["usage"]["input_tokens"] > 0  # modelmux's estimate
    return {key: start[key] for key in ("type", "role", "model", "content", "stop_reason")}


def test_whole_answer(gateway, server):
    server.reply = whole(response(OUTPUT, usage=USAGE))
    answer = answer_json(gateway)
    assert answer == {"id": answer["id"], "type": "message", "role": "assistant", "model": MODEL, "content": BLOCKS,
                      "stop_reason": "tool_use", "stop_sequence": None, "stop_details": None, "container": None,
                      "usage": ANTHROPIC_USAGE}


def delta(index: int, **fields: str) -> dict[str, Any]:
    (kind, value), = fields.items()
    field = {"text_delta": "text", "thinking_delta": "thinking", "signature_delta": "signature",
             "input_json_delta": "partial_json"}[kind]
    return {"type": "content_block_delta", "index": index, "delta": {"type": kind, field: value}}


def block(index: int, content_block: dict[str, Any], *deltas: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"type": "content_block_start", "index": index, "content_block": content_block}, *deltas,
            {"type": "content_block_stop", "index": index}]


def test_streamed_answer_event_by_event(gateway, server):
    """Each upstream delta is one client delta; the signature comes when the reasoning
    item is done; the summary's second part is a paragraph of its own."""
    server.reply = streaming(*events(OUTPUT, response(OUTPUT, usage=USAGE)))
    sequence = stream_events(gateway)
    validate(sequence)
    assert message_start(sequence) == {"type": "message", "role": "assistant", "model": MODEL, "content": [],
                                       "stop_reason": None}
    assert sequence[1:] == [
        *block(0, {"type": "thinking", "thinking": "", "signature": ""},
               delta(0, thinking_delta="Weighi"), delta(0, thinking_delta="ng it."),
               delta(0, thinking_delta="\n\nThen a"), delta(0, thinking_delta="cting."),
               delta(0, signature_delta=SIGNATURE)),
        *block(1, {"type": "text", "text": "", "citations": None}, delta(1, text_delta="Checking.")),
        *block(2, {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {}, "caller": {"type": "direct"}},
               delta(2, input_json_delta='{"city":'), delta(2, input_json_delta='"Paris"}')),
        {"type": "message_delta", "delta": DELTA, "usage": DELTA_USAGE},
        {"type": "message_stop"},
    ]  # fmt: skip
    answer = accumulated(sequence)
    assert (answer["model"], answer["content"], answer["stop_reason"]) == (MODEL, BLOCKS, "tool_use")
    assert answer["usage"] == ANTHROPIC_USAGE


@pytest.mark.parametrize("arguments", ["deltas", "done", "item"])
def test_tool_call_arguments_however_they_come(gateway, server, arguments):
    """In `.delta` pieces, only in `function_call_arguments.done`, or only in the
    finished item: the same tool_use block."""
    calls = [function_call("call_a", "Read", {"path": "a.txt"}), function_call("call_b", "Grep", {"pattern": "TODO"}, id="fc_2")]
    server.reply = streaming(*events(calls, arguments=arguments))
    answer = streamed(gateway)
    assert (answer["content"], answer["stop_reason"]) == ([
        {"type": "tool_use", "id": "call_a", "name": "Read", "input": {"path": "a.txt"}, "caller": {"type": "direct"}},
        {"type": "tool_use", "id": "call_b", "name": "Grep", "input": {"pattern": "TODO"}, "caller": {"type": "direct"}},
    ], "tool_use")


STOPS = [
    pytest.param([message("Done.")], response([message("Done.")]), "end_turn", id="end_turn"),
    pytest.param([function_call("call_1", "Bash", {})], response([function_call("call_1", "Bash", {})]), "tool_use",
                 id="tool_use"),
    pytest.param([message("Cut")], incomplete([message("Cut")]), "max_tokens", id="max_tokens"),
    pytest.param([], incomplete([], usage(9, 16)), "max_tokens", id="max_tokens-nothing-said"),
]


@pytest.mark.parametrize("output, final, stop_reason", STOPS)
def test_stop_reasons(gateway, server, output, final, stop_reason):
    server.reply = whole(final)
    answer = answer_json(gateway)
    assert answer["stop_reason"] == stop_reason
    server.reply = streaming(*events(output, final))
    sequence = stream_events(gateway)
    validate(sequence)
    assert sequence[-2]["delta"] == {**DELTA, "stop_reason": stop_reason}
    assert accumulated(sequence)["content"] == answer["content"]


def test_usage_with_cached_tokens(gateway, server):
    server.reply = whole(response([message("Hi.")], usage=usage(500, 9, cached=480)))
    expected = {"input_tokens": 20, "output_tokens": 9, "cache_read_input_tokens": 480, "cache_creation_input_tokens": 0,
                "output_tokens_details": {"thinking_tokens": 0}, "server_tool_use": None}
    assert answer_json(gateway)["usage"] == {**expected, "cache_creation": None, "service_tier": None, "inference_geo": None}
    server.reply = streaming(*events([message("Hi.")], response([message("Hi.")], usage=usage(500, 9, cached=480))))
    assert stream_events(gateway)[-2]["usage"] == expected
    with client(gateway).messages.stream(model=MODEL, max_tokens=16, messages=HI) as stream:
        final = stream.get_final_message()
    assert (final.usage.input_tokens, final.usage.cache_read_input_tokens, final.usage.output_tokens) == (20, 480, 9)


# -- the reasoning state, carried through the client ------------------------------

TOOL_RESULT = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"}]}
# What a real Anthropic model signed, after a /model switch: OpenAI must never see it.
ANTHROPIC_THINKING = {"type": "thinking", "thinking": "Claude's own.", "signature": "EqQBCkgIBhABGAIiQ0Wv+fake=="}
REPLAYED = {"type": "reasoning", "summary": [], "encrypted_content": ENCRYPTED}  # no id: nothing is stored upstream
CALL_ITEM = {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'}
OUTPUT_ITEM = {"type": "function_call_output", "call_id": "call_1", "output": "sunny"}
HI_ITEM = {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "hi"}]}


def test_reasoning_goes_back_on_the_next_turn(gateway, server):
    """Turn one streams reasoning; the SDK's accumulated message, sent back as Claude Code
    does, gives the upstream its reasoning item (encrypted content, no id) before the
    call it led to; the text between goes as an assistant message."""
    server.reply = streaming(*events(OUTPUT))
    with client(gateway).messages.stream(model=MODEL, max_tokens=256, messages=HI,
                                         extra_body={"thinking": {"type": "enabled", "budget_tokens": 2048}}) as stream:
        first = stream.get_final_message()
    assert [b.model_dump(exclude_unset=True) for b in first.content] == BLOCKS
    server.received.clear()
    server.reply = whole(response([message("Sunny in Paris.")]))
    history = [*HI, {"role": "assistant", "content": [b.model_dump(exclude_unset=True) for b in first.content]},
               TOOL_RESULT]
    assert answer_json(gateway, messages=history)["content"] == [{"type": "text", "text": "Sunny in Paris.", "citations": None}]
    assert server.received[0].json()["input"] == [
        HI_ITEM, REPLAYED,
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Checking."}]},
        CALL_ITEM, OUTPUT_ITEM,
    ]


@pytest.mark.parametrize("model, thinking, replayed", [
    (MODEL, {"type": "thinking", "thinking": "x", "signature": SIGNATURE}, [REPLAYED]),
    (MODEL, ANTHROPIC_THINKING, []),
    (MODEL, {"type": "thinking", "thinking": "unsigned", "signature": ""}, []),
    ("gpt-5-mini", {"type": "thinking", "thinking": "x", "signature": SIGNATURE}, []),  # made for gpt-5.3-codex
])  # fmt: skip
def test_only_reasoning_modelmux_packed_for_this_model_is_sent(gateway, server, model, thinking, replayed):
    history = [*HI, {"role": "assistant", "content": [thinking, {"type": "tool_use", "id": "call_1", "name": "get_weather",
                                                                 "input": {"city": "Paris"}}]}, TOOL_RESULT]
    answer_json(gateway, model=model, messages=history)
    assert server.received[0].json()["input"] == [HI_ITEM, *replayed, CALL_ITEM, OUTPUT_ITEM]


# -- failures -----------------------------------------------------------------------


@pytest.mark.parametrize("status, error_type", [
    (400, "invalid_request_error"), (401, "authentication_error"), (429, "rate_limit_error"), (500, "api_error"),
])  # fmt: skip
@pytest.mark.parametrize("stream", [False, True])
def test_upstream_errors_become_anthropic_errors(gateway, server, status, error_type, stream):
    check_error_answer(gateway, server, MODEL, status, error_type, stream)


@pytest.mark.parametrize("code, status, error_type", [
    ("server_error", 500, "api_error"),
    ("rate_limit_exceeded", 429, "rate_limit_error"),
    ("invalid_prompt", 400, "invalid_request_error"),
])  # fmt: skip
def test_a_failed_response_in_a_whole_200(gateway, server, code, status, error_type):
    server.reply = whole(failed("The model broke down.", code))
    answer = httpx.post(f"{gateway.url}/v1/messages", headers={"x-api-key": CLIENT_KEY}, timeout=30,
                        json={"model": MODEL, "max_tokens": 8, "messages": HI})
    assert answer.status_code == status
    assert answer.json() == {"type": "error", "error": {"type": error_type,
                                                        "message": "provider 'codex' answered: the upstream failed: The model broke down."}}


@pytest.mark.parametrize("failure", [
    pytest.param({"type": "response.failed", "response": failed("The model broke down.", "server_error")}, id="failed"),
    pytest.param(error_event("The model broke down.", "server_error"), id="error-event"),
])  # fmt: skip
@pytest.mark.parametrize("after_content", [False, True])
def test_a_failure_inside_the_stream(gateway, server, failure, after_content):
    """With one key the stream is already the client's: it ends with `event: error`, no
    message_stop, whatever came before."""
    said = events([message("Partial answer")])[:6] if after_content else events([])[:2]
    server.reply = streaming(*said, failure)
    sequence = stream_events(gateway)
    before = [{"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": "", "citations": None}},
              delta(0, text_delta="Partial "), delta(0, text_delta="answer")] if after_content else []
    assert sequence[1:] == [*before, {"type": "error", "error": {
        "type": "api_error", "message": "the upstream failed: The model broke down."}}]
    with pytest.raises(anthropic.APIError, match="The model broke down"):
        with client(gateway).messages.stream(model=MODEL, max_tokens=16, messages=HI) as stream:
            stream.get_final_message()


def test_a_stream_cut_short_ends_with_an_error(gateway, server):
    server.reply = lambda r: Stream(sse(events([message("Hello there")])[:5]))  # no output_item.done, no completion
    sequence = stream_events(gateway)
    assert [e["type"] for e in sequence][-1] == "error" and "message_stop" not in [e["type"] for e in sequence]
    assert sequence[-1]["error"] == {"type": "api_error",
                                     "message": "the upstream's stream ended before the answer was complete"}


# -- the relay: a pool, a fallback --------------------------------------------------

LIMITED = Reply(429, error_reply(429, "Rate limit reached for requests", "requests", "rate_limit_exceeded").body,
                {"content-type": "application/json", "retry-after": "600"})


def keys_seen(server) -> list[str]:
    by_key = {f"Bearer {key}": name for name, key in POOL_KEYS.items()}
    return [by_key[r.headers["authorization"]] for r in server.received]


@pytest.mark.parametrize("limit", ["http-429", "failed-before-content"])
def test_a_pool_whose_first_key_is_limited(gateway, server, limit):
    """The relay sends to the pool's first key, which is limited (a 429, or a stream that
    fails before any content); the second serves, and the client's stream is exactly
    what it would have been."""
    first = POOL_KEYS["POOL_A_KEY"]
    if limit == "http-429":
        gate = LIMITED
    else:
        gate = Stream(sse([*events([])[:2], {"type": "response.failed",
                                             "response": failed("Rate limit reached", "rate_limit_exceeded")}]))
    server.gate = lambda r: gate if r.headers["authorization"] == f"Bearer {first}" else None
    server.reply = streaming(*events(OUTPUT, response(OUTPUT, usage=USAGE)))
    sequence = stream_events(gateway, model="pool-1")
    validate(sequence)
    assert keys_seen(server) == ["POOL_A_KEY", "POOL_B_KEY"]
    assert [r.path for r in server.received] == ["/pool/v1/responses"] * 2
    assert server.received[0].body == server.received[1].body
    assert message_start(sequence)["model"] == "pool-1"
    assert accumulated(sequence)["content"] == BLOCKS
    assert sequence[-2] == {"type": "message_delta", "delta": DELTA, "usage": DELTA_USAGE}
    server.received.clear()
    server.reply = whole(response(OUTPUT, usage=USAGE))  # the first key now sits out; a whole answer through the relay
    assert answer_json(gateway, model="pool-1")["content"] == BLOCKS
    assert keys_seen(server) == ["POOL_B_KEY"]


def test_fallback_from_a_responses_provider_to_chat_completions(gateway, server):
    def reply(request: Received):
        if is_responses(request):
            return error_reply(503, "The engine is currently overloaded", "server_error")
        return responses_like(request)

    server.reply = reply
    answer = answer_json(gateway, model="fall-1")
    assert (answer["model"], answer["content"]) == ("fall-1", [{"type": "text", "text": CHAT_GREETING, "citations": None}])
    assert [(r.path, r.json()["model"]) for r in server.received] == [
        ("/v1/responses", UPSTREAM_MODEL), ("/chat/v1/chat/completions", "gpt-test")]
    server.received.clear()
    sequence = stream_events(gateway, model="fall-1")
    validate(sequence)
    assert accumulated(sequence)["content"] == [{"type": "text", "text": CHAT_GREETING, "citations": None}]
    assert [r.path for r in server.received][-1] == "/chat/v1/chat/completions"


def test_the_default_answer_streams(gateway, server):
    sequence = stream_events(gateway)
    validate(sequence)
    assert accumulated(sequence)["content"] == [{"type": "text", "text": GREETING, "citations": None}]
