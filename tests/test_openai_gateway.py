"""An `openai-chat` provider behind the real gateway: the exact Chat Completions request
the upstream receives for real SDK requests. What the client gets back is in
test_openai_gateway_answers.py."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest
from gateway import Gateway
from openai_upstream import (  # noqa: F401 (fixtures: fresh, gateway, server)
    AZURE_KEY, CLIENT_KEY, GREETING, KEEPALIVE, OAI_KEY, client, error_reply, fresh, gateway, server, sse,
    tool_call_chunks,
)
from upstream import Received, Stream, Upstream

PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGNgYGD4DwABBAEAcCBlCwAAAABJRU5ErkJggg=="
PDF = "JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PC9UeXBlL0NhdGFsb2c+PgplbmRvYmoKdHJhaWxlcgo8PC9Sb290IDEgMCBSPj4KJSVFT0YK"


def only(server: Upstream) -> Received:
    assert len(server.received) == 1, [r.path for r in server.received]
    return server.received[0]


def sent(gateway: Gateway, server: Upstream, **request: Any) -> dict[str, Any]:
    """Send one non-streamed request; the JSON body the upstream received."""
    request.setdefault("max_tokens", 512)
    # an explicit timeout: the SDK refuses large non-streamed max_tokens without one
    answer = client(gateway).messages.create(timeout=30, **request)
    assert answer.content[0].text == GREETING
    return only(server).json()


def test_the_fake_speaks_openai(server: Upstream):
    """The fake itself, checked by the OpenAI SDK: whole answers, streams (with a keep-alive
    comment and reasoning_content), and errors."""
    sdk = openai.OpenAI(base_url=f"{server.url}/v1", api_key="k", max_retries=0)
    answer = sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert (answer.model, answer.choices[0].message.content, answer.usage.prompt_tokens) == ("m", GREETING, 12)
    stream = sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], stream=True,
                                         stream_options={"include_usage": True})
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == GREETING
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 7
    server.reply = lambda r: Stream(sse([KEEPALIVE, *tool_call_chunks("call_1", "Bash", {"command": "ls"}, reasoning="so")]))
    with sdk.chat.completions.stream(model="m", messages=[{"role": "user", "content": "hi"}]) as events:
        final = events.get_final_completion().choices[0]
    assert final.finish_reason == "tool_calls"
    assert (final.message.tool_calls[0].function.name, final.message.tool_calls[0].function.arguments) == (
        "Bash", '{"command": "ls"}')
    server.reply = lambda r: error_reply(429, "slow down", "rate_limit_error", headers={"retry-after": "7"})
    with pytest.raises(openai.RateLimitError) as raised:
        sdk.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
    assert raised.value.response.headers["retry-after"] == "7"


def test_path_and_headers(gateway, server):
    client(gateway, **{"anthropic-beta": "interleaved-thinking-2025-05-14", "x-modelmux-profile": "openai"}).messages.create(
        model="claude-sonnet-4-5", max_tokens=16, messages=[{"role": "user", "content": "hi"}],
        extra_query={"beta": "true"})
    received = only(server)
    headers = received.headers
    assert (received.method, received.path) == ("POST", "/v1/chat/completions")  # the client's ?beta=true stays behind
    assert headers["authorization"] == f"Bearer {OAI_KEY}"
    assert headers["content-type"] == "application/json"
    assert headers["accept-encoding"] == "identity"
    for name in ("x-api-key", "anthropic-version", "anthropic-beta"):
        assert name not in headers
    assert not [name for name in headers if name.startswith("x-modelmux")]
    assert CLIENT_KEY not in json.dumps(headers)
    assert received.json() == {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16}


def call(id: str, name: str, arguments: str) -> dict[str, Any]:
    return {"id": id, "type": "function", "function": {"name": name, "arguments": arguments}}


def test_a_whole_conversation(gateway, server):
    """System blocks, empty text, tool calls and results (one failed, one a list), text
    before a tool result, a mid-conversation system message, base64 and URL images."""
    body = sent(gateway, server, model="claude-sonnet-4-5", system=[
        {"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Answer in English."},
    ], messages=[
        {"role": "user", "content": [
            {"type": "text", "text": "List the files."},
            {"type": "text", "text": ""},
            {"type": "text", "text": "Then read one.", "cache_control": {"type": "ephemeral"}}]},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Listing."},
            {"type": "tool_use", "id": "toolu_01", "name": "Bash", "input": {"command": "ls", "description": "liste é"}}]},
        {"role": "user", "content": [
            {"type": "text", "text": "(ran it)"},
            {"type": "tool_result", "tool_use_id": "toolu_01", "content": "a.txt\nb.txt"},
            {"type": "text", "text": "Now read a.txt"}]},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_02", "name": "Read", "input": {"path": "a.txt"}},
            {"type": "tool_use", "id": "toolu_03", "name": "Read", "input": {"path": "missing.txt", "limit": 2}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_02",
             "content": [{"type": "text", "text": "alpha"}, {"type": "text", "text": "beta"}]},
            {"type": "tool_result", "tool_use_id": "toolu_03", "content": "no such file", "is_error": True}]},
        {"role": "system", "content": "The user is in a hurry."},
        {"role": "user", "content": [
            {"type": "text", "text": "Compare these."},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}]},
    ])  # fmt: skip
    assert body == {"model": "gpt-test", "max_tokens": 512, "messages": [
        {"role": "system", "content": "You are terse.\n\nAnswer in English."},
        {"role": "user", "content": "List the files.\n\nThen read one."},
        {"role": "assistant", "content": "Listing.", "tool_calls": [
            call("toolu_01", "Bash", '{"command":"ls","description":"liste é"}')]},
        {"role": "tool", "tool_call_id": "toolu_01", "content": "a.txt\nb.txt"},
        {"role": "user", "content": "(ran it)\n\nNow read a.txt"},
        {"role": "assistant", "content": None, "tool_calls": [
            call("toolu_02", "Read", '{"path":"a.txt"}'),
            call("toolu_03", "Read", '{"path":"missing.txt","limit":2}')]},
        {"role": "tool", "tool_call_id": "toolu_02", "content": "alpha\n\nbeta"},
        {"role": "tool", "tool_call_id": "toolu_03", "content": "Error: no such file"},
        {"role": "system", "content": "The user is in a hurry."},
        {"role": "user", "content": [
            {"type": "text", "text": "Compare these."},
            {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}]},
    ]}  # fmt: skip


def test_same_role_turns_merge_and_a_leading_assistant_gets_a_user_turn(gateway, server):
    body = sent(gateway, server, model="claude-sonnet-4-5", system="Be brief.", messages=[
        {"role": "assistant", "content": "I was saying"},
        {"role": "assistant", "content": [{"type": "text", "text": "something."}]},
        {"role": "user", "content": "one"},
        {"role": "user", "content": [{"type": "text", "text": "two"}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "ok"}]},
        {"role": "assistant", "content": "Done."},  # a tool message between: not merged into the call
        {"role": "user", "content": "thanks"},
    ])  # fmt: skip
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "(continued)"},
        {"role": "assistant", "content": "I was saying\n\nsomething."},
        {"role": "user", "content": "one\n\ntwo"},
        {"role": "assistant", "content": None, "tool_calls": [call("toolu_1", "Bash", "{}")]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": "ok"},
        {"role": "assistant", "content": "Done."},
        {"role": "user", "content": "thanks"},
    ]


def test_an_image_in_a_tool_result_follows_as_a_user_message(gateway, server):
    body = sent(gateway, server, model="claude-sonnet-4-5", messages=[
        {"role": "user", "content": "Take a screenshot."},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_s", "name": "Screenshot", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_s", "content": [
                {"type": "text", "text": "Screenshot taken."},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}]},
            {"type": "text", "text": "What do you see?"}]},
    ])  # fmt: skip
    messages = body["messages"]
    tool = messages[2]
    assert (tool["role"], tool["tool_call_id"]) == ("tool", "toolu_s")
    assert tool["content"].startswith("Screenshot taken.") and "[image attached below]" in tool["content"]
    assert PNG not in json.dumps(tool)  # OpenAI tool messages carry text only
    after = messages[3:]
    assert after and all(m["role"] == "user" for m in after), messages
    image = {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}}
    assert any(isinstance(m["content"], list) and image in m["content"] for m in after), messages
    assert "What do you see?" in json.dumps(after)


TOOLS = [
    {"name": "get_weather", "description": "Weather for a city.", "cache_control": {"type": "ephemeral"},
     "input_schema": {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}},
                      "required": ["city"], "additionalProperties": False}},
    {"name": "noop", "input_schema": {"type": "object", "properties": {}}},
    {"type": "web_search_20250305", "name": "web_search", "max_uses": 3},  # Anthropic server tools: not sent
    {"type": "bash_20250124", "name": "bash"},
    {"type": "text_editor_20250728", "name": "str_replace_based_edit_tool"},
]


def test_tools_and_a_forced_tool(gateway, server):
    body = sent(gateway, server, model="claude-sonnet-4-5", messages=[{"role": "user", "content": "Paris?"}],
                tools=TOOLS, tool_choice={"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True})
    assert body == {
        "model": "gpt-test", "max_tokens": 512, "messages": [{"role": "user", "content": "Paris?"}],
        "tools": [
            {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city.",
                                              "parameters": TOOLS[0]["input_schema"]}},
            {"type": "function", "function": {"name": "noop", "parameters": {"type": "object", "properties": {}}}},
        ],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "parallel_tool_calls": False,
    }  # fmt: skip


# Anthropic's tool_choice → the OpenAI fields; the Responses API reads them the same way.
TOOL_CHOICES = [
    ({"type": "auto"}, {"tool_choice": "auto"}),
    ({"type": "any"}, {"tool_choice": "required"}),
    ({"type": "none"}, {"tool_choice": "none"}),
    ({"type": "auto", "disable_parallel_tool_use": True}, {"tool_choice": "auto", "parallel_tool_calls": False}),
]


@pytest.mark.parametrize("choice, expected", TOOL_CHOICES)
def test_tool_choice(gateway, server, choice, expected):
    body = sent(gateway, server, model="claude-sonnet-4-5", messages=[{"role": "user", "content": "go"}],
                tools=TOOLS[:2], tool_choice=choice)
    assert {key: body[key] for key in ("tool_choice", "parallel_tool_calls") if key in body} == expected


def test_anthropic_only_fields_stay_behind_and_streams_ask_for_usage(gateway, server):
    with client(gateway).messages.stream(
        model="claude-sonnet-4-5", max_tokens=300, system="Be brief.", messages=[{"role": "user", "content": "hi"}],
        stop_sequences=["END", "STOP"], metadata={"user_id": "u" * 80},
        extra_body={"temperature": 0.5, "top_p": 0.9, "top_k": 40, "thinking": {"type": "enabled", "budget_tokens": 2048}, "output_config": {"effort": "high"},
                    "context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]}},
    ) as stream:
        assert stream.get_final_message().content[0].text == GREETING
    assert only(server).json() == {
        "model": "gpt-test", "messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"}],
        "max_tokens": 300, "stop": ["END", "STOP"], "temperature": 0.5, "top_p": 0.9, "user": "u" * 64,
        "stream": True, "stream_options": {"include_usage": True},
    }  # fmt: skip


@pytest.mark.parametrize("thinking, output_config, effort", [
    ({"type": "enabled", "budget_tokens": 1024}, None, "low"),
    ({"type": "enabled", "budget_tokens": 4095}, None, "low"),
    ({"type": "enabled", "budget_tokens": 4096}, None, "medium"),
    ({"type": "enabled", "budget_tokens": 16383}, None, "medium"),
    ({"type": "enabled", "budget_tokens": 16384}, None, "high"),
    ({"type": "adaptive"}, {"effort": "low"}, "low"),
    ({"type": "adaptive"}, {"effort": "medium"}, "medium"),
    ({"type": "adaptive"}, {"effort": "high"}, "high"),
    ({"type": "adaptive"}, {"effort": "max"}, "high"),
    ({"type": "adaptive"}, None, "medium"),
    ({"type": "disabled"}, None, None),
    (None, None, None),
])  # fmt: skip
def test_thinking_becomes_reasoning_effort(gateway, server, thinking, output_config, effort):
    """The reasoner provider also renames and caps max_tokens (32000 → 4096)."""
    extra = {key: value for key, value in (("thinking", thinking), ("output_config", output_config)) if value}
    body = sent(gateway, server, model="reasoner-1", max_tokens=32000, messages=[{"role": "user", "content": "hi"}],
                extra_body=extra)
    assert body == {"model": "o-test", "messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 4096,
                    **({"reasoning_effort": effort} if effort else {})}


def test_thinking_is_not_sent_without_reasoning_effort(gateway, server):
    body = sent(gateway, server, model="claude-sonnet-4-5", max_tokens=20000, messages=[{"role": "user", "content": "hi"}],
                extra_body={"thinking": {"type": "enabled", "budget_tokens": 16384}})
    assert body == {"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 20000}


def test_max_tokens_under_the_limit_and_dropped_fields(gateway, server):
    body = sent(gateway, server, model="reasoner-1", max_tokens=100, messages=[{"role": "user", "content": "hi"}],
                extra_body={"temperature": 0.2, "top_p": 0.5})  # SDK 2.x no longer has them as arguments
    assert body == {"model": "o-test", "messages": [{"role": "user", "content": "hi"}], "max_completion_tokens": 100,
                    "top_p": 0.5}


HISTORY_WITH_THINKING = [
    {"role": "user", "content": "2+2?"},
    {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "Let me think.", "signature": "sig-abc"},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "text", "text": "Four."}]},
    {"role": "user", "content": "And 3+3?"},
]  # fmt: skip


@pytest.mark.parametrize("model, assistant", [
    ("reasoner-1", {"role": "assistant", "content": "Four.", "reasoning_content": "Let me think."}),
    ("claude-sonnet-4-5", {"role": "assistant", "content": "Four."}),
])  # fmt: skip
def test_thinking_history_goes_back_only_when_the_provider_wants_it(gateway, server, model, assistant):
    body = sent(gateway, server, model=model, max_tokens=50, messages=HISTORY_WITH_THINKING)
    assert body["messages"] == [{"role": "user", "content": "2+2?"}, assistant, {"role": "user", "content": "And 3+3?"}]


def test_azure_deployment_endpoint_query_and_header(gateway, server):
    client(gateway).messages.create(model="azure-gpt", max_tokens=8, messages=[{"role": "user", "content": "hi"}],
                                    extra_query={"beta": "true"})
    received = only(server)
    assert received.path == "/openai/deployments/my-deployment/chat/completions?api-version=2024-10-21"
    assert received.headers["api-key"] == AZURE_KEY
    assert "authorization" not in received.headers and "x-api-key" not in received.headers
    assert received.json() == {"model": "my-deployment", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}


def test_images_become_a_note_when_the_provider_takes_none(gateway, server):
    body = sent(gateway, server, model="textonly-1", messages=[{"role": "user", "content": [
        {"type": "text", "text": "Describe it."},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}]}])
    assert server.received[0].path == "/textonly/v1/chat/completions"
    text = json.dumps(body)
    assert "image_url" not in text and PNG not in text
    assert [m["role"] for m in body["messages"]] == ["user"]
    assert "Describe it." in json.dumps(body["messages"][0]["content"])


def test_documents_stay_behind_by_default(gateway, server):
    body = sent(gateway, server, model="claude-sonnet-4-5", messages=[{"role": "user", "content": [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF}},
        {"type": "text", "text": "Summarise it."}]}])
    assert PDF not in json.dumps(body)
    assert "Summarise it." in json.dumps(body["messages"])


def test_count_tokens_is_answered_locally(gateway, server):
    raw = httpx.post(f"{gateway.url}/v1/messages/count_tokens?beta=true", headers={"x-api-key": CLIENT_KEY},
                     json={"model": "reasoner-1", "messages": [{"role": "user", "content": "hi"}]})
    assert (raw.status_code, list(raw.json())) == (200, ["input_tokens"]), raw.text
    sdk = client(gateway)
    small = sdk.messages.count_tokens(model="claude-sonnet-4-5", messages=[{"role": "user", "content": "hi"}])
    large = sdk.messages.count_tokens(model="claude-sonnet-4-5", system="You are a careful assistant.",
                                      tools=TOOLS[:2], messages=[{"role": "user", "content": "word " * 2000}])
    assert 0 < small.input_tokens < large.input_tokens
    assert server.received == []
