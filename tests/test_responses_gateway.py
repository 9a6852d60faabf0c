"""An `openai-responses` provider behind the real gateway: the exact Responses request the
upstream receives for real SDK requests, NAME(EFFORT) model names, and the routes.yaml
efforts the gateway refuses. What the client gets back is in
test_responses_gateway_answers.py."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import openai
import pytest
from gateway import Gateway
from openai_upstream import CLIENT_KEY, error_reply
from responses_upstream import (  # noqa: F401 (fixtures: fresh, gateway, server)
    CODEX_KEY, ENCRYPTED, GREETING, ROUTES_ENV, UPSTREAM_MODEL, client, events, fresh, function_call, gateway,
    message, reasoning, response, routes_yaml, server, sse, usage,
)
from test_openai_gateway import PDF, PNG, TOOL_CHOICES, TOOLS, only
from upstream import Stream, Upstream

from modelmux.config import loader

INCLUDE = ["reasoning.encrypted_content"]
HI = [{"role": "user", "content": "hi"}]


def user(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"type": "message", "role": "user", "content": list(parts)}


def text(value: str) -> dict[str, Any]:
    return {"type": "input_text", "text": value}


def sent(gateway: Gateway, server: Upstream, **request: Any) -> dict[str, Any]:
    """Send one non-streamed request; the JSON body the upstream received."""
    request.setdefault("max_tokens", 512)
    request.setdefault("model", "claude-sonnet-4-5")
    answer = client(gateway).messages.create(timeout=30, **request)
    assert answer.content[0].text == GREETING
    return only(server).json()


def test_the_fake_speaks_responses(server: Upstream):
    """The fake itself, checked by the OpenAI SDK: whole answers, streams (reasoning with
    its encrypted content, a call whose arguments come only when it is done), errors."""
    sdk = openai.OpenAI(base_url=f"{server.url}/v1", api_key="k", max_retries=0)
    answer = sdk.responses.create(model="m", input="hi")
    assert (answer.model, answer.output_text, answer.usage.input_tokens) == ("m", GREETING, 12)
    streamed = list(sdk.responses.create(model="m", input="hi", stream=True))
    assert streamed[-1].type == "response.completed" and streamed[-1].response.output_text == GREETING
    assert "".join(e.delta for e in streamed if e.type == "response.output_text.delta") == GREETING
    output = [reasoning("Plan.", "Act."), function_call("call_1", "Bash", {"command": "ls"})]
    server.reply = lambda r: Stream(sse([": keep-alive", *events(output, arguments="item")]))
    with sdk.responses.stream(model="m", input="hi") as stream:
        final = stream.get_final_response()
    rs, call = final.output
    assert ([s.text for s in rs.summary], rs.encrypted_content) == (["Plan.", "Act."], ENCRYPTED)
    assert (call.call_id, call.name, call.arguments) == ("call_1", "Bash", '{"command":"ls"}')
    server.reply = lambda r: Stream(sse(events([message("x")], response([message("x")], usage=usage(9, 3, cached=4)))))
    completed = list(sdk.responses.create(model="m", input="hi", stream=True))[-1].response
    assert completed.usage.input_tokens_details.cached_tokens == 4
    server.reply = lambda r: error_reply(429, "slow down", "rate_limit_error", headers={"retry-after": "7"})
    with pytest.raises(openai.RateLimitError) as raised:
        sdk.responses.create(model="m", input="hi")
    assert raised.value.response.headers["retry-after"] == "7"


def test_path_headers_and_the_smallest_body(gateway, server):
    client(gateway, **{"anthropic-beta": "interleaved-thinking-2025-05-14", "x-modelmux-profile": "codex"}).messages.create(
        model="claude-sonnet-4-5", max_tokens=64, messages=HI, extra_query={"beta": "true"})
    received = only(server)
    headers = received.headers
    assert (received.method, received.path) == ("POST", "/v1/responses")  # the client's ?beta=true stays behind
    assert headers["authorization"] == f"Bearer {CODEX_KEY}"
    assert (headers["content-type"], headers["accept-encoding"]) == ("application/json", "identity")
    for name in ("x-api-key", "anthropic-version", "anthropic-beta"):
        assert name not in headers
    assert not [name for name in headers if name.startswith("x-modelmux")]
    assert CLIENT_KEY not in json.dumps(headers)
    # reasoning_effort is on by default for this protocol: the encrypted reasoning is asked for
    # even when the client did not ask to think (no `reasoning` then: the model's default).
    assert received.json() == {"model": UPSTREAM_MODEL, "input": [user(text("hi"))], "max_output_tokens": 64,
                               "include": INCLUDE, "store": False}


def test_a_whole_conversation(gateway, server):
    """System blocks → instructions; tool calls and results → function_call and
    function_call_output items, each output right after its call, the user's text after
    them; an unanswered call gets an error output; images and a PDF as input parts."""
    body = sent(gateway, server, system=[
        {"type": "text", "text": "x-anthropic-billing-header: cc_version=2.1; cc_entrypoint=cli;"},
        {"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "Answer in English."},
    ], messages=[
        {"role": "user", "content": [{"type": "text", "text": "List the files."}, {"type": "text", "text": ""}]},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Listing."},
            {"type": "tool_use", "id": "toolu_01", "name": "Bash", "input": {"command": "ls", "description": "liste é"}},
            {"type": "tool_use", "id": "toolu_02", "name": "Read", "input": {"path": "a.txt"}}]},
        {"role": "user", "content": [
            {"type": "text", "text": "(ran it)"},
            {"type": "tool_result", "tool_use_id": "toolu_01", "content": "a.txt\nb.txt"}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_03", "name": "Read", "input": {}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_03", "is_error": True,
             "content": [{"type": "text", "text": "no such"}, {"type": "text", "text": "file"}]},
            {"type": "text", "text": "Compare these."},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
            {"type": "document", "title": "spec.pdf",
             "source": {"type": "base64", "media_type": "application/pdf", "data": PDF}}]},
    ])  # fmt: skip
    assert body == {"model": UPSTREAM_MODEL, "instructions": "You are terse.\n\nAnswer in English.", "input": [
        user(text("List the files.")),
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Listing."}]},
        {"type": "function_call", "call_id": "toolu_01", "name": "Bash",
         "arguments": '{"command":"ls","description":"liste é"}'},
        {"type": "function_call", "call_id": "toolu_02", "name": "Read", "arguments": '{"path":"a.txt"}'},
        {"type": "function_call_output", "call_id": "toolu_01", "output": "a.txt\nb.txt"},
        {"type": "function_call_output", "call_id": "toolu_02",
         "output": "Error: no result was recorded for this tool call."},
        user(text("(ran it)")),
        {"type": "function_call", "call_id": "toolu_03", "name": "Read", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "toolu_03", "output": "Error: no such\n\nfile"},
        user(text("Compare these."),
             {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"},
             {"type": "input_image", "image_url": "https://example.com/cat.jpg"},
             {"type": "input_file", "filename": "spec.pdf", "file_data": f"data:application/pdf;base64,{PDF}"}),
    ], "max_output_tokens": 512, "include": INCLUDE, "store": False}  # fmt: skip


def test_an_image_in_a_tool_result_stays_in_its_output(gateway, server):
    body = sent(gateway, server, messages=[
        {"role": "user", "content": "Take a screenshot."},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_s", "name": "Screenshot", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_s", "content": [
            {"type": "text", "text": "Taken."},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}}]}]},
    ])  # fmt: skip
    assert body["input"][2] == {"type": "function_call_output", "call_id": "toolu_s", "output": [
        text("Taken."), {"type": "input_image", "image_url": f"data:image/png;base64,{PNG}"}]}
    assert len(body["input"]) == 3


def test_tools_are_not_strict_and_a_forced_tool(gateway, server):
    body = sent(gateway, server, messages=[{"role": "user", "content": "Paris?"}], tools=TOOLS,
                tool_choice={"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True})
    assert body["tools"] == [
        {"type": "function", "name": "get_weather", "description": "Weather for a city.",
         "parameters": TOOLS[0]["input_schema"], "strict": False},
        {"type": "function", "name": "noop", "parameters": {"type": "object", "properties": {}}, "strict": False},
    ]  # fmt: skip  (Anthropic's server tools stay behind)
    assert (body["tool_choice"], body["parallel_tool_calls"]) == ({"type": "function", "name": "get_weather"}, False)


@pytest.mark.parametrize("choice, expected", TOOL_CHOICES)
def test_tool_choice(gateway, server, choice, expected):
    body = sent(gateway, server, messages=HI, tools=TOOLS[:2], tool_choice=choice)
    assert {key: body[key] for key in ("tool_choice", "parallel_tool_calls") if key in body} == expected


@pytest.mark.parametrize("thinking, output_config, reasoning_sent", [
    ({"type": "enabled", "budget_tokens": 1024}, None, {"effort": "low", "summary": "auto"}),
    ({"type": "enabled", "budget_tokens": 4096}, None, {"effort": "medium", "summary": "auto"}),
    ({"type": "enabled", "budget_tokens": 31999}, None, {"effort": "high", "summary": "auto"}),
    ({"type": "adaptive"}, {"effort": "max"}, {"effort": "high", "summary": "auto"}),
    ({"type": "adaptive"}, None, {"effort": "medium", "summary": "auto"}),
    ({"type": "disabled"}, None, None),
])  # fmt: skip
def test_thinking_becomes_reasoning(gateway, server, thinking, output_config, reasoning_sent):
    """A provider with reasoning_effort serves a reasoning model: sampling parameters stay
    behind (OpenAI rejects them), thinking or not; stop_sequences always do."""
    extra = {key: value for key, value in (("thinking", thinking), ("output_config", output_config)) if value}
    body = sent(gateway, server, max_tokens=32000, messages=HI, stop_sequences=["END"],
                extra_body={**extra, "temperature": 1, "top_p": 0.9})
    assert body == {"model": UPSTREAM_MODEL, "input": [user(text("hi"))], "max_output_tokens": 32000,
                    **({"reasoning": reasoning_sent} if reasoning_sent else {}), "include": INCLUDE, "store": False}


def test_a_provider_without_reasoning_or_documents(gateway, server):
    """`reasoning_effort: false`: the client's thinking is not sent, nor is encrypted
    reasoning asked for, and sampling parameters go; `documents: false`: a PDF becomes a note."""
    body = sent(gateway, server, model="plain-1", max_tokens=8, messages=[{"role": "user", "content": [
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF}},
        {"type": "text", "text": "Summarise it."}]}], stop_sequences=["END"],
        extra_body={"thinking": {"type": "enabled", "budget_tokens": 2048}, "temperature": 0.5, "top_p": 0.9})
    assert server.received[0].path == "/plain/v1/responses"
    assert body == {"model": "gpt-4.1", "input": [user(
        text("[document omitted: this model does not accept documents]"), text("Summarise it."))],
        "max_output_tokens": 16, "temperature": 0.5, "top_p": 0.9, "store": False}  # OpenAI's minimum is 16


def test_a_stream_asks_for_one_and_metadata_becomes_user(gateway, server):
    with client(gateway).messages.stream(model="claude-sonnet-4-5", max_tokens=300, system="Be brief.",
                                         messages=HI, metadata={"user_id": "u1"}) as stream:
        assert stream.get_final_message().content[0].text == GREETING
    assert only(server).json() == {"model": UPSTREAM_MODEL, "instructions": "Be brief.", "input": [user(text("hi"))],
                                   "max_output_tokens": 300, "user": "u1", "include": INCLUDE, "store": False,
                                   "stream": True}


# -- NAME(EFFORT) -------------------------------------------------------------------

THINK_LITTLE = {"thinking": {"type": "enabled", "budget_tokens": 1024}}  # would be effort low


@pytest.mark.parametrize("model, headers", [
    ("xhigh-sonnet", {}),  # a route's model: gpt-5.3-codex(xhigh)
    (f"{UPSTREAM_MODEL}(xhigh)", {"x-modelmux-profile": "codex"}),  # the codex profile's opus slot
])  # fmt: skip
def test_an_effort_in_the_model_name_overrides_thinking(gateway, server, model, headers):
    answer = client(gateway, **headers).messages.create(model=model, max_tokens=64, messages=HI, extra_body=THINK_LITTLE)
    assert (answer.model, answer.content[0].text) == (model, GREETING)
    body = only(server).json()
    assert (body["model"], body["reasoning"]) == (UPSTREAM_MODEL, {"effort": "xhigh", "summary": "auto"})
    server.received.clear()
    with client(gateway, **headers).messages.stream(model=model, max_tokens=64, messages=HI) as stream:
        assert stream.get_final_message().model == model
    body = only(server).json()
    assert (body["model"], body["reasoning"], body["stream"]) == (UPSTREAM_MODEL, {"effort": "xhigh", "summary": "auto"}, True)


def test_a_profile_slot_with_an_effort_reaches_claude_code_as_written(gateway):
    from modelmux.cli.launcher import profile_environment

    values, _ = profile_environment(loader.load(gateway.config, ROUTES_ENV), "codex", {})
    assert values["ANTHROPIC_DEFAULT_OPUS_MODEL"] == f"{UPSTREAM_MODEL}(xhigh)"


def test_an_effort_the_model_does_not_take_is_the_clients_400(gateway, server):
    """A client may write any name; routes.yaml's own are checked when it loads."""
    with pytest.raises(anthropic.BadRequestError) as raised:
        client(gateway).messages.create(model="gpt-5.1(xhigh)", max_tokens=8, messages=HI)
    error = raised.value
    assert error.status_code == 400 and error.body["error"]["type"] == "invalid_request_error"
    assert error.body["error"]["message"] == (
        "model 'gpt-5.1(xhigh)' asks provider 'codex' for reasoning effort xhigh, but gpt-5.1 takes "
        "reasoning effort none, low, medium, high, not xhigh")
    assert server.received == []


