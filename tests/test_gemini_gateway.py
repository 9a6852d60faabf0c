"""A `gemini` provider behind the real gateway: the exact URL, headers and
generateContent body the upstream receives for real SDK requests, `NAME(EFFORT)`
model names, and routes.yaml efforts a model does not take. What the client gets
back is in test_gemini_gateway_answers.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from gateway import Gateway
from gemini_upstream import (  # noqa: F401 (fixtures: fresh, gateway, server)
    BAD_KEY, CLIENT_KEY, GEMINI_KEY, GREETING, QUOTA, bad_key, client, fresh, gateway, rate_limited, routes_yaml,
    server,
)
from test_openai_gateway import PDF, PNG, only
from upstream import Upstream

from modelmux.config import loader as config
from modelmux.translate.gemini import schema

TOOL_SCHEMAS = json.loads((Path(__file__).parent / "data" / "claude_code_tool_schemas.json").read_text())
HI = [{"role": "user", "content": "hi"}]
# Gemini's Schema object (ai.google.dev/api/caching#Schema): it answers 400 to any other field.
SCHEMA_FIELDS = {"type", "format", "title", "description", "nullable", "enum", "maxItems", "minItems", "properties",
                 "required", "minProperties", "maxProperties", "minLength", "maxLength", "pattern", "example",
                 "anyOf", "propertyOrdering", "default", "items", "minimum", "maximum"}


def sent(gateway: Gateway, server: Upstream, **request: Any) -> dict[str, Any]:
    """Send one non-streamed request; the JSON body the upstream received."""
    request.setdefault("max_tokens", 512)
    answer = client(gateway).messages.create(timeout=30, **request)
    assert answer.content[-1].text == GREETING
    return only(server).json()


def test_the_fake_speaks_gemini(server: Upstream):
    """The fake itself, checked with plain httpx (google-genai is not a test dependency):
    whole answers, `alt=sse` events, the JSON-array stream, and google.rpc.Status errors."""
    base, key = f"{server.url}/v1beta/models", {"x-goog-api-key": "k"}
    hi = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    whole = httpx.post(f"{base}/gemini-x:generateContent", json=hi, headers=key).json()
    assert whole["candidates"][0]["content"] == {"parts": [{"text": GREETING}], "role": "model"}
    assert (whole["candidates"][0]["finishReason"], whole["modelVersion"]) == ("STOP", "gemini-x")
    streamed = httpx.post(f"{base}/gemini-x:streamGenerateContent?alt=sse", json=hi, headers=key)
    assert streamed.headers["content-type"] == "text/event-stream"
    frames = [json.loads(f.removeprefix("data: ")) for f in streamed.text.split("\r\n\r\n") if f]
    assert "".join(f["candidates"][0]["content"]["parts"][0]["text"] for f in frames) == GREETING
    assert [f["candidates"][0].get("finishReason") for f in frames] == [None] * (len(frames) - 1) + ["STOP"]
    assert frames[-1]["usageMetadata"] == {"promptTokenCount": 12, "candidatesTokenCount": 7, "totalTokenCount": 19}
    array = httpx.post(f"{base}/gemini-x:streamGenerateContent", json=hi, headers=key).json()
    assert array == frames
    unregistered = httpx.post(f"{base}/gemini-x:generateContent", json=hi)
    assert (unregistered.status_code, unregistered.json()["error"]["status"]) == (403, "PERMISSION_DENIED")
    assert httpx.post(f"{server.url}/v1/models/gemini-x:generateContent", json=hi, headers=key).status_code == 404
    server.reply = lambda r: rate_limited()
    limited = httpx.post(f"{base}/gemini-x:generateContent", json=hi, headers=key)
    assert (limited.status_code, limited.json()) == (429, QUOTA)
    server.reply = lambda r: bad_key()
    assert httpx.post(f"{base}/gemini-x:generateContent", json=hi, headers=key).json() == BAD_KEY


@pytest.mark.parametrize("stream", [False, True])
def test_path_and_headers(gateway, server, stream):
    headers = {"anthropic-beta": "interleaved-thinking-2025-05-14", "x-modelmux-profile": "gemini"}
    request = {"model": "gemini-2.5-flash", "max_tokens": 16, "messages": HI, "extra_query": {"beta": "true"}}
    if stream:
        with client(gateway, **headers).messages.stream(**request) as events:
            assert events.get_final_text() == GREETING
    else:
        assert client(gateway, **headers).messages.create(**request).content[0].text == GREETING
    received = only(server)
    endpoint = ":streamGenerateContent?alt=sse" if stream else ":generateContent"
    assert (received.method, received.path) == ("POST", f"/v1beta/models/gemini-2.5-flash{endpoint}")
    assert received.headers["x-goog-api-key"] == GEMINI_KEY
    assert received.headers["content-type"] == "application/json"
    for name in ("x-api-key", "authorization", "anthropic-version", "anthropic-beta"):
        assert name not in received.headers
    assert not [name for name in received.headers if name.startswith("x-modelmux")]
    assert CLIENT_KEY not in json.dumps(received.headers)
    # The model and streaming are in the URL; nothing of Anthropic's request is copied.
    assert received.json() == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}],
                               "generationConfig": {"maxOutputTokens": 16}}


def test_a_bearer_token_does_not_reach_gemini(gateway, server):
    """Claude Code logged in with OAuth sends `Authorization: Bearer`; Gemini gets only its key."""
    sdk = anthropic.Anthropic(base_url=gateway.url, auth_token="sk-ant-oat01-client-oauth", max_retries=0)
    sdk.messages.create(model="gemini-2.5-flash", max_tokens=16, messages=HI)
    received = only(server)
    assert "authorization" not in received.headers and "sk-ant-oat01" not in json.dumps(received.headers)
    assert received.headers["x-goog-api-key"] == GEMINI_KEY


def test_a_whole_conversation(gateway, server):
    """System blocks, consecutive user messages merged, tool calls answered by
    functionResponses named after their calls (found through the tool_use id), an error
    result, images and a PDF inline, and every generationConfig field."""
    body = sent(gateway, server, model="gemini-2.5-flash", max_tokens=1024, stop_sequences=["END", "STOP", "###", "---", "</a>", "sixth is dropped"],
                thinking={"type": "enabled", "budget_tokens": 2048},
                extra_body={"temperature": 0.5, "top_p": 0.9, "top_k": 40},  # SDK 2.x has no such arguments
                tool_choice={"type": "tool", "name": "Read"},
                tools=[{"name": "Bash", "description": "Run a command",
                        "input_schema": {"type": "object", "properties": {"command": {"type": "string"}},
                                         "required": ["command"], "additionalProperties": False}},
                       {"name": "Read", "input_schema": {"type": "object", "properties": {
                           "path": {"type": "string"}, "limit": {"type": "integer", "exclusiveMinimum": 0}}}}],
                system=[{"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}},
                        {"type": "text", "text": "Answer in English."}],
                messages=[
        {"role": "user", "content": "List the files."},
        {"role": "user", "content": [{"type": "text", "text": "Then read one.", "cache_control": {"type": "ephemeral"}}]},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Listing."},
            {"type": "tool_use", "id": "toolu_01", "name": "Bash", "input": {"command": "ls"}}]},
        {"role": "user", "content": [
            {"type": "text", "text": "(ran it)"},
            {"type": "tool_result", "tool_use_id": "toolu_01", "content": "a.txt\nb.txt"}]},
        {"role": "assistant", "content": [
            {"type": "tool_use", "id": "toolu_02", "name": "Read", "input": {"path": "a.txt"}},
            {"type": "tool_use", "id": "toolu_03", "name": "Read", "input": {"path": "missing.txt", "limit": 2}}]},
        {"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "toolu_03", "content": "no such file", "is_error": True},
            {"type": "tool_result", "tool_use_id": "toolu_02",
             "content": [{"type": "text", "text": "alpha"}, {"type": "text", "text": "beta"}]}]},
        {"role": "user", "content": [
            {"type": "text", "text": "Compare these."},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG}},
            {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": PDF}}]},
    ])  # fmt: skip
    assert body == {
        "systemInstruction": {"parts": [{"text": "You are terse."}, {"text": "Answer in English."}]},
        "contents": [
            {"role": "user", "parts": [{"text": "List the files."}, {"text": "Then read one."}]},
            {"role": "model", "parts": [{"text": "Listing."}, {"functionCall": {"name": "Bash", "args": {"command": "ls"}}}]},
            {"role": "user", "parts": [
                {"functionResponse": {"name": "Bash", "response": {"output": "a.txt\nb.txt"}}}, {"text": "(ran it)"}]},
            {"role": "model", "parts": [
                {"functionCall": {"name": "Read", "args": {"path": "a.txt"}}},
                {"functionCall": {"name": "Read", "args": {"path": "missing.txt", "limit": 2}}}]},
            {"role": "user", "parts": [  # in call order, whatever order the results came in
                {"functionResponse": {"name": "Read", "response": {"output": "alpha\nbeta"}}},
                {"functionResponse": {"name": "Read", "response": {"error": "no such file"}}},
                {"text": "Compare these."},
                {"inlineData": {"mimeType": "image/png", "data": PNG}},
                {"inlineData": {"mimeType": "application/pdf", "data": PDF}}]},
        ],
        "tools": [{"functionDeclarations": [
            {"name": "Bash", "description": "Run a command",
             "parameters": {"type": "object", "properties": {"command": {"type": "string"}}, "required": ["command"]}},
            {"name": "Read", "parameters": {"type": "object", "properties": {
                "path": {"type": "string"}, "limit": {"type": "integer", "minimum": 1}}}},
        ]}],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["Read"]}},
        "generationConfig": {"maxOutputTokens": 1024, "temperature": 0.5, "topP": 0.9, "topK": 40,
                             "stopSequences": ["END", "STOP", "###", "---", "</a>"],
                             "thinkingConfig": {"thinkingBudget": 2048, "includeThoughts": True}},
    }


@pytest.mark.parametrize(("choice", "config"), [
    ({"type": "auto"}, {"functionCallingConfig": {"mode": "AUTO"}}),
    ({"type": "any"}, {"functionCallingConfig": {"mode": "ANY"}}),
    ({"type": "none"}, {"functionCallingConfig": {"mode": "NONE"}}),
])  # fmt: skip
def test_tool_choice(gateway, server, choice, config):
    tools = [{"name": "Bash", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}]
    assert sent(gateway, server, model="gemini-2.5-flash", messages=HI, tools=tools, tool_choice=choice)["toolConfig"] == config


def schema_faults(node: Any, where: str = "parameters") -> list[str]:
    """What Gemini would reject in a function's parameters schema."""
    if not isinstance(node, dict):
        return [f"{where}: not an object"]
    faults = [f"{where}.{key}: not a Gemini Schema field" for key in node if key not in SCHEMA_FIELDS]
    if "type" not in node and "anyOf" not in node:
        faults.append(f"{where}: neither type nor anyOf")
    if "enum" in node and node.get("type") != "string":
        faults.append(f"{where}: enum on type {node.get('type')}")
    if "properties" in node:
        if node.get("type") != "object" or not node["properties"]:
            faults.append(f"{where}: properties on {node.get('type')}, or none")
        faults += [f"{where}.required: {name} is no property" for name in node.get("required", ())
                   if name not in node["properties"]]  # fmt: skip
        for name, inner in node["properties"].items():
            faults += schema_faults(inner, f"{where}.{name}")
    if "items" in node:
        faults += schema_faults(node["items"], f"{where}.items")
    for i, inner in enumerate(node.get("anyOf", ())):
        faults += schema_faults(inner, f"{where}.anyOf[{i}]")
    return faults


