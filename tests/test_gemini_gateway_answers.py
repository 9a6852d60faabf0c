"""A `gemini` provider behind the real gateway: what the client gets back, whole and
streamed, from scripted Gemini answers (thoughts, signed function calls, finish
reasons, usage, errors in bodies and inside streams), the thought signatures going
back on the next turn, and a pool of keys behind the failover relay. The requests
themselves are in test_gemini_gateway.py."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest
from gateway import Gateway
from gemini_upstream import (  # noqa: F401 (fixtures: fresh, gateway, server)
    BAD_KEY_MESSAGE, CALL_SIGNATURE, CLIENT_KEY, FIRST_KEY, GREETING, LABELS, QUOTA, SECOND_KEY, SIGNATURE, bad_key,
    call, chunks, client, error_reply, fresh, gateway, rate_limited, response, server, sse, status, streaming, text,
    thought, usage, whole,
)
from sse_checks import accumulated, events, validate
from upstream import Received, Reply, Stream, anthropic_like

MODEL = "gemini-2.5-flash"
HI = [{"role": "user", "content": "hi"}]
TOOL_ID = re.compile(r"^toolu_[0-9a-f]{24}$")
WEATHER = [{"name": "get_weather", "description": "Weather of a city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
# A thinking model that explains, then calls a tool: a signed thought, text, a signed call.
REASONED = (thought("Weighing it.", SIGNATURE), text("Checking the weather."),
            call("get_weather", {"city": "Paris"}, CALL_SIGNATURE))
REASONED_USAGE = usage(prompt=100, candidates=20, cached=60, thoughts=7)
# Anthropic's counts are disjoint: input without the cached part, output with the thoughts,
# which are also said apart; Gemini has no counts for the rest.
UNSAID = {"cache_creation": None, "server_tool_use": None, "service_tier": None, "inference_geo": None}
REASONED_ANTHROPIC_USAGE = {"input_tokens": 40, "output_tokens": 27, "cache_read_input_tokens": 60,
                            "cache_creation_input_tokens": 0, "output_tokens_details": {"thinking_tokens": 7}, **UNSAID}
REASONED_BLOCKS = [
    {"type": "thinking", "thinking": "Weighing it.", "signature": f"gemini-thought:{SIGNATURE}"},
    {"type": "text", "text": "Checking the weather.", "citations": None},
    {"type": "thinking", "thinking": "", "signature": f"gemini-next:{CALL_SIGNATURE}"},
    {"type": "tool_use", "id": "ID", "name": "get_weather", "input": {"city": "Paris"}, "caller": {"type": "direct"}},
]


def same_ids(content: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Tool ids are made up by the gateway: check their form, then compare the rest."""
    for block in content:
        if block["type"] == "tool_use":
            assert TOOL_ID.match(block["id"]), block["id"]
    return [{**b, "id": "ID"} if b["type"] == "tool_use" else b for b in content]


def answer_json(gateway: Gateway, model: str = MODEL, **request: Any) -> dict[str, Any]:
    """A non-streamed answer as the raw JSON the client received (the SDK must parse it too)."""
    raw = client(gateway).messages.with_raw_response.create(
        **{"model": model, "max_tokens": 256, "messages": HI, "timeout": 30, **request})
    raw.parse()
    return raw.http_response.json()


def stream_events(gateway: Gateway, model: str = MODEL, **request: Any) -> list[dict[str, Any]]:
    """A streamed answer's events, straight off the wire (pings left out)."""
    body = {"model": model, "max_tokens": 256, "messages": HI, **request, "stream": True}
    with httpx.stream("POST", f"{gateway.url}/v1/messages", json=body, headers={"x-api-key": CLIENT_KEY},
                      timeout=30) as answer:
        assert answer.status_code == 200, answer.read()
        assert answer.headers["content-type"].startswith("text/event-stream")
        raw = answer.read()
    return [e for e in events([raw]) if e["type"] != "ping"]


