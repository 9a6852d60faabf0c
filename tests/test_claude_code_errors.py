"""What Claude Code acts on, on either send path: a context overflow in Anthropic's words
(it compacts on "prompt is too long"), the stop sequence that matched, a streamed
refusal, and a subagent's `thinking: disabled` beside an effort that vendors reject."""

from __future__ import annotations

import json

import pytest
from both_paths import (  # noqa: F401 (fixtures: fresh, gateway, server)
    PATHS, events, first, fresh, gateway, keys_seen, names, post, server,
)
from gemini_upstream import error_reply as gemini_error
from openai_upstream import chunk, completion, error_reply, json_reply, sse
from test_overflow import GEMINI, MINIMAX, OPENAI, RESPONSES
from upstream import Reply, Stream

OVERFLOWS = {
    "chat": (error_reply(400, OPENAI, code="context_length_exceeded"),
             f"prompt is too long: 210000 tokens > 128000 maximum; provider 'chat-PATH' answered HTTP 400 Bad Request: {OPENAI}"),
    "resp": (error_reply(400, RESPONSES, code="context_length_exceeded"),
             f"prompt is too long; provider 'resp-PATH' answered HTTP 400 Bad Request: {RESPONSES}"),
    "gem": (gemini_error(400, GEMINI, "INVALID_ARGUMENT"),
            f"prompt is too long: 1200293 tokens > 1048576 maximum; provider 'gem-PATH' answered HTTP 400: {GEMINI} "
            "(INVALID_ARGUMENT)"),
    "vend": (Reply(400, json.dumps({"type": "error", "error": {"type": "invalid_request_error", "message": MINIMAX}}).encode()),
             f"prompt is too long; {MINIMAX}"),
}


@pytest.mark.parametrize("protocol", OVERFLOWS)
@pytest.mark.parametrize("path", PATHS)
def test_a_context_overflow_is_said_as_anthropic_says_it(gateway, server, protocol, path):
    reply, message = OVERFLOWS[protocol]
    server.reply = lambda request: reply
    response = post(gateway, f"{protocol}-{path}", stream=True)
    assert (response.status_code, response.json()) == (400, {"type": "error", "error": {
        "type": "invalid_request_error", "message": message.replace("PATH", path)}})
    assert len(server.received) == 1  # the request is at fault: no other key would take it


@pytest.mark.parametrize("path", PATHS)
def test_a_responses_stream_that_fails_for_its_length(gateway, server, path):
    """The Codex backend says so inside a 200 stream: before any content that is a 400 the
    pool does not retry; on a single key, the stream's error event."""
    failed = {"type": "response.failed", "response": {"status": "failed", "output": [], "error": {
        "code": "context_length_exceeded", "message": RESPONSES}}}
    server.reply = first(Stream([f"event: response.failed\ndata: {json.dumps(failed)}\n\n".encode()]))
    response = post(gateway, f"resp-{path}", stream=True)
    error = {"type": "invalid_request_error", "message": f"prompt is too long; the upstream failed: {RESPONSES}"}
    if path == "solo":
        assert events(response)[1:] == [{"type": "error", "error": error}]
    else:
        assert (response.status_code, response.json()) == (400, {"type": "error", "error": error})
    assert len(server.received) == 1


def vllm_stop(field: str = "stop_reason") -> list[bytes]:
    last = chunk({}, finish="stop")
    last["choices"][0][field] = "</answer>"
    return sse([chunk({"content": "42"}), last, chunk(usage={"prompt_tokens": 3, "completion_tokens": 1}, choices=False)])


@pytest.mark.parametrize("path", PATHS)
def test_the_stop_sequence_that_matched(gateway, server, path):
    server.reply = lambda request: Stream(vllm_stop())
    sequence = events(post(gateway, f"chat-{path}", stream=True, stop_sequences=["</answer>"]))
    assert sequence[-2]["delta"] == {"stop_reason": "stop_sequence", "stop_sequence": "</answer>", "stop_details": None,
                                     "container": None}
    whole = completion("42")
    whole["choices"][0]["matched_stop"] = "</answer>"  # SGLang's name for it
    server.reply = lambda request: json_reply(whole)
    answer = post(gateway, f"chat-{path}", stream=False, stop_sequences=["</answer>"]).json()
    assert (answer["stop_reason"], answer["stop_sequence"]) == ("stop_sequence", "</answer>")
    assert [r.json()["stop"] for r in server.received] == [["</answer>"], ["</answer>"]]


@pytest.mark.parametrize("path", PATHS)
def test_a_streamed_refusal(gateway, server, path):
    server.reply = lambda request: Stream(sse([chunk({"refusal": "I can't help with that."}), chunk({}, finish="stop")]))
    sequence = events(post(gateway, f"chat-{path}", stream=True))
    assert names(sequence)[1:4] == ["content_block_start", "content_block_delta", "content_block_stop"]
    assert sequence[-2]["delta"] == {"stop_reason": "refusal", "stop_sequence": None, "stop_details": None,
                                     "container": None}  # no upstream says a refusal's policy category


SUBAGENT = {"thinking": {"type": "disabled"}, "output_config": {"effort": "high"}}


@pytest.mark.parametrize("path", PATHS)
def test_a_subagents_effort_without_thinking_is_not_sent_to_a_vendor(gateway, server, path):
    """DeepSeek's Anthropic endpoint answers that pair 400 "thinking options type cannot be
    disabled when reasoning_effort is set"; the rest of output_config stays."""
    schema = {"type": "json_schema", "schema": {"type": "object"}}
    assert post(gateway, f"vend-{path}", stream=True, **SUBAGENT).status_code == 200
    assert post(gateway, f"vend-{path}", stream=False, thinking={"type": "disabled"},
                output_config={"effort": "low", "format": schema}).status_code == 200
    bodies = [r.json() for r in server.received]
    assert [(b["thinking"], b.get("output_config")) for b in bodies] == [
        ({"type": "disabled"}, None), ({"type": "disabled"}, {"format": schema})]
    server.received.clear()
    assert post(gateway, f"vend-{path}", stream=False, thinking={"type": "adaptive"},
                output_config={"effort": "low"}).status_code == 200
    assert server.received[0].json()["output_config"] == {"effort": "low"}  # thinking on: the effort is for it


@pytest.mark.parametrize("protocol", ["chat", "resp", "gem"])
@pytest.mark.parametrize("path", PATHS)
def test_a_subagents_translated_request_asks_for_no_reasoning(gateway, server, protocol, path):
    """Thinking off: no effort, no reasoning block, no thinkingConfig, and no output_config."""
    assert post(gateway, f"{protocol}-{path}", stream=True, **SUBAGENT).status_code == 200
    [body] = [r.json() for r in server.received]
    assert keys_seen(server)[0].startswith(protocol)
    assert not {"thinking", "output_config", "reasoning_effort", "reasoning"} & set(body)
    assert "thinkingConfig" not in body.get("generationConfig", {})
