"""`openai-chat` providers behind the real gateway, on both send paths (one key:
mitmproxy sends it; two: the failover relay does), serving model families that need
more than plain Chat Completions: Gemini through Google's OpenAI-compatible endpoint
(thought signatures in `extra_content` go back on the replayed calls) and reasoning
models (a thinking request gets a `reasoning_effort` unless the provider says no)."""

from __future__ import annotations

from typing import Any

import pytest
from openai_upstream import (  # noqa: F401 (fixture: server)
    CLIENT_KEY, GREETING, chunk, client, gateway_fixtures, openai_like, server, sse, tool_call,
)
from upstream import Stream, Upstream

KEY, SPARE = "AIzaSyFake-compat-aaaaaaaaaaaaaaaaaa1", "AIzaSyFake-compat-bbbbbbbbbbbbbbbbbb2"
SIG = "CiQBcsjafGSpLlC+3o7lbTTA2tOVpqu5i/Q1Kr1I="  # base64 with + and /: must come back unchanged
CALL_ID = "function-call-f3b9ecb3-d55f-4076-98c8-b13e9d1c0e01"
WEATHER = [{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
HI = [{"role": "user", "content": "weather in Paris?"}]


MODELS = ["gemini-3-pro-preview", "gpt-5", "o3", "gpt-5.1", "gpt-4o", "gpt-5-chat-latest"]
PROVIDERS = {"one": "", "two": "", "never": ", reasoning_effort: false", "always": ", reasoning_effort: true"}


def routes_yaml(url: str) -> str:
    """`PROVIDER-MODEL` sends MODEL to PROVIDER: `one` has one key, the others two;
    `never` and `always` write `reasoning_effort`."""
    keys = {"one": f'{{label: a, key: "{KEY}"}}'}
    default = f'{{label: a, key: "{KEY}"}}, {{label: b, key: "{SPARE}"}}'
    providers = "".join(f'  {name}: {{protocol: openai-chat, base_url: "{url}/v1beta/openai", '
                        f'credentials: [{keys.get(name, default)}]{extra}}}\n' for name, extra in PROVIDERS.items())
    routes = "".join(f"  - {{match: {name}-{model}, provider: {name}, model: {model}}}\n"
                     for name in PROVIDERS for model in MODELS)
    return f"providers:\n{providers}routes:\n{routes}default: null\n"


gateway, fresh = gateway_fixtures("openai-families", routes_yaml, {}, openai_like)
PATHS = pytest.mark.parametrize("route", ["one", "two"])


def signed_call(model: str) -> Stream:
    """Gemini's compatible endpoint streams a call whole, its signature in extra_content."""
    call = tool_call(CALL_ID, "get_weather", '{"city":"Paris"}', index=0)
    call["extra_content"] = {"google": {"thought_signature": SIG}}
    return Stream(sse([chunk({"role": "assistant", "tool_calls": [call]}, model=model),
                       chunk({}, finish="tool_calls", model=model)]))


def received(server: Upstream) -> dict[str, Any]:
    [request] = server.received
    return request.json()


@PATHS
def test_gemini_signatures_come_back_on_their_calls(gateway, server, route):
    model = "gemini-3-pro-preview"
    server.reply = lambda request: signed_call(model)
    with client(gateway).messages.stream(model=f"{route}-{model}", max_tokens=64, messages=HI, tools=WEATHER) as stream:
        first = stream.get_final_message()
    content = [b.model_dump(exclude_unset=True) for b in first.content]
    assert content == [{"type": "thinking", "thinking": "", "signature": f"gemini-next:{SIG}"},
                       {"type": "tool_use", "id": CALL_ID, "name": "get_weather", "input": {"city": "Paris"},
                        "caller": {"type": "direct"}}]
    server.received.clear()
    server.reply = openai_like
    history = [*HI, {"role": "assistant", "content": content},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": CALL_ID, "content": "Sunny"}]}]
    answer = client(gateway).messages.create(model=f"{route}-{model}", max_tokens=64, messages=history, tools=WEATHER)
    assert answer.content[0].text == GREETING
    assert received(server)["messages"][1:] == [
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": CALL_ID, "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
             "extra_content": {"google": {"thought_signature": SIG}}}]},
        {"role": "tool", "tool_call_id": CALL_ID, "content": "Sunny"},
    ]  # fmt: skip
    server.received.clear()
    client(gateway).messages.create(model=f"{route}-gpt-5", max_tokens=64, messages=history, tools=WEATHER)
    assert "extra_content" not in server.received[0].body.decode()  # OpenAI rejects fields it does not know


THINKING = {"thinking": {"type": "enabled", "budget_tokens": 20000}}


@pytest.mark.parametrize("route", ["one", "two", "never", "always"])
@pytest.mark.parametrize("model, takes", [("o3", True), ("gpt-5.1", True), ("gpt-4o", False), ("gpt-5-chat-latest", False)])
def test_a_thinking_request_reaches_reasoning_models_with_an_effort(gateway, server, route, model, takes):
    client(gateway).messages.create(model=f"{route}-{model}", max_tokens=64, messages=HI, extra_body=THINKING)
    wanted = {"always": True, "never": False}.get(route, takes)  # the provider's written switch wins
    assert received(server).get("reasoning_effort") == ("high" if wanted else None)
    server.received.clear()
    client(gateway).messages.create(model=f"{route}-{model}", max_tokens=64, messages=HI)
    assert "reasoning_effort" not in received(server)  # no thinking asked, no effort
