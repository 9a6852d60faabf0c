"""Gemini streams → Anthropic: fed at every chunking, checked by the event-grammar
validator and by the anthropic SDK's own accumulator, and the thought signatures
they carry sent back byte for byte."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sse_checks import accumulated, events, feed, validate

from modelmux.config.types import Shape
from modelmux.translate.gemini import Context, GeminiStream, from_gemini, function_name, to_gemini
from modelmux.translate.translated_stream import BROKEN_OFF

LONG = "mcp__plugin_superpowers_chrome__use_browser_with_a_really_long_name_indeed"
SHORT = function_name(LONG)
CONTEXT = Context(model="claude-sonnet-4-5", tool_names={SHORT: LONG}, input_tokens=321)
SIG_T = "CiIBcsjafJx0mV+8y0s2gQ/ZL3j5yE1cW2Ei9wL0dXbJ9kU="  # base64 with + and /: must come back unchanged
SIG_C = "CmUBcsjafMtl3W2qKSN1A6n5HxxGm+bw4Kp/BuWc0f+A=="
USAGE = {"promptTokenCount": 100, "candidatesTokenCount": 20, "thoughtsTokenCount": 7, "cachedContentTokenCount": 60,
         "totalTokenCount": 127}  # fmt: skip
TOOL_ID = re.compile(r"^toolu_[0-9a-f]{24}$")


def chunk(*parts: dict, finish: str | None = None, usage: dict | None = None, why: str | None = None) -> bytes:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": list(parts)}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    if why:
        candidate["finishMessage"] = why
    body: dict[str, Any] = {"candidates": [candidate], "modelVersion": "gemini-2.5-pro", "responseId": "r1"}
    if usage is not None:
        body["usageMetadata"] = usage
    return b"data: " + json.dumps(body, ensure_ascii=False).encode() + b"\r\n\r\n"


def thought(text: str, signature: str | None = None) -> dict:
    return {"text": text, "thought": True, **({"thoughtSignature": signature} if signature else {})}


def text(value: str, signature: str | None = None) -> dict:
    return {"text": value, **({"thoughtSignature": signature} if signature else {})}


def fc(name: str, signature: str | None = None, **args: Any) -> dict:
    return {"functionCall": {"name": name, "args": args}, **({"thoughtSignature": signature} if signature else {})}


# Everything at once: a keep-alive, thoughts, text with multi-byte characters and the
# signature of the thoughts, parallel calls (the first signed), a final empty part.
FULL = [
    b": keep-alive\r\n\r\n",
    chunk(thought("Let me "), usage={"promptTokenCount": 100}),
    chunk(thought("think.")),
    chunk(text("Voilà — ", SIG_T)),
    chunk(text("日本語 ✓")),
    chunk(fc("Bash", SIG_C, command="ls"), fc(SHORT, path="/tmp/a")),
    chunk(text(""), finish="STOP", usage=USAGE),
]
FULL_CONTENT = [
    {"type": "thinking", "thinking": "Let me think.", "signature": f"gemini-next:{SIG_T}"},
    {"type": "text", "text": "Voilà — 日本語 ✓", "citations": None},
    {"type": "thinking", "thinking": "", "signature": f"gemini-next:{SIG_C}"},
    {"type": "tool_use", "id": "ID", "name": "Bash", "input": {"command": "ls"}, "caller": {"type": "direct"}},
    {"type": "tool_use", "id": "ID", "name": LONG, "input": {"path": "/tmp/a"}, "caller": {"type": "direct"}},
]
# The usage fields Gemini has no counts for.
UNSAID = {"cache_creation": None, "server_tool_use": None, "service_tier": None, "inference_geo": None}
FULL_USAGE = {"input_tokens": 40, "output_tokens": 27, "cache_read_input_tokens": 60, "cache_creation_input_tokens": 0,
              "output_tokens_details": {"thinking_tokens": 7}, **UNSAID}


def run(pieces: list[bytes], sizes: list[int] | None = None) -> list[bytes]:
    return feed(GeminiStream(CONTEXT), b"".join(pieces), sizes)


def same_ids(content: list[dict]) -> list[dict]:
    """Tool ids are random: check their form, then compare the rest."""
    for block in content:
        if block["type"] == "tool_use":
            assert TOOL_ID.match(block["id"])
    return [{**b, "id": "ID"} if b["type"] == "tool_use" else b for b in content]


def final(pieces: list[bytes], sizes: list[int] | None = None) -> dict:
    sequence = events(run(pieces, sizes))
    validate(sequence)
    message = accumulated(sequence)
    message["content"] = same_ids(message["content"])
    return message


def replayed(content: list[dict], model: str = "gemini-2.5-pro") -> list[dict]:
    """The model turn Gemini gets back when the client sends this content as history."""
    body = {"messages": [{"role": "user", "content": "go"}, {"role": "assistant", "content": content}],
            "tools": [{"name": "Bash", "input_schema": {}}, {"name": LONG, "input_schema": {}}]}  # fmt: skip
    return to_gemini(body, Shape(), model)["contents"][1]["parts"]


def test_full_stream():
    sequence = events(run(FULL))
    validate(sequence)
    assert [e["type"] for e in sequence] == [
        "message_start", "ping",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_stop",
        "content_block_start", "content_block_delta", "content_block_stop",
        "message_delta", "message_stop",
    ]  # fmt: skip
    assert sequence[0]["message"]["model"] == "claude-sonnet-4-5"
    assert sequence[0]["message"]["usage"]["input_tokens"] == 321  # modelmux's estimate until the real count
    message = accumulated(sequence)
    message["content"] = same_ids(message["content"])
    assert message == {"model": "claude-sonnet-4-5", "content": FULL_CONTENT, "stop_reason": "tool_use", "usage": FULL_USAGE}


@given(st.lists(st.integers(min_value=1, max_value=97), min_size=1, max_size=30), st.booleans())
@settings(max_examples=300, deadline=None)
def test_any_chunking_and_framing_gives_the_same_events(sizes, lf):
    pieces = [p.replace(b"\r\n", b"\n") for p in FULL] if lf else FULL
    normal = lambda seq: [{**e, "message": {**e["message"], "id": "x"}} if e["type"] == "message_start" else  # noqa: E731
                          {**e, "content_block": {**e["content_block"], "id": "x"}} if e.get("content_block", {}).get("id") else e
                          for e in seq]  # fmt: skip
    assert normal(events(run(pieces, sizes))) == normal(events(run(FULL)))


def test_a_whole_answer_gives_the_same_message():
    whole = {"candidates": [{"content": {"role": "model", "parts": [
        thought("Let me think."), text("Voilà — 日本語 ✓", SIG_T), fc("Bash", SIG_C, command="ls"), fc(SHORT, path="/tmp/a"),
    ]}, "finishReason": "STOP"}], "usageMetadata": USAGE}  # fmt: skip
    message = from_gemini(whole, CONTEXT)
    assert same_ids(message["content"]) == FULL_CONTENT
    assert (message["stop_reason"], message["usage"]) == ("tool_use", FULL_USAGE)


# -- thought signatures go back where they came from ---------------------------------


def test_streamed_signatures_come_back_on_their_parts_unchanged():
    assert replayed(final(FULL)["content"]) == [
        {"text": "Voilà — 日本語 ✓", "thoughtSignature": SIG_T},
        {"functionCall": {"name": "Bash", "args": {"command": "ls"}}, "thoughtSignature": SIG_C},
        {"functionCall": {"name": SHORT, "args": {"path": "/tmp/a"}}},
    ]


def test_a_signature_after_the_final_text_leaves_the_text_last():
    """Gemini 3 signs the last part of an answer without calls, and streams the
    signature after the text (its thought-signatures FAQ: "in a part with an empty
    text content part"). A block after the answer would empty Claude Code's `-p`
    result, so the text stays last; the signature is not validated (Google)."""
    for pieces in ([chunk(text("Hello")), chunk(text(" world")), chunk(text("", SIG_T), finish="STOP")],
                   [chunk(text("Hello")), chunk(text(" world", SIG_T), finish="STOP")],
                   [chunk(text("Hello")), chunk(text(" world", SIG_T)), chunk(finish="STOP")]):
        sequence = events(run(pieces))
        validate(sequence)
        assert [e["type"] for e in sequence] == [
            "message_start", "content_block_start", "content_block_delta", "content_block_delta", "content_block_stop",
            "message_delta", "message_stop"]  # fmt: skip
        message = accumulated(sequence)
        assert message["content"] == [{"type": "text", "text": "Hello world", "citations": None}]
        assert replayed(message["content"], "gemini-3-pro-preview") == [{"text": "Hello world"}]
        for cut in range(1, len(b"".join(pieces))):  # every chunk boundary
            assert events(run(pieces, [cut]))[1:] == sequence[1:], cut


def test_a_signature_after_text_that_more_blocks_follow_goes_back_on_that_text():
    message = final([chunk(text("Hello")), chunk(text(" world", SIG_T)), chunk(fc("Bash", SIG_C, command="ls"), finish="STOP")])
    assert message["content"] == [
        {"type": "text", "text": "Hello world", "citations": None},
        {"type": "thinking", "thinking": "", "signature": f"gemini-previous:{SIG_T}"},
        {"type": "thinking", "thinking": "", "signature": f"gemini-next:{SIG_C}"},
        {"type": "tool_use", "id": "ID", "name": "Bash", "input": {"command": "ls"}, "caller": {"type": "direct"}},
    ]
    assert replayed(message["content"]) == [{"text": "Hello world", "thoughtSignature": SIG_T},
                                            {"functionCall": {"name": "Bash", "args": {"command": "ls"}}, "thoughtSignature": SIG_C}]


def test_a_whole_answer_carries_its_text_signature_before_the_text():
    """A whole answer is known before anything is sent: the signature of its text,
    wherever in the run of text parts it came, rides before the text, and the text
    is the last block."""
    for parts in ([text("Hello "), text("world"), text("", SIG_T)], [text("Hello ", SIG_T), text("world")],
                  [text(""), text("Hello "), text("world", SIG_T)]):
        content = from_gemini({"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": "STOP"}]},
                              CONTEXT)["content"]
        assert content == [{"type": "thinking", "thinking": "", "signature": f"gemini-next:{SIG_T}"},
                           {"type": "text", "text": "Hello world", "citations": None}], parts
        assert replayed(content, "gemini-3-pro-preview") == [{"text": "Hello world", "thoughtSignature": SIG_T}]
    thought_first = from_gemini({"candidates": [{"content": {"role": "model", "parts": [
        thought("Plan."), text("Hello "), text("world", SIG_T)]}, "finishReason": "STOP"}]}, CONTEXT)["content"]  # fmt: skip
    assert thought_first == [{"type": "thinking", "thinking": "Plan.", "signature": f"gemini-next:{SIG_T}"},
                             {"type": "text", "text": "Hello world", "citations": None}]


def test_gemini_call_ids_become_tool_use_ids_and_go_back():
    sequence = events(run([chunk(
        {"functionCall": {"name": "Bash", "args": {"command": "ls"}, "id": "c8x2"}, "thoughtSignature": SIG_C},
        {"functionCall": {"name": "Bash", "args": {"command": "pwd"}, "id": "call/2:b"}},
        fc("Bash", command="id"), finish="STOP")]))  # fmt: skip
    validate(sequence)
    raw = accumulated(sequence)
    ids = [b["id"] for b in raw["content"] if b["type"] == "tool_use"]
    # Anthropic's ^[a-zA-Z0-9_-]+$ as it is, else encoded (tool_names); no Gemini id: a fresh toolu_.
    assert ids[:2] == ["gemini_c8x2", "mmx_" + base64.urlsafe_b64encode(b"gemini_call/2:b").decode().rstrip("=")]
    assert TOOL_ID.match(ids[2])
    assert raw["stop_reason"] == "tool_use"
    body = {"messages": [{"role": "user", "content": "go"}, {"role": "assistant", "content": raw["content"]},
                         {"role": "user", "content": [{"type": "tool_result", "tool_use_id": i, "content": "out"} for i in ids]}],
            "tools": [{"name": "Bash", "input_schema": {}}]}  # fmt: skip
    model_turn, answers = to_gemini(body, Shape(), "gemini-3-pro-preview")["contents"][1:]
    assert model_turn["parts"] == [
        {"functionCall": {"name": "Bash", "args": {"command": "ls"}, "id": "c8x2"}, "thoughtSignature": SIG_C},
        {"functionCall": {"name": "Bash", "args": {"command": "pwd"}, "id": "call/2:b"}},
        {"functionCall": {"name": "Bash", "args": {"command": "id"}}},
    ]
    assert answers["parts"] == [
        {"functionResponse": {"name": "Bash", "response": {"output": "out"}, "id": "c8x2"}},
        {"functionResponse": {"name": "Bash", "response": {"output": "out"}, "id": "call/2:b"}},
        {"functionResponse": {"name": "Bash", "response": {"output": "out"}}},
    ]


def test_signed_thoughts_go_back_as_thoughts():
    message = final([chunk(thought("plan")), chunk(thought("", SIG_T)), chunk(thought("more")), chunk(text("answer"), finish="STOP")])
    assert message["content"] == [
        {"type": "thinking", "thinking": "plan", "signature": f"gemini-thought:{SIG_T}"},
        {"type": "thinking", "thinking": "more", "signature": ""},
        {"type": "text", "text": "answer", "citations": None},
    ]
    assert replayed(message["content"]) == [{"text": "plan", "thought": True, "thoughtSignature": SIG_T}, {"text": "answer"}]


def test_sequential_steps_each_keep_their_signature():
    """Gemini 3: every step's call must come back signed, whatever came between."""
    first = final([chunk(fc("Bash", SIG_T, command="a"), finish="STOP")])
    second = final([chunk(text("Next.")), chunk(fc("Bash", SIG_C, command="b"), finish="STOP")])
    body = {"messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": first["content"]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": first["content"][1]["id"], "content": "A"}]},
        {"role": "assistant", "content": second["content"]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": second["content"][2]["id"], "content": "B"}]},
    ], "tools": [{"name": "Bash", "input_schema": {}}]}  # fmt: skip
    model_turns = [c["parts"] for c in to_gemini(body, Shape(), "gemini-3-pro-preview")["contents"] if c["role"] == "model"]
    assert model_turns == [
        [{"functionCall": {"name": "Bash", "args": {"command": "a"}}, "thoughtSignature": SIG_T}],
        [{"text": "Next."}, {"functionCall": {"name": "Bash", "args": {"command": "b"}}, "thoughtSignature": SIG_C}],
    ]


# -- endings --------------------------------------------------------------------------


@pytest.mark.parametrize("finish, reason", [
    ("STOP", "end_turn"), ("MAX_TOKENS", "max_tokens"), ("SAFETY", "refusal"), ("RECITATION", "refusal"),
    ("PROHIBITED_CONTENT", "refusal"), ("BLOCKLIST", "refusal"), ("SPII", "refusal"),
])  # fmt: skip
def test_stop_reasons(finish, reason):
    message = final([chunk(text("x")), chunk(finish=finish)])
    assert (message["stop_reason"], message["content"]) == (reason, [{"type": "text", "text": "x", "citations": None}])


def test_a_finish_that_failed_ends_with_an_error_event_after_what_came():
    sequence = events(run([chunk(text("Let me call it")), chunk(text("", SIG_T), finish="MALFORMED_FUNCTION_CALL",
                                                                why="Malformed function call: Bash")]))
    assert [e["type"] for e in sequence] == ["message_start", "content_block_start", "content_block_delta", "error"]
    assert sequence[-1]["error"] == {"type": "api_error", "message": (
        "the upstream's answer is broken: Gemini stopped with finishReason 'MALFORMED_FUNCTION_CALL' (the function "
        "call it generated is invalid): Malformed function call: Bash")}


def test_a_blocked_prompt_is_a_refusal_that_says_why():
    blocked = b"data: " + json.dumps({"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {"promptTokenCount": 9}}).encode() + b"\n\n"
    sequence = events(run([blocked]))
    validate(sequence)
    assert sequence[-2]["delta"]["stop_details"] == {
        "type": "refusal", "category": None, "explanation": "Gemini blocked the prompt: PROHIBITED_CONTENT"}
    message = accumulated(sequence)
    assert (message["stop_reason"], message["content"], message["usage"]["input_tokens"]) == ("refusal", [], 9)


def test_the_model_probe_is_a_clean_max_tokens_answer():
    assert final([chunk(finish="MAX_TOKENS", usage={"promptTokenCount": 5, "totalTokenCount": 5})]) == {
        "model": "claude-sonnet-4-5", "content": [], "stop_reason": "max_tokens",
        "usage": {"input_tokens": 5, "output_tokens": 0, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0,
                  "output_tokens_details": None, **UNSAID}}


def test_a_stream_that_breaks_off_ends_with_an_error_not_a_fake_stop():
    sequence = events(run([chunk(text("partial"))]))
    assert [e["type"] for e in sequence] == ["message_start", "content_block_start", "content_block_delta", "error"]
    assert sequence[-1]["error"] == {"type": "api_error", "message": BROKEN_OFF}


def test_an_error_inside_the_stream_becomes_an_error_event_with_its_retry_delay():
    error = {"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "Quota exceeded",
                       "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "36.5s"}]}}  # fmt: skip
    stream = GeminiStream(CONTEXT)
    sequence = events(feed(stream, chunk(text("x")) + b"data: " + json.dumps(error).encode() + b"\n\n" + chunk(text("ignored"), finish="STOP")))
    assert sequence[-1] == {"type": "error", "error": {"type": "rate_limit_error", "message": "Quota exceeded (RESOURCE_EXHAUSTED)"}}
    assert [e["type"] for e in sequence].count("error") == 1 and "message_stop" not in [e["type"] for e in sequence]
    assert stream.error is not None and (stream.error.status, stream.error.headers) == (429, {"retry-after": "37"})


def test_usage_is_cumulative_and_the_last_wins():
    message = final([chunk(text("a"), usage={"promptTokenCount": 100, "candidatesTokenCount": 1}),
                     chunk(text("b"), finish="STOP", usage={"promptTokenCount": 100, "candidatesTokenCount": 2, "thoughtsTokenCount": 3})])  # fmt: skip
    assert message["usage"] == {"input_tokens": 100, "output_tokens": 5, "cache_read_input_tokens": 0,
                                "cache_creation_input_tokens": 0, "output_tokens_details": {"thinking_tokens": 3}, **UNSAID}


def test_a_part_an_anthropic_message_cannot_hold_is_an_error_not_skipped():
    sequence = events(run([chunk(text("ok")), chunk({"inlineData": {"mimeType": "image/png", "data": "x"}}, finish="STOP")]))
    assert sequence[-1]["error"]["message"] == ("the upstream's answer holds media the model generated (an inlineData "
                                                "part), which an Anthropic message cannot hold")
    assert "message_stop" not in [e["type"] for e in sequence]
