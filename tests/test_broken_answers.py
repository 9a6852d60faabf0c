"""A corrupt answer is never a success, on either send path: a single-key route (mitmproxy
sends it) ends it with an error; a pool (the failover relay sends it) counts a failure
before the first byte as a failed attempt, and the next key answers."""

from __future__ import annotations

import json
import re

import pytest
from both_paths import (  # noqa: F401 (fixtures: fresh, gateway, server)
    KEYS, PATHS, credential, events, first, fresh, gateway, keys_seen, names, post, server, text_of,
)
from gemini_upstream import GREETING as GEMINI_GREETING
from gemini_upstream import status
from openai_upstream import GREETING as CHAT_GREETING
from openai_upstream import chunk, completion, error, json_reply, sse, tool_call
from responses_upstream import GREETING as RESPONSES_GREETING
from upstream import Stream

GATEWAY_ARGS = ["--set", "modelmux_ping_interval=1"]  # silences of a second get pings
GARBAGE = b"data: {not json\n\n"
GREETINGS = {"chat": CHAT_GREETING, "resp": RESPONSES_GREETING, "gem": GEMINI_GREETING}
UNREADABLE = f"the upstream's stream held an event that is not JSON: {GARBAGE.decode().strip()!r}"


def other_key(path: str, seen: list[str]) -> None:
    """The pool tried one key, then the other; a single key was tried once."""
    if path == "solo":
        assert len(seen) == 1 and seen[0].endswith("-solo")
    else:
        assert len(seen) == 2 and {s.split("-")[1] for s in seen} == {"a", "b"}


@pytest.mark.parametrize("path", PATHS)
def test_a_corrupt_argument_fragment_is_an_error_not_another_command(gateway, server, path):
    """The middle fragment of `{"command": "rm -rf /tmp/x", "safe": true}` does not parse.
    Dropped, Claude Code would have run `{"command": "rm", "safe": true}`."""
    corrupt = b'data: {"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":" -rf /tm\n\n'
    server.reply = first(Stream([
        *sse([chunk({"tool_calls": [tool_call("call_1", "Bash", '{"command": "rm', index=0)]})], done=False),
        corrupt,
        *sse([chunk({"tool_calls": [tool_call(None, None, '", "safe": true}', index=0)]}), chunk({}, finish="tool_calls")]),
    ]))
    sequence = events(post(gateway, f"chat-{path}", stream=True))
    assert sequence[1:] == [
        {"type": "content_block_start", "index": 0,
         "content_block": {"type": "tool_use", "id": "call_1", "name": "Bash", "input": {}, "caller": {"type": "direct"}}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "input_json_delta", "partial_json": '{"command": "rm'}},
        {"type": "error", "error": {"type": "api_error", "message": "the upstream's stream held an event that is not "
                                                                    f"JSON: {corrupt.decode().strip()!r}"}},
    ]
    assert len(server.received) == 1  # the client had the call's start: no second try


UNREADABLE_FIRST = {
    "chat": [GARBAGE, *sse([chunk({"content": "Hi"}), chunk({}, finish="stop")])],
    "resp": [GARBAGE, b'event: response.completed\ndata: {"type":"response.completed","response":{"status":"completed"}}\n\n'],
    "gem": [GARBAGE, b'data: {"candidates":[{"content":{"parts":[{"text":"Hi"}]},"finishReason":"STOP"}]}\r\n\r\n'],
}


@pytest.mark.parametrize("protocol", UNREADABLE_FIRST)
@pytest.mark.parametrize("path", PATHS)
def test_an_unreadable_event_before_any_content(gateway, server, protocol, path):
    server.reply = first(Stream(UNREADABLE_FIRST[protocol]))
    sequence = events(post(gateway, f"{protocol}-{path}", stream=True))
    other_key(path, keys_seen(server))
    if path == "solo":
        assert sequence[1:] == [{"type": "error", "error": {"type": "api_error", "message": UNREADABLE}}]
        return
    assert names(sequence)[-2:] == ["message_delta", "message_stop"] and text_of(sequence) == GREETINGS[protocol]
    failed = keys_seen(server)[0].split("-")[1]
    [cooldown] = credential(gateway, f"{protocol}-pool", failed)["cooldowns"]
    assert cooldown["status"] == 502


