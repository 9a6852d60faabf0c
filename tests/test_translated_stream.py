"""A corrupt stream is never a success: every translator, fed at every chunk boundary,
ends an answer it cannot tell exactly with an error event (and keeps the error as a
fact for the failover relay), never with message_stop."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest
from sse_checks import at_every_cut, events, feed, validate

from modelmux.config.types import Credential
from modelmux.translate.gemini import GeminiStream
from modelmux.translate.openai_chat import ChatStream, Context
from modelmux.translate.openai_responses import Context as ResponsesContext
from modelmux.translate.openai_responses import ResponsesStream
from modelmux.translate.translated_stream import BROKEN_OFF, TranslatedStream

CONTEXT = Context(model="claude-sonnet-4-5", input_tokens=5)
RESPONSES_CONTEXT = ResponsesContext(model="claude-sonnet-4-5", input_tokens=5, upstream_model="gpt-test")


def chat(delta: dict | None = None, finish: str | None = None, **choice: object) -> bytes:
    body = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish, **choice}]}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def args(fragment: str, id: str | None = None, name: str | None = None) -> bytes:
    call: dict = {"index": 0, "function": {"arguments": fragment}}
    if id:
        call.update(id=id, type="function")
        call["function"]["name"] = name
    return chat({"tool_calls": [call]})


def ev(kind: str, **fields: object) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **fields})}\n\n".encode()


def gemini(text: str, finish: str | None = None) -> bytes:
    candidate: dict = {"content": {"role": "model", "parts": [{"text": text}]}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return b"data: " + json.dumps({"candidates": [candidate]}).encode() + b"\r\n\r\n"


def text_events(index: int, text: str) -> list[dict]:
    return [{"type": "content_block_start", "index": index, "content_block": {"type": "text", "text": "", "citations": None}},
            {"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}}]


def start() -> dict:
    """Every field Anthropic's specification requires, the estimate of input and what is
    not known yet; the rest is null: what no upstream but Anthropic says."""
    return {"type": "message_start", "message": {
        "id": "msg", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "content": [],
        "stop_reason": None, "stop_sequence": None, "stop_details": None, "container": None, "usage": {
            "input_tokens": 5, "output_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
            "cache_creation": None, "server_tool_use": None, "service_tier": None, "inference_geo": None,
            "output_tokens_details": None}}}


def error(message: str, kind: str = "api_error") -> dict:
    return {"type": "error", "error": {"type": kind, "message": message}}


def names(sequence: list[dict]) -> list[str]:
    return [e["type"] for e in sequence]


# -- the tool call that would have run another command ---------------------------------


def test_a_corrupt_argument_fragment_is_an_error_not_another_command():
    """The middle of `{"command": "rm -rf /tmp/x", "safe": true}` does not parse; dropped,
    the client would have run `{"command": "rm", "safe": true}` with stop_reason tool_use."""
    corrupt = b'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":" -rf /tmp/x\n\n'
    data = b"".join([args('{"command": "rm', "call_1", "Bash"), corrupt, args('", "safe": true}'),
                     chat(finish="tool_calls"), b"data: [DONE]\n\n"])
    sequence = at_every_cut(lambda: ChatStream(CONTEXT), data)
    quoted = corrupt.decode().strip()
    assert sequence == [
        start(),
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "tool_use", "id": "call_1", "name": "Bash", "input": {}, "caller": {"type": "direct"}}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": '{"command": "rm'}},
        error(f"the upstream's stream held an event that is not JSON: {quoted!r}"),
    ]
    stream = ChatStream(CONTEXT)
    feed(stream, data)
    assert stream.error is not None and (stream.error.status, stream.error.error_type) == (502, "api_error")


# -- an event that cannot be read, in every protocol --------------------------------------

GARBAGE = b"data: {not json at all\n\n"
STREAMS: dict[str, tuple[Callable[[], TranslatedStream], list[bytes], list[bytes]]] = {
    # protocol: (a fresh translator, "Hel" streamed, the rest of a complete answer)
    "openai-chat": (lambda: ChatStream(CONTEXT), [chat({"content": "Hel"})],
                    [chat({"content": "lo"}), chat(finish="stop"), b"data: [DONE]\n\n"]),
    "openai-responses": (lambda: ResponsesStream(RESPONSES_CONTEXT),
                         [ev("response.output_text.delta", item_id="m1", content_index=0, delta="Hel")],
                         [ev("response.output_text.delta", item_id="m1", content_index=0, delta="lo"),
                          ev("response.completed", response={"status": "completed", "output": []})]),
    "gemini": (lambda: GeminiStream(CONTEXT), [gemini("Hel")], [gemini("lo", finish="STOP")]),
}


@pytest.mark.parametrize("protocol", STREAMS)
def test_a_complete_answer_has_the_whole_shape_from_start_to_end(protocol):
    """Every field the specification requires: message_start's, each block's, and
    message_delta's, whose usage is the part of it that may change (here: an upstream
    that said no counts)."""
    make, before, after = STREAMS[protocol]
    sequence = at_every_cut(make, b"".join([*before, *after]))
    counts = {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
              "output_tokens_details": None, "server_tool_use": None}
    assert sequence == [start(), *text_events(0, "Hel"),
                        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "lo"}},
                        {"type": "content_block_stop", "index": 0},
                        {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None,
                                                            "stop_details": None, "container": None}, "usage": counts},
                        {"type": "message_stop"}]


@pytest.mark.parametrize("protocol", STREAMS)
@pytest.mark.parametrize("bad", [GARBAGE, b"data: 42\n\n", b"data: {\"text\": \"caf\xe9\"}\n\n"],
                         ids=["not-json", "not-an-object", "not-utf8"])
def test_an_unreadable_event_ends_the_answer_with_an_error(protocol, bad):
    make, before, after = STREAMS[protocol]
    sequence = at_every_cut(make, b"".join([*before, bad, *after]))
    assert names(sequence) == ["message_start", "content_block_start", "content_block_delta", "error"]
    assert sequence[1:3] == text_events(0, "Hel")
    shown = bad.decode("utf-8", "replace").strip()
    assert sequence[-1] == error(f"the upstream's stream held an event that is not JSON: {shown!r}")


@pytest.mark.parametrize("protocol", STREAMS)
def test_before_any_content_the_error_is_a_fact_with_its_status(protocol):
    """What the relay's Pump reads: a failed attempt with status 502, failover applies."""
    make, _, after = STREAMS[protocol]
    stream = make()
    sequence = events(feed(stream, GARBAGE + b"".join(after)))
    assert names(sequence) == ["message_start", "error"]
    assert stream.error is not None and (stream.error.status, stream.error.error_type) == (502, "api_error")


