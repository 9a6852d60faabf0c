"""What an answer holds besides plain text, translated exactly or ended with an error, never
dropped: Chat content given as parts and legacy function calls, Gemini parts modelmux never
asked for, and every finish reason the APIs document. Streams are fed at every chunk
boundary; whole answers give the same message or the same error."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from sse_checks import accumulated, at_every_cut, events, feed, validate

from modelmux.errors import GatewayError
from modelmux.translate.gemini import GeminiStream, from_gemini
from modelmux.translate.gemini.response import FAILURES
from modelmux.translate.openai_chat import ChatStream, Context, from_chat
from modelmux.translate.openai_responses import Context as ResponsesContext
from modelmux.translate.openai_responses import ResponsesStream, from_responses

CONTEXT = Context(model="claude-sonnet-4-5", input_tokens=5)
RESPONSES_CONTEXT = ResponsesContext(model="claude-sonnet-4-5", input_tokens=5, upstream_model="gpt-test")
DONE = b"data: [DONE]\n\n"


def chat(delta: dict | None = None, finish: str | None = None) -> bytes:
    body = {"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}]}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def whole_chat(message: dict, finish: str = "stop") -> dict:
    return {"object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assistant", **message},
                                                      "finish_reason": finish}]}


def thinking(*texts: str) -> dict:
    """Mistral's ThinkChunk: text chunks inside a thinking chunk."""
    return {"type": "thinking", "thinking": [{"type": "text", "text": text} for text in texts]}


def text_part(text: str) -> dict:
    return {"type": "text", "text": text}


def gemini(*parts: dict, finish: str | None = None, why: str | None = None) -> bytes:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": list(parts)}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    if why:
        candidate["finishMessage"] = why
    return b"data: " + json.dumps({"candidates": [candidate]}).encode() + b"\r\n\r\n"


def whole_gemini(*parts: dict, finish: str = "STOP") -> dict:
    return {"candidates": [{"content": {"role": "model", "parts": list(parts)}, "finishReason": finish}]}


def ev(kind: str, **fields: object) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **fields})}\n\n".encode()


def message_of(sequence: list[dict]) -> dict:
    validate(sequence)
    return accumulated(sequence)


def blocks(*pairs: tuple[str, str]) -> list[dict]:
    return [{"type": "text", "text": text, "citations": None} if kind == "text"
            else {"type": "thinking", "thinking": text, "signature": ""} for kind, text in pairs]


def error(message: str) -> dict:
    return {"type": "error", "error": {"type": "api_error", "message": message}}


def raised(translate, body: dict, context: Any = CONTEXT) -> str:
    """The message of the 502 a whole answer is."""
    with pytest.raises(GatewayError) as caught:
        translate(body, context)
    assert (caught.value.status, caught.value.error_type) == (502, "api_error")
    return caught.value.message


# -- Chat content given as parts ----------------------------------------------------------


def test_mistral_thinking_and_text_parts_stream_as_thinking_and_text():
    data = b"".join([chat({"role": "assistant", "content": [thinking("Let me ")]}), chat({"content": [thinking("see.")]}),
                     chat({"content": [text_part("It is ")]}), chat({"content": "42."}), chat(finish="stop"), DONE])
    message = message_of(at_every_cut(lambda: ChatStream(CONTEXT), data))
    assert (message["content"], message["stop_reason"]) == (
        blocks(("thinking", "Let me see."), ("text", "It is 42.")), "end_turn")


def test_a_whole_answer_given_as_parts_has_its_thinking_and_text():
    """Mistral's documented shape (its reasoning page), and a list of one text part."""
    mistral = from_chat(whole_chat({"content": [thinking("Two ", "steps."), text_part("Done.")]}), CONTEXT)
    assert mistral["content"] == blocks(("thinking", "Two steps."), ("text", "Done."))
    plain = from_chat(whole_chat({"content": [text_part("Hi "), text_part("there.")]}), CONTEXT)
    assert plain["content"] == blocks(("text", "Hi there."))


