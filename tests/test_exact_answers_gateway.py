"""What an answer holds besides plain text, through the real gateway on both send paths:
translated exactly (content given as parts, a legacy function call), or an error. A
single key (mitmproxy sends it) ends with that error; a pool (the failover relay sends
it) counts it as a failed attempt before the first byte, and the next key answers."""

from __future__ import annotations

from typing import Any

import pytest
from both_paths import (  # noqa: F401 (fixtures: fresh, gateway, server)
    PATHS, events, first, fresh, gateway, keys_seen, names, post, server, text_of,
)
from gemini_upstream import GREETING as GEMINI_GREETING
from gemini_upstream import response as gemini_response
from gemini_upstream import sse as gemini_sse
from gemini_upstream import text as gemini_text
from openai_upstream import GREETING as CHAT_GREETING
from openai_upstream import chunk, completion, json_reply, sse
from responses_upstream import GREETING as RESPONSES_GREETING
from responses_upstream import events as responses_events
from responses_upstream import response as responses_response
from responses_upstream import sse as responses_sse
from upstream import Stream

GATEWAY_ARGS = ["--set", "modelmux_ping_interval=1"]
GREETINGS = {"chat": CHAT_GREETING, "resp": RESPONSES_GREETING, "gem": GEMINI_GREETING}
THINKING = [{"type": "thinking", "thinking": [{"type": "text", "text": "Let me see."}]}]


def whole_text(response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    return response.json()["content"]


# -- translated exactly ------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
def test_mistral_thinking_and_text_parts_reach_the_client_as_thinking_and_text(gateway, server, path):
    server.reply = first(Stream(sse([chunk({"role": "assistant", "content": THINKING}),
                                     chunk({"content": [{"type": "text", "text": "It is 42."}]}), chunk({}, finish="stop")])))
    sequence = events(post(gateway, f"chat-{path}", stream=True))
    deltas = [e["delta"] for e in sequence if e["type"] == "content_block_delta"]
    assert deltas == [{"type": "thinking_delta", "thinking": "Let me see."}, {"type": "text_delta", "text": "It is 42."}]
    assert names(sequence)[-2:] == ["message_delta", "message_stop"]
    server.reply = first(json_reply(completion([*THINKING, {"type": "text", "text": "It is 42."}])))
    assert whole_text(post(gateway, f"chat-{path}", stream=False)) == [
        {"type": "thinking", "thinking": "Let me see.", "signature": ""},
        {"type": "text", "text": "It is 42.", "citations": None}]


@pytest.mark.parametrize("path", PATHS)
def test_a_legacy_function_call_reaches_the_client_as_a_tool_use(gateway, server, path):
    server.reply = first(Stream(sse([chunk({"role": "assistant", "function_call": {"name": "Bash", "arguments": ""}}),
                                     chunk({"function_call": {"arguments": '{"command": "ls"}'}}),
                                     chunk({}, finish="function_call")])))
    sequence = events(post(gateway, f"chat-{path}", stream=True))
    start = next(e for e in sequence if e["type"] == "content_block_start")["content_block"]
    assert (start["type"], start["name"], start["id"].startswith("toolu_")) == ("tool_use", "Bash", True)
    assert [e["delta"] for e in sequence if e["type"] == "content_block_delta"] == [
        {"type": "input_json_delta", "partial_json": '{"command": "ls"}'}]
    assert sequence[-2]["delta"]["stop_reason"] == "tool_use"


# -- an error: before any content, a failed attempt ----------------------------------------

IMAGE = {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}
BROKEN = "the upstream's answer is broken: "
HOLDS = "the upstream's answer holds {}, which an Anthropic message cannot hold"
CASES = {
    # name: (protocol, streamed, the first answer, the error)
    "chat-image-streamed": ("chat", True, Stream(sse([chunk({"content": [IMAGE]}), chunk({}, finish="stop")])),
                            HOLDS.format("a content part of type 'image_url'")),
    "chat-image-whole": ("chat", False, json_reply(completion([IMAGE])), HOLDS.format("a content part of type 'image_url'")),
    "chat-unknown-finish": ("chat", True, Stream(sse([chunk({}, finish="paused")])),
                            BROKEN + "it ended with finish_reason 'paused', which no API modelmux speaks to defines"),
    "gem-inline-data": ("gem", True, Stream(gemini_sse([gemini_response(
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}})])),
        HOLDS.format("media the model generated (an inlineData part)")),
    "gem-malformed-call": ("gem", False, json_reply(gemini_response(finish="MALFORMED_FUNCTION_CALL")),
                           BROKEN + "Gemini stopped with finishReason 'MALFORMED_FUNCTION_CALL' (the function call it "
                                    "generated is invalid)"),
    "gem-unknown-part-whole": ("gem", False, json_reply(gemini_response(gemini_text("Hi"), {"toolCall": {"id": "t"}})),
                               HOLDS.format("a call of a Gemini server tool (a toolCall part)")),
    "resp-incomplete-streamed": ("resp", True, Stream(responses_sse(responses_events(
        [], responses_response([], "incomplete")))), BROKEN + "it is incomplete and does not say why"),
    "resp-incomplete-whole": ("resp", False, json_reply(responses_response([], "incomplete")),
                              BROKEN + "it is incomplete and does not say why"),
}  # fmt: skip


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("path", PATHS)
def test_what_an_anthropic_message_cannot_hold_is_an_error_or_a_failed_attempt(gateway, server, case, path):
    protocol, stream, answer, message = CASES[case]
    server.reply = first(answer)
    response = post(gateway, f"{protocol}-{path}", stream=stream)
    seen = keys_seen(server)
    if path == "pool":  # the first key's attempt failed; the other key answered
        assert len(seen) == 2 and {s.split("-")[1] for s in seen} == {"a", "b"}
        got = text_of(events(response)) if stream else whole_text(response)[0]["text"]
        assert got == GREETINGS[protocol]
        return
    assert seen == [f"{protocol}-solo"]
    if stream:
        assert events(response)[1:] == [{"type": "error", "error": {"type": "api_error", "message": message}}]
    else:
        assert (response.status_code, response.json()) == (502, {"type": "error", "error": {
            "type": "api_error", "message": f"provider '{protocol}-solo' answered: {message}"}})