@pytest.mark.parametrize("protocol", STREAMS)
def test_a_body_that_ends_mid_event_broke_off(protocol):
    make, before, _ = STREAMS[protocol]
    sequence = at_every_cut(make, b"".join(before) + GARBAGE[:-2])
    assert sequence[-1] == error(BROKEN_OFF)


def test_the_provider_key_never_reaches_an_error_message():
    stream = ChatStream(CONTEXT)
    stream.secrets = (Credential("main", "sk-live-aaaaaaaaaaaa-0001"),)
    sequence = events(feed(stream, chat({"content": "x"}) + b"data: {sk-live-aaaaaaaaaaaa-0001\n\n"))
    assert sequence[-1] == error("the upstream's stream held an event that is not JSON: 'data: {main…0001'")
    assert stream.error is not None and "aaaa" not in stream.error.message


# -- answers that contradict themselves ---------------------------------------------------


@pytest.mark.parametrize("finish", ["tool_calls", "function_call"])
def test_a_finish_that_claims_tool_calls_none_made_is_an_error(finish):
    sequence = at_every_cut(lambda: ChatStream(CONTEXT), chat({"content": "Let me check."}) + chat(finish=finish))
    assert sequence == [start(), *text_events(0, "Let me check."), error(
        f"the upstream's answer is broken: it finished for tool calls (finish_reason '{finish}') but made none")]


@pytest.mark.parametrize("finish", ["error", "abort"])
def test_a_finish_that_says_it_failed_is_an_error(finish):
    sequence = events(feed(ChatStream(CONTEXT), chat({"content": "Hi"}) + chat(finish=finish)))
    assert sequence[-1] == error(f"the upstream's answer is broken: it ended with finish_reason '{finish}'")


def test_arguments_that_are_not_an_object_are_an_error():
    sequence = events(feed(ChatStream(CONTEXT), args('{"command": "ls"', "call_1", "Bash") + chat(finish="tool_calls")))
    assert sequence[-1] == error("the upstream's answer is broken: the arguments of its call to 'Bash' are not a JSON "
                                 "object: '{\"command\": \"ls\"'")
    assert "message_stop" not in names(sequence)