UNHOLDABLE_PARTS = [
    pytest.param({"type": "image_url", "image_url": {"url": "https://x/cat.png"}}, "a content part of type 'image_url'",
                 id="image"),
    pytest.param({"type": "document_url", "document_url": "https://x/a.pdf"}, "a content part of type 'document_url'",
                 id="document"),
    pytest.param({"type": "reference", "reference_ids": [1]}, "a content part of type 'reference'", id="reference"),
    pytest.param({"type": "input_audio", "input_audio": "AAAA"}, "a content part of type 'input_audio'", id="audio"),
    pytest.param({"text": "no type"}, "a content part of type dict (no type)", id="untyped"),
    pytest.param({"type": "thinking", "thinking": [{"type": "reference", "reference_ids": [2]}]},
                 "a thinking part of type 'reference'", id="reference-in-thinking"),
]  # fmt: skip


@pytest.mark.parametrize("part, what", UNHOLDABLE_PARTS)
def test_a_content_part_an_anthropic_message_cannot_hold_is_an_error(part, what):
    expected = f"the upstream's answer holds {what}, which an Anthropic message cannot hold"
    data = b"".join([chat({"content": "Hel"}), chat({"content": [part]}), chat({"content": "lo"}), chat(finish="stop"), DONE])
    sequence = at_every_cut(lambda: ChatStream(CONTEXT), data)
    assert [e["type"] for e in sequence] == ["message_start", "content_block_start", "content_block_delta", "error"]
    assert sequence[-1] == error(expected)
    assert raised(from_chat, whole_chat({"content": [text_part("Hel"), part]})) == expected


def test_content_that_is_neither_text_nor_parts_is_an_error():
    expected = "the upstream's answer is broken: its content is neither text nor a list of parts: {\"text\": \"Hi\"}"
    assert events(feed(ChatStream(CONTEXT), chat({"content": {"text": "Hi"}}) + chat(finish="stop")))[-1] == error(expected)
    assert raised(from_chat, whole_chat({"content": {"text": "Hi"}})) == expected


def test_a_thinking_signature_is_not_kept_and_that_is_logged_once(caplog):
    signed = {**thinking("Hmm."), "signature": "c2lnbmF0dXJl"}
    with caplog.at_level(logging.WARNING):
        message = message_of(events(feed(ChatStream(CONTEXT), chat({"content": [signed]}) * 3 + chat(finish="stop"))))
        assert message["content"] == blocks(("thinking", "Hmm.Hmm.Hmm."))
        assert from_chat(whole_chat({"content": [signed, signed]}), CONTEXT)["content"] == blocks(("thinking", "Hmm.Hmm."))
    assert [r.getMessage() for r in caplog.records] == [
        "a thinking part's signature is not kept: modelmux replays no reasoning state to Chat Completions"] * 2


# -- Chat's legacy function_call ----------------------------------------------------------


def test_a_streamed_legacy_function_call_is_a_tool_use():
    data = b"".join([chat({"role": "assistant", "content": None, "function_call": {"name": "Bash", "arguments": ""}}),
                     chat({"function_call": {"arguments": '{"command": '}}), chat({"function_call": {"arguments": '"ls"}'}}),
                     chat(finish="function_call"), DONE])
    message = message_of(at_every_cut(lambda: ChatStream(CONTEXT), data))
    [block] = message["content"]
    assert block.pop("id").startswith("toolu_")
    assert (block, message["stop_reason"]) == (
        {"type": "tool_use", "name": "Bash", "input": {"command": "ls"}, "caller": {"type": "direct"}}, "tool_use")


