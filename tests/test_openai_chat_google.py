"""Gemini through its OpenAI-compatible endpoint: the thought signatures it puts in
`extra_content` on tool calls come back on the replayed calls, byte for byte (Google's
thought-signatures page, "Signatures for OpenAI compatibility"), from streams fed at
every chunk boundary and from whole answers; no other model gets the field."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sse_checks import accumulated, events, feed, validate

from modelmux.config.types import Shape
from modelmux.translate.openai_chat import ChatStream, Context, from_chat, to_chat
from modelmux.translate.openai_chat.google import restore

CONTEXT = Context(model="claude-sonnet-4-5")
SIG_A = "CiQBcsjafGSpLlC+3o7lbTTA2tOVpqu5i/Q1Kr1I="  # base64 with + and /: must come back unchanged
SIG_B = "EuYBCuMBAdHtim9tU2pQ=="
CALL_1 = "function-call-f3b9ecb3-d55f-4076-98c8-b13e9d1c0e01"  # the ids in Google's examples
CALL_2 = "function-call-335673ad-913e-42d1-bbf5-387c8ab80f44"


def chunk(delta: dict | None = None, finish: str | None = None) -> bytes:
    body = {"id": "x", "object": "chat.completion.chunk", "model": "gemini-3-pro-preview",
            "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}]}  # fmt: skip
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def call(index: int, id: str | None, name: str | None, arguments: str, signature: str | None = None) -> dict[str, Any]:
    fragment: dict[str, Any] = {"index": index, "function": {"arguments": arguments}}
    if id:
        fragment.update(id=id, type="function")
    if name:
        fragment["function"]["name"] = name
    if signature:
        fragment["extra_content"] = {"google": {"thought_signature": signature}}
    return fragment


def weather(location: str) -> dict[str, Any]:
    return {"type": "tool_use", "id": CALL_1 if location == "Paris" else CALL_2, "name": "get_current_temperature",
            "input": {"location": location}, "caller": {"type": "direct"}}


# Google's parallel example: the first call signed, the second not; each call whole in one chunk.
PARALLEL = [
    chunk({"role": "assistant", "content": "Checking both."}),
    chunk({"tool_calls": [call(0, CALL_1, "get_current_temperature", '{"location":"Paris"}', SIG_A)]}),
    chunk({"tool_calls": [call(1, CALL_2, "get_current_temperature", '{"location":"London"}')]}),
    chunk(finish="tool_calls"),
    b"data: [DONE]\n\n",
]
CONTENT = [
    {"type": "text", "text": "Checking both.", "citations": None},
    {"type": "thinking", "thinking": "", "signature": f"gemini-next:{SIG_A}"},
    weather("Paris"),
    weather("London"),
]


def replayed(content: list[dict[str, Any]], model: str = "gemini-3-pro-preview") -> dict[str, Any]:
    """The assistant message the upstream gets when the client sends `content` back."""
    body = {"messages": [{"role": "user", "content": "weather?"}, {"role": "assistant", "content": content}]}
    return to_chat(body, Shape(), model)["messages"][1]


def test_a_streamed_signature_rides_before_its_call_and_goes_back_on_it():
    sequence = events(feed(ChatStream(CONTEXT), b"".join(PARALLEL)))
    validate(sequence)
    message = accumulated(sequence)
    assert (message["content"], message["stop_reason"]) == (CONTENT, "tool_use")
    data = b"".join(PARALLEL)
    for cut in range(1, len(data)):  # every chunk boundary
        assert events(feed(ChatStream(CONTEXT), data, [cut]))[1:] == sequence[1:], cut
    assert replayed(message["content"]) == {"role": "assistant", "content": "Checking both.", "tool_calls": [
        {"id": CALL_1, "type": "function", "function": {"name": "get_current_temperature", "arguments": '{"location":"Paris"}'},
         "extra_content": {"google": {"thought_signature": SIG_A}}},
        {"id": CALL_2, "type": "function", "function": {"name": "get_current_temperature", "arguments": '{"location":"London"}'}},
    ]}  # fmt: skip


@pytest.mark.parametrize("model", ["gpt-5", "deepseek-chat", "o3"])
def test_no_other_model_gets_extra_content(model):
    """OpenAI answers 400 to a field it does not know on a message."""
    assert "extra_content" not in json.dumps(replayed(CONTENT, model))


def test_a_signature_that_comes_after_its_call_started_follows_the_call():
    pieces = [
        chunk({"tool_calls": [call(0, CALL_1, "get_current_temperature", "")]}),
        chunk({"tool_calls": [call(0, None, None, '{"location":"Paris"}', SIG_A)]}),
        chunk({"tool_calls": [call(1, CALL_2, "get_current_temperature", '{"location":"London"}')]}),
        chunk(finish="tool_calls"),
    ]
    sequence = events(feed(ChatStream(CONTEXT), b"".join(pieces)))
    validate(sequence)
    content = accumulated(sequence)["content"]
    assert content == [weather("Paris"), {"type": "thinking", "thinking": "", "signature": f"gemini-previous:{SIG_A}"},
                       weather("London")]
    assert [c.get("extra_content") for c in replayed(content)["tool_calls"]] == [
        {"google": {"thought_signature": SIG_A}}, None]


def test_a_whole_answer_carries_the_signature_before_its_call():
    body = {"choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": None, "tool_calls": [
        {"id": CALL_1, "type": "function", "function": {"name": "get_current_temperature", "arguments": '{"location":"Paris"}'},
         "extra_content": {"google": {"thought_signature": SIG_A}}},
        {"id": CALL_2, "type": "function", "function": {"name": "get_current_temperature", "arguments": '{"location":"London"}'}},
    ]}}]}  # fmt: skip
    message = from_chat(body, CONTEXT)
    assert message["content"] == CONTENT[1:]
    assert replayed(message["content"])["tool_calls"][0]["extra_content"] == {"google": {"thought_signature": SIG_A}}


def test_native_gemini_carriers_go_back_as_extra_content_on_their_calls_only():
    """History Gemini's native API signed (thought_signatures.py) keeps each signature on
    its own part: one for a text part is not a call's."""
    blocks = [
        {"type": "thinking", "thinking": "", "signature": f"gemini-next:{SIG_B}"},
        {"type": "text", "text": "Checking."},
        {"type": "thinking", "thinking": "", "signature": f"gemini-previous:{SIG_B}"},
        weather("Paris"),
        {"type": "thinking", "thinking": "", "signature": f"gemini-next:{SIG_A}"},
        weather("London"),
        {"type": "thinking", "thinking": "", "signature": "gemini-previous:SIG_C"},
        {"type": "thinking", "thinking": "", "signature": "EqQBCkgIBxABGAIqQKbtNO0r"},  # Anthropic's: not Gemini's
    ]
    calls = [{"id": CALL_1}, {"id": CALL_2}]
    assert restore(blocks, calls) == [{"id": CALL_1}, {"id": CALL_2, "extra_content": {"google": {"thought_signature": SIG_A}}}]
    assert calls == [{"id": CALL_1}, {"id": CALL_2}]  # not changed in place