def bad_routes(url: str, old: str, new: str) -> str:
    routes = routes_yaml(url)
    assert old in routes
    return routes.replace(old, new, 1)


@pytest.mark.parametrize("old, new, problem", [
    (f'model: "{UPSTREAM_MODEL}(xhigh)"', 'model: "gpt-5.1(xhigh)"',
     "routes[1].model: gpt-5.1(xhigh) asks provider 'codex' (openai-responses) for reasoning effort xhigh, "
     "but gpt-5.1 takes reasoning effort none, low, medium, high, not xhigh"),
    (f'model: "{UPSTREAM_MODEL}(xhigh)"', 'model: "gpt-5(8192)"',
     "routes[1].model: gpt-5(8192) asks provider 'codex' (openai-responses) for reasoning effort 8192, "
     "but openai-responses takes a named effort (none, minimal, low, medium, high, xhigh), not a token budget"),
    (f'opus: "{UPSTREAM_MODEL}(xhigh)"', 'opus: "gpt-5.1(xhigh)"',
     "profiles.codex.slots.opus: gpt-5.1(xhigh) asks provider 'codex' (openai-responses) for reasoning effort xhigh, "
     "but gpt-5.1 takes reasoning effort none, low, medium, high, not xhigh"),
])  # fmt: skip
def test_routes_yaml_with_an_effort_the_model_does_not_take(tmp_path, old, new, problem):
    """The config does not load, and the gateway does not start, naming the model. (Not
    stopped through Gateway.stop: a health check in the moment before mitmdump exits
    meets addons without a config, which its log shows as an addon error.)"""
    refused = Gateway(tmp_path, bad_routes("http://127.0.0.1:9", old, new), ROUTES_ENV)
    with pytest.raises(loader.ConfigError) as raised:
        loader.load(refused.config, ROUTES_ENV)
    assert raised.value.problems == [problem]
    with pytest.raises(RuntimeError, match="gateway exited") as exited:
        refused.start()
    assert problem in str(exited.value)