def test_arguments_cut_off_by_max_tokens_stream_as_anthropic_streams_them():
    sequence = events(feed(ChatStream(CONTEXT), args('{"command": "ls', "call_1", "Bash") + chat(finish="length")))
    validate(sequence)
    assert sequence[-2]["delta"] == {"stop_reason": "max_tokens", "stop_sequence": None, "stop_details": None, "container": None}


def test_arguments_after_a_call_was_whole_are_an_error():
    """A whole call's block is closed when text follows; more arguments for it cannot be
    shown, so the answer cannot be told exactly."""
    data = args('{"a": 1}', "call_1", "Bash") + chat({"content": "ok"}) + args(', "b": 2}') + chat(finish="tool_calls")
    sequence = events(feed(ChatStream(CONTEXT), data))
    assert sequence[-1] == error("the upstream's answer is broken: more arguments came for its call to 'Bash' after "
                                 "they were whole")


def test_nothing_follows_the_error_of_a_call_that_broke_the_answer():
    """The chunk that brings more arguments for a whole call also starts another call:
    the error ends the stream there, and the other call's block is not written after it."""
    more = [{"index": 0, "function": {"arguments": ', "b": 2}'}},
            {"index": 1, "id": "call_2", "type": "function", "function": {"name": "Read", "arguments": "{}"}}]
    data = args('{"a": 1}', "call_1", "Bash") + chat({"content": "ok"}) + chat({"tool_calls": more})
    sequence = at_every_cut(lambda: ChatStream(CONTEXT), data + chat(finish="tool_calls"))
    assert names(sequence)[-2:] == ["content_block_delta", "error"]


def test_responses_text_for_a_reasoning_item_is_thinking():
    """A text delta the upstream sends for the reasoning item being written goes into its
    thinking block as thinking: a thinking block takes no text_delta."""
    data = b"".join([ev("response.output_item.added", output_index=0, item={"id": "rs_1", "type": "reasoning", "summary": []}),
                     ev("response.output_text.delta", item_id="rs_1", content_index=0, delta="Let me "),
                     ev("response.output_text.delta", item_id="rs_1", content_index=0, delta="think."),
                     ev("response.completed", response={"status": "completed", "output": []})])
    sequence = at_every_cut(lambda: ResponsesStream(RESPONSES_CONTEXT), data)
    validate(sequence)
    assert [e["delta"] for e in sequence if e["type"] == "content_block_delta"] == [
        {"type": "thinking_delta", "thinking": "Let me "}, {"type": "thinking_delta", "thinking": "think."}]


def test_responses_arguments_that_are_not_an_object_are_an_error():
    item = {"id": "fc_1", "type": "function_call", "call_id": "call_1", "name": "Bash", "arguments": ""}
    data = b"".join([ev("response.output_item.added", output_index=0, item=item),
                     ev("response.function_call_arguments.delta", item_id="fc_1", delta='{"command": '),
                     ev("response.output_item.done", output_index=0, item={**item, "arguments": '{"command": '}),
                     ev("response.completed", response={"status": "completed", "output": []})])
    sequence = at_every_cut(lambda: ResponsesStream(RESPONSES_CONTEXT), data)
    assert sequence[-1] == error("the upstream's answer is broken: the arguments of its call to 'Bash' are not a JSON "
                                 "object: '{\"command\": '")


# -- events the protocol does not define ---------------------------------------------------


def test_a_responses_event_the_api_does_not_define_is_an_error():
    make, before, after = STREAMS["openai-responses"]
    sequence = events(feed(make(), b"".join([*before, ev("response.output_text.shouted", delta="LO"), *after])))
    assert sequence[-1] == error("the upstream's answer is broken: it sent an event the Responses API does not define: "
                                 "'response.output_text.shouted'")


def test_responses_events_of_what_modelmux_never_asks_for_are_skipped_and_logged_once(caplog):
    make, before, after = STREAMS["openai-responses"]
    searches = [ev("response.web_search_call.searching", item_id="ws_1")] * 3
    with caplog.at_level(logging.WARNING):
        sequence = events(feed(make(), b"".join([*before, *searches, b"data: [DONE]\n\n", *after])))
    validate(sequence)
    assert [r.getMessage() for r in caplog.records] == [
        "skipping response.web_search_call.searching events of a Responses stream: modelmux never asks for them"]
