"""Every translation holds to Anthropic's Messages API as its specification says.

llm-comply (a third-party checker, `--format anthropic`) runs against the gateway in
front of a fake that answers what it is asked in Chat Completions, Responses or
Gemini, on each send path (mitmproxy's own, the failover relay), and against the
Codex backend's stream put together into a whole answer. Every one of its tests must
pass, without a warning. It validates whole messages against Anthropic's OpenAPI
specification (the copy it bundles: it fetches nothing unless told `update-spec`),
but not streamed events: those are held to the same specification here, with the
exact usage each upstream's counts make."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from answering_upstream import ARGUMENTS, CACHED, CALL_ID, OUTPUT, PROMPT, REASONING, TEXT, THOUGHTS, answering
from both_paths import ENV, PATHS
from gateway import Gateway
from openai_upstream import CLIENT_KEY, server  # noqa: F401 (server: a fixture)
from sse_checks import conforms, events, validate
from upstream import Upstream

from modelmux.oauth import tokens
from modelmux.oauth.tokens import Token

LLM_COMPLY = Path(sys.executable).parent / "llm-comply"
# llm-comply's tests for --format anthropic (0.5.0). It runs its thinking test only for
# a model named like Claude's, so every route's name starts with one.
CHECKS = ["anth-basic-response", "anth-system-prompt", "anth-multi-turn", "anth-tool-calling",
          "anth-streaming-response", "anth-streaming-usage", "anth-image-input", "anth-thinking-display",
          "anth-error-handling"]  # fmt: skip
# The one warning expected: a request without max_tokens, which Anthropic refuses, is
# sent on (the upstream's own limit applies). A leniency about requests, not answers.
LENIENT = {"anth-error-handling": ["invalid request returned a successful response instead of an error "
                                   "(server may add default max_tokens)"]}
MODEL = "claude-sonnet-4-5"
# protocol, base path, and an upstream model that reasons when the client asks it to think
TRANSLATIONS = {"chat": ("openai-chat", "/v1", "gpt-5-mini"), "resp": ("openai-responses", "/v1", "gpt-5.3-codex"),
                "gem": ("gemini", "/v1beta", "gemini-2.5-flash")}  # fmt: skip
ROUTES = [f"{short}-{path}" for short in TRANSLATIONS for path in PATHS]
WEATHER = {"name": "get_weather", "description": "The weather in a city.",
           "input_schema": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}


def routes_yaml(url: str, codex_token: Path) -> str:
    """A provider per translation and send path (one key: mitmproxy sends; two: the
    relay does), the keys of both_paths; and a Codex login."""
    def keys(short: str, path: str) -> str:
        labels = ["solo"] if path == "solo" else ["a", "b"]
        return ", ".join(f"{{label: {label}, key: '${{{short.upper()}_{label.upper()}}}'}}" for label in labels)

    providers = "".join(
        f"  {short}-{path}:\n    protocol: {protocol}\n    base_url: \"{url}{base}\"\n    credentials: [{keys(short, path)}]\n"
        for short, (protocol, base, _) in TRANSLATIONS.items() for path in PATHS)
    routes = "".join(f"  - {{match: \"{MODEL}-{short}-{path}\", provider: {short}-{path}, model: {model}}}\n"
                     for short, (_, _, model) in TRANSLATIONS.items() for path in PATHS)
    return (f"providers:\n{providers}  codex:\n    protocol: openai-responses\n    base_url: \"https://api.openai.com/v1\"\n"
            f"    credentials: [{{label: chatgpt, oauth: {codex_token}}}]\n"
            f"routes:\n{routes}  - {{match: \"{MODEL}-codex\", provider: codex, model: gpt-5.3-codex}}\ndefault: null\n")


@pytest.fixture(scope="module")
def gateway(server: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    directory = tmp_path_factory.mktemp("compliance")
    codex_token = directory / "chatgpt.json"
    tokens.write(codex_token, Token(kind="codex", access_token="at-chatgpt-dddddddddddd", refresh_token="rt-chatgpt-eeee",
                                    expires_at=time.time() + 3600, email="chatgpt@example.com",
                                    token_url=f"{server.url}/token", account_id="acct-1234",
                                    base_url=f"{server.url}/backend-api/codex"))
    server.reply = answering
    with Gateway(directory, routes_yaml(server.url, codex_token), ENV) as gw:
        yield gw


def comply(gateway: Gateway, model: str) -> dict[str, dict[str, Any]]:
    """llm-comply's results by test id, as its --json output gives them."""
    run = subprocess.run([str(LLM_COMPLY), "--format", "anthropic", "-u", f"{gateway.url}/v1", "-k", CLIENT_KEY,
                          "-m", model, "--json", "--timeout", "30"], capture_output=True, text=True, timeout=120)
    assert run.stdout, run.stderr
    return {result.pop("id"): result for result in json.loads(run.stdout)["results"]}