def streamed(gateway: Gateway, model: str = MODEL, **request: Any) -> dict[str, Any]:
    """A streamed answer held to Anthropic's grammar, then accumulated by the SDK."""
    sequence = stream_events(gateway, model, **request)
    validate(sequence)
    message = accumulated(sequence)
    message["content"] = same_ids(message["content"])
    return message


def runs(sequence: list[dict[str, Any]]) -> list[str]:
    """Event types with repeated deltas collapsed: a stream's shape, whatever its chunking."""
    names = [e["type"] for e in sequence]
    return [n for i, n in enumerate(names) if i == 0 or n != names[i - 1] or n != "content_block_delta"]


# -- answers ----------------------------------------------------------------------


def test_whole_answer(gateway, server):
    server.reply = whole(response(*REASONED, usage=REASONED_USAGE))
    answer = answer_json(gateway, tools=WEATHER)
    assert re.fullmatch(r"msg_\w+", answer["id"])
    assert {**answer, "content": same_ids(answer["content"])} == {
        "id": answer["id"], "type": "message", "role": "assistant", "model": MODEL, "content": REASONED_BLOCKS,
        "stop_reason": "tool_use", "stop_sequence": None, "stop_details": None, "container": None,
        "usage": REASONED_ANTHROPIC_USAGE}


def test_streamed_answer(gateway, server):
    server.reply = streaming(*chunks(*REASONED, usage=REASONED_USAGE))
    sequence = stream_events(gateway, tools=WEATHER)
    assert runs(sequence) == [
        "message_start",
        "content_block_start", "content_block_delta", "content_block_stop",  # the thought, then its signature
        "content_block_start", "content_block_delta", "content_block_stop",  # the text, word by word
        "content_block_start", "content_block_delta", "content_block_stop",  # the call's signature
        "content_block_start", "content_block_delta", "content_block_stop",  # the call
        "message_delta", "message_stop"]  # fmt: skip
    assert [e["delta"]["text"] for e in sequence if e["type"] == "content_block_delta" and e["index"] == 1] == [
        "Checking ", "the ", "weather."]
    assert sequence[0]["message"]["model"] == MODEL
    validate(sequence)
    message = accumulated(sequence)
    assert same_ids(message["content"]) == REASONED_BLOCKS
    assert (message["stop_reason"], message["usage"]) == ("tool_use", REASONED_ANTHROPIC_USAGE)


def test_the_sdk_reads_a_streamed_tool_call(gateway, server):
    server.reply = streaming(*chunks(*REASONED, usage=REASONED_USAGE))
    with client(gateway).messages.stream(model=MODEL, max_tokens=256, messages=HI, tools=WEATHER) as stream:
        final = stream.get_final_message()
    [tool_use] = [b for b in final.content if b.type == "tool_use"]
    assert TOOL_ID.match(tool_use.id) and (tool_use.name, tool_use.input) == ("get_weather", {"city": "Paris"})
    assert [b.signature for b in final.content if b.type == "thinking"] == [
        f"gemini-thought:{SIGNATURE}", f"gemini-next:{CALL_SIGNATURE}"]


@pytest.mark.parametrize(("finish", "stop_reason"), [
    ("STOP", "end_turn"), ("MAX_TOKENS", "max_tokens"), ("SAFETY", "refusal"), ("RECITATION", "refusal"),
])  # fmt: skip
@pytest.mark.parametrize("stream", [False, True])
def test_stop_reasons(gateway, server, finish, stop_reason, stream):
    if stream:
        server.reply = streaming(*chunks(text("Partial answer"), finish=finish))
        message = streamed(gateway)
    else:
        server.reply = whole(response(text("Partial answer"), finish=finish))
        message = answer_json(gateway)
    assert message["content"] == [{"type": "text", "text": "Partial answer", "citations": None}]
    assert (message["stop_reason"], message["usage"]["input_tokens"], message["usage"]["output_tokens"]) == (
        stop_reason, 12, 7)


