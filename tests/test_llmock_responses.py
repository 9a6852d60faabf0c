"""The gateway in front of llmock's Responses API (a third-party mock, `POST /v1/responses`
built on the openai SDK's own types), so that the translation is not only checked
against our own fake's idea of the protocol: text, scripted and automatic tool calls,
whole and streamed, the call's output going back, a rate limit and a truncated stream."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from gateway import Gateway
from openai_upstream import CLIENT_KEY
from test_responses_gateway_answers import MODEL, answer_json, stream_events, streamed

pytest.importorskip("llmock.testing", reason="llmock (a test extra) is not installed: pip install -e '.[test]'")
from llmock.scenarios import Fail, Reply, StreamFault, ToolCall  # noqa: E402
from llmock.simulation import MockResponseSettings  # noqa: E402
from llmock.testing import LLMockServer  # noqa: E402

UPSTREAM_MODEL = "gpt-5.3-codex"
KEY = "sk-llmock-0123456789abcdef"
TEXT = f"Mock response from {UPSTREAM_MODEL}."  # llmock's "static" style
HI = [{"role": "user", "content": "hi"}]
WEATHER = {"name": "get_weather", "description": "Weather for a city.",
           "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}
CALL_ID = re.compile(r"^call_[A-Za-z0-9_-]+$")


@pytest.fixture(scope="module")
def mock() -> Iterator[LLMockServer]:
    with LLMockServer(responses=MockResponseSettings(response_style="static", tool_mode="auto")) as server:
        yield server


@pytest.fixture(scope="module")
def gateway(mock: LLMockServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    routes = f"""
providers:
  llmock:
    protocol: openai-responses
    base_url: "{mock.base_url("openai")}"
    credentials: [{{label: llmock-main, key: "${{LLMOCK_KEY}}"}}]
routes:
  - {{match: "claude-*", provider: llmock, model: {UPSTREAM_MODEL}}}
default: null
"""
    with Gateway(tmp_path_factory.mktemp("llmock"), routes, {"LLMOCK_KEY": KEY}) as gw:
        yield gw


@pytest.fixture(autouse=True)
def fresh(mock: LLMockServer, gateway: Gateway) -> None:
    mock.state.reset()
    gateway.reset_credentials()


def received(mock: LLMockServer) -> list[dict[str, Any]]:
    """The bodies llmock was sent, oldest first."""
    records = mock.state.journal.records(wait=2)
    assert all(r.path == "/v1/responses" and r.provider == "openai" for r in records), records
    return [r.body for r in records]


def test_text_whole_and_streamed(mock, gateway):
    answer = answer_json(gateway)
    usage = answer["usage"]
    assert answer == {"id": answer["id"], "type": "message", "role": "assistant", "model": MODEL,
                      "content": [{"type": "text", "text": TEXT, "citations": None}], "stop_reason": "end_turn",
                      "stop_sequence": None, "stop_details": None, "container": None, "usage": usage}
    assert usage["output_tokens"] > 0 and usage["cache_read_input_tokens"] == 0
    answer = streamed(gateway)
    assert (answer["model"], answer["content"], answer["stop_reason"]) == (
        MODEL, [{"type": "text", "text": TEXT, "citations": None}], "end_turn")
    first, second = received(mock)
    assert first == {"model": UPSTREAM_MODEL, "input": [{"type": "message", "role": "user",
                                                         "content": [{"type": "input_text", "text": "hi"}]}],
                     "max_output_tokens": 256, "include": ["reasoning.encrypted_content"], "store": False}
    assert second == {**first, "stream": True}


@pytest.mark.parametrize("stream", [False, True])
def test_a_scripted_reply_with_text_and_a_tool_call(mock, gateway, stream):
    mock.state.scenarios.add(Reply(text="Let me check.", tool_calls=(ToolCall("get_weather", {"city": "Paris"}),)))
    answer = streamed(gateway, tools=[WEATHER]) if stream else answer_json(gateway, tools=[WEATHER])
    text, call = answer["content"]
    assert text == {"type": "text", "text": "Let me check.", "citations": None}
    assert CALL_ID.match(call.pop("id")), call
    assert (call, answer["stop_reason"]) == ({"type": "tool_use", "name": "get_weather", "input": {"city": "Paris"},
                                              "caller": {"type": "direct"}}, "tool_use")
    assert received(mock)[0]["tools"] == [{"type": "function", "name": "get_weather", "description": "Weather for a city.",
                                           "parameters": WEATHER["input_schema"], "strict": False}]


def test_an_agent_loop_with_llmocks_own_tool_call(mock, gateway):
    """In tool_mode auto llmock calls an offered tool until a function_call_output comes
    back, then answers: the call's id must survive the round trip through the client."""
    messages: list[dict[str, Any]] = [{"role": "user", "content": "What is the weather in Paris?"}]
    answer = streamed(gateway, tools=[WEATHER], messages=messages)
    (call,) = answer["content"]
    assert (call["type"], call["name"], answer["stop_reason"]) == ("tool_use", "get_weather", "tool_use")
    assert isinstance(call["input"]["city"], str) and CALL_ID.match(call["id"]), call
    messages += [{"role": "assistant", "content": [call]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": call["id"], "content": "sunny"}]}]
    final = answer_json(gateway, tools=[WEATHER], messages=messages)
    assert (final["content"], final["stop_reason"]) == ([{"type": "text", "text": TEXT, "citations": None}], "end_turn")
    second = received(mock)[1]
    assert second["input"][1:] == [
        {"type": "function_call", "call_id": call["id"], "name": "get_weather",
         "arguments": f'{{"city":"{call["input"]["city"]}"}}'},
        {"type": "function_call_output", "call_id": call["id"], "output": "sunny"},
    ]  # fmt: skip


def test_a_rate_limit(mock, gateway):
    mock.state.scenarios.add(Fail(429, retry_after=3, message="Rate limit reached for gpt-5.3-codex"))
    answer = httpx.post(f"{gateway.url}/v1/messages", headers={"x-api-key": CLIENT_KEY}, timeout=30,
                        json={"model": MODEL, "max_tokens": 8, "messages": HI})
    assert (answer.status_code, answer.headers["retry-after"]) == (429, "3")
    assert answer.json()["error"]["type"] == "rate_limit_error"
    assert "Rate limit reached for gpt-5.3-codex" in answer.json()["error"]["message"]


def test_a_truncated_stream_is_an_error_not_a_short_answer(mock, gateway):
    """llmock ends the stream cleanly but without response.completed: "many clients
    accept it as a full answer"."""
    mock.state.scenarios.add(StreamFault("truncate", after_chunks=4))
    sequence = stream_events(gateway)
    kinds = [event["type"] for event in sequence]
    assert kinds[0] == "message_start" and kinds[-1] == "error" and "message_stop" not in kinds, kinds
    assert sequence[-1]["error"] == {"type": "api_error",
                                     "message": "the upstream's stream ended before the answer was complete"}
