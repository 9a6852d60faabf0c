"""A `gemini` provider behind the real gateway, in front of llmock: a third party's mock
of the Gemini API (PyPI `llmock`), so the gateway is not only checked against our own
fake's idea of Gemini. Its replies are scripted through its admin API
(`POST /_llmock/scenario`); `GET /_llmock/requests` shows what it received."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import pytest
from gateway import Gateway
from sse_checks import accumulated, events, validate

testing = pytest.importorskip("llmock.testing", reason="llmock (a test extra: pip install -e '.[test]') is not installed")

MODEL = "gemini-2.5-flash"
KEY = "AIzaSyFake-llmock-eeeeeeeeeeeeeeeeee5"
CLIENT_KEY = "sk-ant-api03-client-key-never-upstream"
HI = [{"role": "user", "content": "hi"}]
LOOKUP = [{"name": "lookup", "description": "Look something up",
           "input_schema": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}]
SCRIPTED = "Scripted hello"


@pytest.fixture(scope="module")
def mock() -> Iterator[Any]:
    """llmock in-process (its pytest plugin's own `llmock` fixture is function-scoped)."""
    with testing.LLMockServer() as server:
        yield server


@pytest.fixture(scope="module")
def gateway(mock, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    routes = f"""
providers:
  google:
    protocol: gemini
    base_url: "{mock.base_url("gemini")}/v1beta"
    credentials: [{{label: main, key: "${{LLMOCK_KEY}}"}}]
routes:
  - {{match: "gemini-*", provider: google}}
default: null
"""
    with Gateway(tmp_path_factory.mktemp("llmock"), routes, {"LLMOCK_KEY": KEY}) as gw:
        yield gw


@pytest.fixture(autouse=True)
def fresh(mock, gateway: Gateway) -> None:
    gateway.reset_credentials()
    httpx.post(f"{mock.url}/_llmock/reset", timeout=5).raise_for_status()


def script(mock, *behaviors: dict[str, Any]) -> None:
    httpx.post(f"{mock.url}/_llmock/scenario", json={"behaviors": list(behaviors)}, timeout=5).raise_for_status()


def received(mock) -> list[dict[str, Any]]:
    return httpx.get(f"{mock.url}/_llmock/requests", timeout=5).json()["requests"]


def reply(stream: bool, tool_calls: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"type": "reply", "text": SCRIPTED, "tool_calls": tool_calls or [],
            "match": {"provider": "gemini", "stream": stream}}


def client(gateway: Gateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, api_key=CLIENT_KEY, max_retries=0)


def stream_events(gateway: Gateway, **request: Any) -> list[dict[str, Any]]:
    body = {"model": MODEL, "max_tokens": 256, "messages": HI, **request, "stream": True}
    with httpx.stream("POST", f"{gateway.url}/v1/messages", json=body, headers={"x-api-key": CLIENT_KEY},
                      timeout=30) as answer:
        assert answer.status_code == 200, answer.read()
        raw = answer.read()
    return [e for e in events([raw]) if e["type"] != "ping"]


def test_a_whole_text_answer(gateway, mock):
    script(mock, reply(stream=False))
    answer = client(gateway).messages.create(model=MODEL, max_tokens=256, messages=HI, system="Be brief.")
    assert [b.model_dump() for b in answer.content] == [{"type": "text", "text": SCRIPTED, "citations": None}]
    assert (answer.model, answer.stop_reason, answer.role) == (MODEL, "end_turn", "assistant")
    assert answer.usage.output_tokens > 0
    [request] = received(mock)
    assert (request["path"], request["status"], request["stream"]) == (
        f"/gemini/v1beta/models/{MODEL}:generateContent", 200, False)
    assert request["body"] == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                               "systemInstruction": {"parts": [{"text": "Be brief."}]},
                               "generationConfig": {"maxOutputTokens": 256}}


def test_a_whole_tool_call(gateway, mock):
    script(mock, reply(stream=False, tool_calls=[{"name": "lookup", "arguments": {"q": "x"}}]))
    answer = client(gateway).messages.create(model=MODEL, max_tokens=256, messages=HI, tools=LOOKUP)
    assert answer.stop_reason == "tool_use"
    text, tool_use = answer.content
    assert (text.type, text.text) == ("text", SCRIPTED)
    assert (tool_use.type, tool_use.name, tool_use.input) == ("tool_use", "lookup", {"q": "x"})
    assert tool_use.id.startswith("toolu_")
    [request] = received(mock)
    assert request["body"]["tools"] == [{"functionDeclarations": [{
        "name": "lookup", "description": "Look something up",
        "parameters": {"type": "object", "properties": {"q": {"type": "string"}}, "required": ["q"]}}]}]


def test_a_streamed_tool_call_and_its_result(gateway, mock):
    """llmock streams the text word by word and the call whole in the last event; the
    client's next turn carries the result, which llmock receives as a functionResponse."""
    script(mock, reply(stream=True, tool_calls=[{"name": "lookup", "arguments": {"q": "x"}}]))
    sequence = stream_events(gateway, tools=LOOKUP)
    validate(sequence)
    message = accumulated(sequence)
    text, tool_use = message["content"]
    assert text == {"type": "text", "text": SCRIPTED, "citations": None}
    assert (tool_use["type"], tool_use["name"], tool_use["input"]) == ("tool_use", "lookup", {"q": "x"})
    assert (message["model"], message["stop_reason"]) == (MODEL, "tool_use")
    assert received(mock)[0]["path"] == f"/gemini/v1beta/models/{MODEL}:streamGenerateContent"

    script(mock, {"type": "reply", "text": "Found it.", "match": {"provider": "gemini", "stream": True}})
    history = [*HI, {"role": "assistant", "content": message["content"]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use["id"], "content": "x is 42"}]}]
    with client(gateway).messages.stream(model=MODEL, max_tokens=256, messages=history, tools=LOOKUP) as stream:
        assert stream.get_final_text() == "Found it."
    second = received(mock)[-1]
    assert second["status"] == 200
    assert second["body"]["contents"] == [
        {"role": "user", "parts": [{"text": "hi"}]},
        {"role": "model", "parts": [{"text": SCRIPTED}, {"functionCall": {"name": "lookup", "args": {"q": "x"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "lookup", "response": {"output": "x is 42"}}}]},
    ]


def test_a_streamed_text_answer_is_the_sdks(gateway, mock):
    script(mock, reply(stream=True))
    with client(gateway).messages.stream(model=MODEL, max_tokens=256, messages=HI) as stream:
        final = stream.get_final_message()
    assert [(b.type, b.text) for b in final.content] == [("text", SCRIPTED)]
    assert (final.stop_reason, final.model) == ("end_turn", MODEL)


@pytest.mark.parametrize("stream", [False, True])
def test_a_429_is_a_rate_limit_error_with_its_retry_after(gateway, mock, stream):
    script(mock, {"type": "fail", "status": 429, "retry_after": 2})
    body = {"model": MODEL, "max_tokens": 16, "messages": HI, "stream": stream}
    answer = httpx.post(f"{gateway.url}/v1/messages", json=body, headers={"x-api-key": CLIENT_KEY}, timeout=15)
    assert (answer.status_code, answer.headers["retry-after"]) == (429, "2")
    assert answer.json() == {"type": "error", "error": {
        "type": "rate_limit_error",
        "message": "provider 'google' answered HTTP 429: Rate limit exceeded. (RESOURCE_EXHAUSTED)"}}
    assert [r["fault"] for r in received(mock)] == ["scenario:429"]
    assert KEY not in json.dumps(answer.json())


def test_a_stream_cut_before_its_finish_reason_is_an_error_not_an_answer(gateway, mock):
    """llmock's `truncate` ends the body cleanly after one event, with no finishReason."""
    script(mock, reply(stream=True), {"type": "stream_fault", "kind": "truncate", "after_chunks": 1})
    sequence = stream_events(gateway)
    names = [e["type"] for e in sequence]
    assert names[0] == "message_start" and names[-1] == "error" and "message_stop" not in names, names
    assert sequence[-1]["error"] == {"type": "api_error",
                                     "message": "the upstream's stream ended before the answer was complete"}