@pytest.mark.parametrize("stream", [False, True])
def test_a_blocked_prompt_is_a_refusal_that_says_why(gateway, server, stream):
    blocked = response(blocked="PROHIBITED_CONTENT", usage={"promptTokenCount": 9, "totalTokenCount": 9})
    server.reply = streaming(blocked) if stream else whole(blocked)
    if stream:
        sequence = stream_events(gateway)
        validate(sequence)
        details, message = sequence[-2]["delta"]["stop_details"], accumulated(sequence)
    else:
        message = answer_json(gateway)
        details = message["stop_details"]
    assert (message["content"], message["stop_reason"], message["usage"]["input_tokens"]) == ([], "refusal", 9)
    assert details == {"type": "refusal", "category": None, "explanation": "Gemini blocked the prompt: PROHIBITED_CONTENT"}


def test_a_finish_that_failed_is_an_error_not_a_note(gateway, server):
    server.reply = streaming(*chunks(text("Checking"), finish="MALFORMED_FUNCTION_CALL"))
    sequence = stream_events(gateway)
    assert [e["type"] for e in sequence] == ["message_start", "content_block_start", "content_block_delta", "error"]
    assert sequence[-1]["error"] == {"type": "api_error", "message": (
        "the upstream's answer is broken: Gemini stopped with finishReason 'MALFORMED_FUNCTION_CALL' (the function "
        "call it generated is invalid)")}


# -- thought signatures over two turns -------------------------------------------


def test_signatures_go_back_to_gemini_and_never_to_anthropic(gateway, server):
    """Turn one: Gemini 3 thinks and calls a tool, both signed. Turn two, as the client
    sends it back: the signatures on the same parts, byte for byte, and the result
    named after the call. The same history sent to an anthropic provider loses the
    Gemini-signed thinking (Anthropic would reject the signatures), nothing else."""
    model = "gemini-3-pro-preview"
    server.reply = streaming(*chunks(*REASONED, usage=REASONED_USAGE, model=model))
    with client(gateway).messages.stream(model=model, max_tokens=256, messages=HI, tools=WEATHER) as stream:
        first = stream.get_final_message()
    history = [*HI, {"role": "assistant", "content": [b.model_dump(exclude_unset=True) for b in first.content]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": first.content[-1].id,
                                             "content": "Sunny, 21°C"}]}]  # fmt: skip
    server.received.clear()
    server.reply = streaming(*chunks(text("It is sunny."), model=model))
    with client(gateway).messages.stream(model=model, max_tokens=256, messages=history, tools=WEATHER) as stream:
        assert stream.get_final_text() == "It is sunny."
    [second] = server.received
    assert second.json()["contents"] == [
        {"role": "user", "parts": [{"text": "hi"}]},
        {"role": "model", "parts": [
            {"text": "Weighing it.", "thought": True, "thoughtSignature": SIGNATURE},
            {"text": "Checking the weather."},
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}, "thoughtSignature": CALL_SIGNATURE}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather", "response": {"output": "Sunny, 21°C"}}}]},
    ]  # fmt: skip
    assert f'"thoughtSignature":"{CALL_SIGNATURE}"'.encode() in second.body  # not re-encoded on the way

    server.received.clear()
    server.reply = anthropic_like  # the Messages API's answer, which the client gets read and whole
    client(gateway).messages.create(model="claude-sonnet-4-5", max_tokens=256, messages=history, tools=WEATHER)
    [anthropic_request] = server.received
    assert anthropic_request.path == "/v1/messages"
    sent = anthropic_request.json()["messages"]
    assert sent[1]["content"] == [{"type": "text", "text": "Checking the weather.", "citations": None},
                                  {"type": "tool_use", "id": first.content[-1].id, "name": "get_weather",
                                   "input": {"city": "Paris"}, "caller": {"type": "direct"}}]  # as the client keeps them
    assert sent[0] == HI[0] and sent[2] == history[2]
    assert b"gemini-" not in anthropic_request.body