def test_a_whole_legacy_function_call_is_a_tool_use_and_held_to_its_arguments():
    call = {"content": "Listing.", "function_call": {"name": "Bash", "arguments": '{"command": "ls"}'}}
    message = from_chat(whole_chat(call, "function_call"), CONTEXT)
    assert [b["type"] for b in message["content"]] == ["text", "tool_use"] and message["stop_reason"] == "tool_use"
    assert message["content"][1]["input"] == {"command": "ls"}
    broken = {"function_call": {"name": "Bash", "arguments": '{"command": "ls"'}}
    expected = ("the upstream's answer is broken: the arguments of its call to 'Bash' are not a JSON object: "
                "'{\"command\": \"ls\"'")
    assert raised(from_chat, whole_chat(broken, "function_call")) == expected
    streamed = chat({"function_call": broken["function_call"]}) + chat(finish="function_call")
    assert events(feed(ChatStream(CONTEXT), streamed))[-1] == error(expected)


# -- Chat finish reasons ------------------------------------------------------------------


@pytest.mark.parametrize("finish, reason", [
    ("stop", "end_turn"), ("eos", "end_turn"), ("length", "max_tokens"),
    ("model_length", "model_context_window_exceeded"), ("model_context_window_exceeded", "model_context_window_exceeded"),
    ("content_filter", "refusal"), ("sensitive", "refusal"),
])  # fmt: skip
def test_each_documented_finish_reason_is_its_stop_reason(finish, reason):
    streamed = message_of(events(feed(ChatStream(CONTEXT), chat({"content": "Hi"}) + chat(finish=finish) + DONE)))
    assert streamed["stop_reason"] == reason == from_chat(whole_chat({"content": "Hi"}, finish), CONTEXT)["stop_reason"]


@pytest.mark.parametrize("finish, why", [
    *[(failed, f"it ended with finish_reason '{failed}'")
      for failed in ("error", "abort", "repetition", "insufficient_system_resource", "network_error")],
    ("paused", "it ended with finish_reason 'paused', which no API modelmux speaks to defines"),
])  # fmt: skip
def test_a_finish_reason_that_failed_or_that_no_api_defines_is_an_error(finish, why):
    sequence = at_every_cut(lambda: ChatStream(CONTEXT), chat({"content": "Hi"}) + chat(finish=finish) + DONE)
    assert sequence[-1] == error(f"the upstream's answer is broken: {why}")
    assert raised(from_chat, whole_chat({"content": "Hi"}, finish)) == f"the upstream's answer is broken: {why}"


# -- Gemini parts ---------------------------------------------------------------------------