def test_claude_code_tool_schemas_are_cleaned(gateway, server):
    """Claude Code's real tools: each goes up as the cleaner makes it, and nothing in
    any of them is a field Gemini rejects ($schema, additionalProperties, const, ...)."""
    tools = [{"name": name, "description": f"The {name} tool", "input_schema": spec} for name, spec in TOOL_SCHEMAS.items()]
    body = sent(gateway, server, model="gemini-2.5-flash", messages=HI, tools=tools)
    declarations = body["tools"][0]["functionDeclarations"]
    assert [d["name"] for d in declarations] == list(TOOL_SCHEMAS)
    cleaned = {t["name"]: schema.parameters(t["input_schema"]) for t in tools}
    assert [name for name, parameters in cleaned.items() if parameters is None] == ["CronList", "TaskList"]  # they take no input
    assert declarations == [{"name": name, "description": f"The {name} tool", **({"parameters": p} if p else {})}
                            for name, p in cleaned.items()]  # fmt: skip
    faults = [fault for d in declarations if "parameters" in d for fault in schema_faults(d["parameters"], d["name"])]
    assert faults == []
    bash = next(d for d in declarations if d["name"] == "Bash")["parameters"]
    assert bash["required"] == ["command"] and bash["properties"]["command"]["type"] == "string"
    assert "$schema" not in json.dumps(body) and "additionalProperties" not in json.dumps(body)