# -- errors -----------------------------------------------------------------------


def error_of(answer: httpx.Response) -> dict[str, Any]:
    body = answer.json()
    assert body["type"] == "error", body
    return body["error"]


def post(gateway: Gateway, model: str = MODEL, stream: bool = False) -> httpx.Response:
    body = {"model": model, "max_tokens": 16, "stream": stream, "messages": HI}
    return httpx.post(f"{gateway.url}/v1/messages", json=body, headers={"x-api-key": CLIENT_KEY}, timeout=15)


@pytest.mark.parametrize("stream", [False, True])
def test_resource_exhausted_is_a_429_with_its_retry_delay(gateway, server, stream):
    server.reply = lambda r: rate_limited()
    answer = post(gateway, stream=stream)
    assert (answer.status_code, answer.headers["retry-after"]) == (429, "37")
    error = error_of(answer)
    assert error["type"] == "rate_limit_error"
    assert error["message"].startswith("provider 'google' answered HTTP 429: You exceeded your current quota")
    assert error["message"].endswith("(RESOURCE_EXHAUSTED)")


def test_an_invalid_key_is_a_401_that_does_not_echo_it(gateway, server):
    server.reply = lambda r: bad_key()
    answer = post(gateway)
    assert answer.status_code == 401
    assert error_of(answer) == {"type": "authentication_error", "message":
                                f"provider 'google' answered HTTP 400: {BAD_KEY_MESSAGE} (INVALID_ARGUMENT)"}


def test_invalid_argument_is_a_400(gateway, server):
    message = "* GenerateContentRequest.contents: contents is not specified"
    server.reply = lambda r: error_reply(400, message, "INVALID_ARGUMENT")
    answer = post(gateway)
    assert answer.status_code == 400
    assert error_of(answer) == {"type": "invalid_request_error",
                                "message": f"provider 'google' answered HTTP 400: {message} (INVALID_ARGUMENT)"}


def test_an_error_inside_the_stream_before_content(gateway, server):
    """One key, so mitmproxy sends it: the stream has begun, so the error is an SSE event."""
    server.reply = streaming(status(503, "The model is overloaded. Please try again later.", "UNAVAILABLE"))
    sequence = stream_events(gateway)
    assert [e["type"] for e in sequence] == ["message_start", "error"]
    assert sequence[1]["error"] == {"type": "overloaded_error",
                                    "message": "The model is overloaded. Please try again later. (UNAVAILABLE)"}


def test_an_error_inside_the_stream_after_content(gateway, server):
    first, *_ = chunks(text("Half an answer"))
    server.reply = streaming(first, status(500, "An internal error has occurred.", "INTERNAL"))
    sequence = stream_events(gateway)
    assert runs(sequence) == ["message_start", "content_block_start", "content_block_delta", "error"]
    assert sequence[-1]["error"] == {"type": "api_error", "message": "An internal error has occurred. (INTERNAL)"}


def test_a_stream_that_ends_without_a_finish_reason_is_broken_off(gateway, server):
    first, *_ = chunks(text("Half an answer"))
    server.reply = streaming(first)
    sequence = stream_events(gateway)
    assert runs(sequence) == ["message_start", "content_block_start", "content_block_delta", "error"]
    assert sequence[-1]["error"]["type"] == "api_error"


# -- a pool of keys: the failover relay -------------------------------------------


def key_label(request: Received) -> str:
    return LABELS.get(request.headers.get("x-goog-api-key", ""), "no known key")


def first_key(behaviour: Reply | Stream):
    """The pool's first key answers `behaviour`; the second answers normally."""
    return lambda request: behaviour if request.headers.get("x-goog-api-key") == FIRST_KEY else None