GEMINI_PARTS = [
    ({"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}, "media the model generated (an inlineData part)"),
    ({"fileData": {"mimeType": "application/pdf", "fileUri": "gs://b/a.pdf"}}, "a file (a fileData part)"),
    ({"executableCode": {"language": "PYTHON", "code": "print(1)"}}, "code for Gemini to run (an executableCode part)"),
    ({"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "1"}},
     "the result of Gemini running code (a codeExecutionResult part)"),
    ({"functionResponse": {"name": "Bash", "response": {}}}, "a function's result (a functionResponse part)"),
    ({"toolCall": {"id": "t1"}}, "a call of a Gemini server tool (a toolCall part)"),
    ({"toolResponse": {"id": "t1"}}, "a Gemini server tool's result (a toolResponse part)"),
    ({"hologram": {"depth": 3}}, "a part of a kind Gemini's API reference does not define (hologram)"),
    ({"hologram": {"depth": 3}, "thoughtSignature": "U0lH"},
     "a part of a kind Gemini's API reference does not define (hologram)"),
]  # fmt: skip


@pytest.mark.parametrize("part, what", GEMINI_PARTS, ids=lambda v: next(iter(v)) if isinstance(v, dict) else "")
def test_a_gemini_part_an_anthropic_message_cannot_hold_is_an_error(part, what):
    expected = f"the upstream's answer holds {what}, which an Anthropic message cannot hold"
    data = gemini({"text": "Hel"}) + gemini({"text": "lo"}, part) + gemini({"text": "!"}, finish="STOP")
    sequence = at_every_cut(lambda: GeminiStream(CONTEXT), data)
    assert [e["type"] for e in sequence] == ["message_start", "content_block_start", "content_block_delta",
                                             "content_block_delta", "error"]  # what came before it, then the error
    assert sequence[-1] == error(expected)
    assert raised(from_gemini, whole_gemini({"text": "Hello"}, part)) == expected


def test_a_field_gemini_does_not_define_beside_text_is_skipped_and_logged_once(caplog):
    with caplog.at_level(logging.WARNING):
        streamed = message_of(events(feed(GeminiStream(CONTEXT), b"".join(
            gemini({"text": t, "sparkle": 1}) for t in ("a", "b", "c")) + gemini(finish="STOP"))))
        whole = from_gemini(whole_gemini({"text": "a", "sparkle": 1}, {"text": "b", "sparkle": 2}), CONTEXT)
    assert streamed["content"] == blocks(("text", "abc")) and whole["content"] == blocks(("text", "ab"))
    assert [r.getMessage() for r in caplog.records] == [
        "skipping the field 'sparkle' of a Gemini part: its API reference does not define it"] * 2


# -- Gemini finish reasons --------------------------------------------------------------------

GEMINI_REFUSALS = ["SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
                   "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", "MODEL_ARMOR"]
# Gemini's FinishReason values that say the answer failed, and one its reference does not define.
GEMINI_FAILURES = ["MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS", "MALFORMED_RESPONSE",
                   "MISSING_THOUGHT_SIGNATURE", "LANGUAGE", "NO_IMAGE", "IMAGE_OTHER", "OTHER", "GLITTER"]


@pytest.mark.parametrize("finish", GEMINI_REFUSALS)
def test_a_gemini_filter_is_a_refusal_that_says_which(finish):
    details = {"type": "refusal", "category": None, "explanation": f"Gemini stopped: {finish}: Withheld."}
    sequence = at_every_cut(lambda: GeminiStream(CONTEXT), gemini({"text": "x"}) + gemini(finish=finish, why="Withheld."))
    assert (message_of(sequence)["stop_reason"], sequence[-2]["delta"]["stop_details"]) == ("refusal", details)
    body = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": finish, "finishMessage": "Withheld."}]}
    whole = from_gemini(body, CONTEXT)
    assert (whole["stop_reason"], whole["stop_details"], whole["content"]) == ("refusal", details, blocks(("text", "x")))


@pytest.mark.parametrize("finish, reason", [("STOP", "end_turn"), ("FINISH_REASON_UNSPECIFIED", "end_turn"),
                                            ("MAX_TOKENS", "max_tokens")])
def test_a_normal_gemini_finish_is_its_stop_reason(finish, reason):
    sequence = at_every_cut(lambda: GeminiStream(CONTEXT), gemini({"text": "x"}) + gemini(finish=finish))
    assert message_of(sequence)["stop_reason"] == reason == from_gemini(whole_gemini({"text": "x"}, finish=finish),
                                                                        CONTEXT)["stop_reason"]
    assert sequence[-2]["delta"]["stop_details"] is None


@pytest.mark.parametrize("finish", GEMINI_FAILURES)
def test_a_gemini_finish_that_failed_is_an_error(finish):
    """Each says why in its own words (FAILURES; one is spelled out in test_gemini_stream.py)."""
    assert set(FAILURES) == set(GEMINI_FAILURES) - {"GLITTER"}
    why = FAILURES.get(finish, "a finishReason its API reference does not define")
    expected = f"the upstream's answer is broken: Gemini stopped with finishReason {finish!r} ({why})"
    sequence = at_every_cut(lambda: GeminiStream(CONTEXT), gemini({"text": "Let me"}) + gemini(finish=finish))
    assert [e["type"] for e in sequence] == ["message_start", "content_block_start", "content_block_delta", "error"]
    assert sequence[-1] == error(expected)
    assert raised(from_gemini, whole_gemini({"text": "Let me"}, finish=finish)) == expected


# -- Responses: why an answer is incomplete, and what a message holds -----------------------

MESSAGE = {"id": "msg_1", "type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Cut"}]}


def responses_stream(status: str, **fields: Any) -> bytes:
    final = {"status": status, "output": [MESSAGE], **fields}
    return b"".join([ev("response.output_item.added", output_index=0, item={**MESSAGE, "content": []}),
                     ev("response.output_text.delta", item_id="msg_1", content_index=0, delta="Cut"),
                     ev("response.output_item.done", output_index=0, item=MESSAGE),
                     ev(f"response.{status}", response=final)])


@pytest.mark.parametrize("details, reason", [({"reason": "max_output_tokens"}, "max_tokens"),
                                             ({"reason": "content_filter"}, "refusal")])
def test_an_incomplete_response_stops_for_its_documented_reason(details, reason):
    sequence = at_every_cut(lambda: ResponsesStream(RESPONSES_CONTEXT),
                            responses_stream("incomplete", incomplete_details=details))
    whole = from_responses({"status": "incomplete", "incomplete_details": details, "output": [MESSAGE]}, RESPONSES_CONTEXT)
    assert message_of(sequence)["stop_reason"] == reason == whole["stop_reason"]


@pytest.mark.parametrize("details, why", [
    (None, "it is incomplete and does not say why"),
    ({"reason": "server_restart"}, "it is incomplete for a reason the Responses API does not define: 'server_restart'"),
])  # fmt: skip
def test_an_incomplete_response_that_says_no_documented_reason_is_an_error(details, why):
    expected = f"the upstream's answer is broken: {why}"
    sequence = at_every_cut(lambda: ResponsesStream(RESPONSES_CONTEXT),
                            responses_stream("incomplete", incomplete_details=details))
    assert sequence[-1] == error(expected) and "message_stop" not in [e["type"] for e in sequence]
    body = {"status": "incomplete", "incomplete_details": details, "output": [MESSAGE]}
    assert raised(from_responses, body, RESPONSES_CONTEXT) == expected


def test_a_message_part_with_neither_text_nor_a_refusal_is_an_error():
    audio = {**MESSAGE, "content": [{"type": "output_text", "text": "Hear: "}, {"type": "output_audio", "data": "AAAA"}]}
    expected = ("the upstream's answer holds a message part of type 'output_audio', which an Anthropic message "
                "cannot hold")
    assert raised(from_responses, {"status": "completed", "output": [audio]}, RESPONSES_CONTEXT) == expected
    data = ev("response.output_item.done", output_index=0, item=audio) + ev("response.completed",
                                                                            response={"status": "completed", "output": []})
    assert at_every_cut(lambda: ResponsesStream(RESPONSES_CONTEXT), data)[-1] == error(expected)


def test_a_refusal_part_is_a_refusal_whole_and_streamed():
    refusal = {**MESSAGE, "content": [{"type": "refusal", "refusal": "I can't help with that."}]}
    whole = from_responses({"status": "completed", "output": [refusal]}, RESPONSES_CONTEXT)
    data = b"".join([ev("response.refusal.delta", item_id="msg_1", content_index=0, delta="I can't "),
                     ev("response.refusal.done", item_id="msg_1", content_index=0, refusal="I can't help with that."),
                     ev("response.output_item.done", output_index=0, item=refusal),
                     ev("response.completed", response={"status": "completed", "output": [refusal]})])
    streamed = message_of(at_every_cut(lambda: ResponsesStream(RESPONSES_CONTEXT), data))
    assert (whole["content"], whole["stop_reason"]) == (streamed["content"], streamed["stop_reason"]) == (
        blocks(("text", "I can't help with that.")), "refusal")