# -- NAME(EFFORT) -------------------------------------------------------------------


@pytest.mark.parametrize(("model", "path", "thinking"), [
    ("gemini-3-pro-preview(low)", "gemini-3-pro-preview", {"thinkingLevel": "low", "includeThoughts": True}),
    ("deep-think", "gemini-3-pro-preview", {"thinkingLevel": "low", "includeThoughts": True}),  # the route's model
    ("gemini-2.5-flash(8192)", "gemini-2.5-flash", {"thinkingBudget": 8192, "includeThoughts": True}),
    ("gemini-2.5-flash(none)", "gemini-2.5-flash", {"thinkingBudget": 0, "includeThoughts": False}),
])  # fmt: skip
def test_an_effort_in_the_model_name_overrides_the_clients_thinking(gateway, server, model, path, thinking):
    """A profile slot (sent with its profile) or a route model `NAME(EFFORT)`: NAME goes
    in the path, the effort replaces the thinking budget the client asked for, and the
    client sees the name it asked for."""
    answer = client(gateway, **{"x-modelmux-profile": "gemini"}).messages.create(
        model=model, max_tokens=32000, messages=HI, thinking={"type": "enabled", "budget_tokens": 30000}, timeout=30)
    assert answer.model == model
    received = only(server)
    assert received.path == f"/v1beta/models/{path}:generateContent"
    assert received.json()["generationConfig"] == {"maxOutputTokens": 32000, "thinkingConfig": thinking}