def pool_credential(gateway: Gateway, label: str) -> dict[str, Any]:
    return next(c for c in gateway.credentials()["providers"]["pool"]["credentials"] if c["label"] == label)


POOLED = "pooled-flash"  # routes to the pool as gemini-2.5-flash


@pytest.mark.parametrize("fault", ["status", "in-stream"])
def test_a_rate_limited_key_is_cooled_for_its_retry_delay(gateway, server, fault):
    """RESOURCE_EXHAUSTED as an HTTP 429 or as the first event of a 200 stream: the
    attempt failed before the client got anything, so the second key answers and the
    first sits out the 37 s Gemini named."""
    server.gate = first_key(rate_limited() if fault == "status" else Stream(sse([QUOTA])))
    sequence = stream_events(gateway, POOLED)
    assert runs(sequence) == ["message_start", "content_block_start", "content_block_delta", "content_block_stop",
                              "message_delta", "message_stop"]
    validate(sequence)
    assert accumulated(sequence) == {"model": POOLED, "content": [{"type": "text", "text": GREETING, "citations": None}],
                                     "stop_reason": "end_turn", "usage": {
                                         "input_tokens": 12, "output_tokens": 7, "cache_read_input_tokens": 0,
                                         "cache_creation_input_tokens": 0, "output_tokens_details": None,
                                         **UNSAID}}  # fmt: skip
    assert [key_label(r) for r in server.received] == ["first", "second"]
    assert {r.path for r in server.received} == {"/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"}
    state = pool_credential(gateway, "first")
    [cooldown] = state["cooldowns"]
    assert (state["state"], cooldown["kind"], cooldown["status"]) == ("cooling", "rate_limit", 429)
    assert 35 < cooldown["seconds_left"] <= 37, cooldown
    assert pool_credential(gateway, "second")["state"] == "healthy"
    server.received.clear()
    assert post(gateway, POOLED).status_code == 200
    assert [key_label(r) for r in server.received] == ["second"]  # the first still sits out


def test_an_invalid_key_in_a_pool_is_an_auth_failure_not_a_bad_request(gateway, server):
    """Gemini says 400 INVALID_ARGUMENT for a bad key; a 400 would end the request (the
    request is at fault), but API_KEY_INVALID makes it the key's: the next key serves."""
    server.gate = first_key(bad_key())
    answer = post(gateway, POOLED)
    assert answer.status_code == 200, answer.text
    assert answer.json()["content"] == [{"type": "text", "text": GREETING, "citations": None}]
    assert [key_label(r) for r in server.received] == ["first", "second"]
    state = pool_credential(gateway, "first")
    assert state["state"] != "healthy" and [c["kind"] for c in state["cooldowns"]] == ["auth"], state
    assert SECOND_KEY not in answer.text and FIRST_KEY not in answer.text


def test_a_request_gemini_rejects_is_not_tried_on_the_other_key(gateway, server):
    """The relay's answer is already the client's error: it is not wrapped a second time."""
    server.reply = lambda r: error_reply(400, "Request contains an invalid argument.", "INVALID_ARGUMENT")
    answer = post(gateway, POOLED)
    assert answer.status_code == 400
    assert error_of(answer) == {"type": "invalid_request_error", "message":
                                "provider 'pool' answered HTTP 400: Request contains an invalid argument. (INVALID_ARGUMENT)"}
    assert len(server.received) == 1


def test_every_key_rate_limited_is_one_429_with_the_earliest_recovery(gateway, server):
    server.reply = lambda r: rate_limited()
    answer = post(gateway, POOLED)
    assert (answer.status_code, answer.headers["retry-after"]) == (429, "37")
    error = error_of(answer)
    assert error["type"] == "rate_limit_error"
    assert error["message"].startswith("every upstream for model 'pooled-flash' is rate limited: pool/first 429; "
                                       "pool/second 429; the first recovers at "), error
    assert [key_label(r) for r in server.received] == ["first", "second"]