@pytest.mark.parametrize("protocol", UNREADABLE_FIRST)
@pytest.mark.parametrize("path", PATHS)
def test_an_unreadable_event_after_content_is_an_error_event(gateway, server, protocol, path):
    before = {"chat": sse([chunk({"content": "Hel"})], done=False),
              "resp": [b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","item_id":"m",'
                       b'"content_index":0,"delta":"Hel"}\n\n'],
              "gem": [b'data: {"candidates":[{"content":{"parts":[{"text":"Hel"}]}}]}\r\n\r\n']}[protocol]
    server.reply = first(Stream([*before, *UNREADABLE_FIRST[protocol]]))
    sequence = events(post(gateway, f"{protocol}-{path}", stream=True))
    assert names(sequence) == ["message_start", "content_block_start", "content_block_delta", "error"]
    assert (text_of(sequence), sequence[-1]["error"]["message"]) == ("Hel", UNREADABLE)
    assert len(server.received) == 1


ERROR_BODIES = {
    "chat": error("The server had an error while processing your request.", "server_error"),
    "resp": error("The server had an error while processing your request.", "server_error"),
    "gem": status(500, "The server had an error while processing your request.", "INTERNAL"),
}
ERROR_MESSAGES = {
    "chat": "The server had an error while processing your request.",
    "resp": "the upstream failed: The server had an error while processing your request.",
    "gem": "The server had an error while processing your request. (INTERNAL)",
}


@pytest.mark.parametrize("protocol", ERROR_BODIES)
@pytest.mark.parametrize("path", PATHS)
def test_an_http_200_whose_body_is_an_error(gateway, server, protocol, path):
    server.reply = first(json_reply(ERROR_BODIES[protocol]))
    response = post(gateway, f"{protocol}-{path}", stream=False)
    other_key(path, keys_seen(server))
    if path == "solo":
        assert (response.status_code, response.json()) == (500, {"type": "error", "error": {
            "type": "api_error", "message": f"provider '{protocol}-solo' answered: {ERROR_MESSAGES[protocol]}"}})
    else:
        assert (response.status_code, response.json()["content"]) == (
            200, [{"type": "text", "text": GREETINGS[protocol], "citations": None}])


@pytest.mark.parametrize("path", PATHS)
def test_a_whole_answer_that_claims_tool_calls_it_never_made(gateway, server, path):
    server.reply = first(json_reply(completion("Let me check.", finish="tool_calls")))
    response = post(gateway, f"chat-{path}", stream=False)
    other_key(path, keys_seen(server))
    if path == "solo":
        assert (response.status_code, response.json()["error"]) == (502, {"type": "api_error", "message": (
            "provider 'chat-solo' answered: the upstream's answer is broken: it finished for tool calls "
            "(finish_reason 'tool_calls') but made none")})
    else:
        assert response.json()["content"] == [{"type": "text", "text": CHAT_GREETING, "citations": None}]


@pytest.mark.parametrize("path", PATHS)
def test_a_stream_that_claims_tool_calls_it_never_made(gateway, server, path):
    server.reply = first(Stream(sse([chunk({"content": "Let me check."}), chunk({}, finish="tool_calls")])))
    sequence = events(post(gateway, f"chat-{path}", stream=True))
    assert names(sequence) == ["message_start", "content_block_start", "content_block_delta", "error"]
    assert sequence[-1]["error"]["message"] == ("the upstream's answer is broken: it finished for tool calls "
                                                "(finish_reason 'tool_calls') but made none")


@pytest.mark.parametrize("path", PATHS)
def test_an_error_that_quotes_the_key_never_shows_it(gateway, server, path):
    key = KEYS["chat-solo" if path == "solo" else "chat-a"]
    both = Stream(sse([chunk({"content": "Hi"}), error(f"Incorrect API key provided: {key}", "invalid_request_error")],
                      done=False))
    server.reply = lambda request: both
    sequence = events(post(gateway, f"chat-{path}", stream=True))
    message = sequence[-1]["error"]["message"]
    assert key not in json.dumps(sequence) and message.startswith("Incorrect API key provided: ")
    assert message.endswith("…" + KEYS[keys_seen(server)[0]][-4:])


@pytest.mark.parametrize("path", PATHS)
def test_nothing_follows_the_error_event(gateway, server, path):
    """Not a ping while the upstream goes on after it (the relay stops reading it at once)."""
    server.reply = first(Stream([*sse([chunk({"content": "Hel"})], done=False), GARBAGE,
                                 *sse([chunk({"content": "lo"}), chunk({}, finish="stop")])], delays=[0, 0, 2.5]))
    response = post(gateway, f"chat-{path}", stream=True)
    written = re.findall(r"event: (\w+)\n", response.text)
    assert written[written.index("error"):] == ["error"], written