def test_without_an_effort_the_clients_thinking_applies(gateway, server):
    body = sent(gateway, server, model="gemini-3-pro-preview", messages=HI, max_tokens=32000,
                thinking={"type": "enabled", "budget_tokens": 30000})
    assert body["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "high", "includeThoughts": True}


def test_a_client_asking_an_effort_the_model_does_not_take_gets_a_400(gateway, server):
    with pytest.raises(anthropic.BadRequestError) as raised:
        client(gateway).messages.create(model="gemini-2.0-flash(high)", max_tokens=16, messages=HI)
    message = raised.value.body["error"]["message"]
    assert "gemini-2.0-flash(high)" in message and "does not think" in message
    assert server.received == []


@pytest.mark.parametrize(("where", "model", "why"), [
    ("route", "gemini-3-pro-preview(none)", "gemini-3-pro-preview cannot turn thinking off; its lowest level is low"),
    ("route", "gemini-2.5-pro(0)", "gemini-2.5-pro cannot turn thinking off"),
    ("route", "gemini-2.0-flash(high)", "gemini-2.0-flash does not think"),
    ("slot", "gemini-3-pro-preview(medium)", "gemini-3-pro-preview takes thinking levels low, high, not medium"),
    ("slot", "gemini-2.5-flash(30000)", "gemini-2.5-flash takes a thinking budget of 0 to 24576"),
])  # fmt: skip
def test_a_config_with_an_effort_the_model_does_not_take_fails_to_load(tmp_path, where, model, why):
    text = routes_yaml("http://127.0.0.1:9")
    if where == "route":
        text = text.replace('model: "gemini-3-pro-preview(low)"', f'model: "{model}"')
    else:
        text = text.replace('opus: "gemini-3-pro-preview(low)"', f'opus: "{model}"')
    assert model in text
    path = tmp_path / "routes.yaml"
    path.write_text(text)
    with pytest.raises(config.ConfigError) as raised:
        config.load(path, {})
    message = str(raised.value)
    assert model in message and why in message and "'google' (gemini)" in message, message