@pytest.mark.parametrize("route", [*ROUTES, "codex"])
def test_llm_comply_passes_every_test(gateway, route):
    results = comply(gateway, f"{MODEL}-{route}")
    assert {name: (r["status"], r.get("errors", []), r.get("warnings", [])) for name, r in results.items()} == {
        name: ("passed", [], LENIENT.get(name, [])) for name in CHECKS}


def post(gateway: Gateway, model: str, stream: bool, **body: Any) -> httpx.Response:
    request = {"model": model, "max_tokens": 4096, "stream": stream,
               "messages": [{"role": "user", "content": "What is the weather in San Francisco?"}], **body}
    return httpx.post(f"{gateway.url}/v1/messages", json=request, timeout=30, headers={"x-api-key": CLIENT_KEY})


ASKS = {
    "text": {},
    "tool": {"tools": [WEATHER], "tool_choice": {"type": "any"}},
    "thinking": {"thinking": {"type": "enabled", "budget_tokens": 2048}},
}


def usage(short: str, thought: bool, streamed: bool) -> dict[str, Any]:
    """What the fake's counts make: input without the cached tokens; the reasoning
    tokens apart, where the upstream says them (Chat and Responses always do, Gemini when
    it thought); the tier (OpenAI's "default") only in a whole answer, as message_delta
    has no place for it and message_start comes before the upstream says it."""
    said = thought or short != "gem"
    return {"input_tokens": PROMPT - CACHED, "output_tokens": OUTPUT, "cache_read_input_tokens": CACHED,
            "cache_creation_input_tokens": 0, "cache_creation": None, "server_tool_use": None,
            "service_tier": "standard" if short != "gem" and not streamed else None, "inference_geo": None,
            "output_tokens_details": {"thinking_tokens": THOUGHTS if thought else 0} if said else None}


@pytest.mark.parametrize("ask", ASKS)
@pytest.mark.parametrize("route", ROUTES)
def test_every_event_of_a_stream_holds_to_the_specification(gateway, route, ask):
    """Each event against its schema, the grammar, and the message a client puts
    together: the whole answer's, but for what only a whole answer can say."""
    short = route.split("-")[0]
    sequence = events([post(gateway, f"{MODEL}-{route}", True, **ASKS[ask]).content])
    validate(sequence)  # conforms() every event, too
    whole = post(gateway, f"{MODEL}-{route}", False, **ASKS[ask]).json()
    conforms(whole, "Message")
    assert whole["usage"] == usage(short, ask == "thinking", streamed=False)
    text = {"type": "text", "text": TEXT, "citations": None}
    blocks = {"text": [text], "thinking": [{"type": "thinking", "thinking": REASONING, "signature": "…"}, text],
              "tool": [{"type": "tool_use", "id": ("gemini_" if short == "gem" else "") + CALL_ID, "name": "get_weather",
                        "input": ARGUMENTS,
                        "caller": {"type": "direct"}}]}  # fmt: skip
    assert [{**b, "signature": "…"} if b["type"] == "thinking" else b for b in whole["content"]] == blocks[ask]
    started = [e["content_block"] for e in sequence if e["type"] == "content_block_start"]
    assert [set(block) for block in started] == [set(block) for block in whole["content"]]
    (delta,) = [e for e in sequence if e["type"] == "message_delta"]
    assert delta["delta"] == {"stop_reason": whole["stop_reason"], "stop_sequence": None, "stop_details": None,
                              "container": None}
    expected = usage(short, ask == "thinking", streamed=True)
    assert delta["usage"] == {k: expected[k] for k in ("input_tokens", "output_tokens", "cache_creation_input_tokens",
                                                        "cache_read_input_tokens", "output_tokens_details",
                                                        "server_tool_use")}
