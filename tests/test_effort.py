"""`NAME(EFFORT)` model names: parsing, the config-load checks per provider, the routing
decision, and what each protocol's upstream request gets."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from modelmux import routing
from modelmux.attempt import exchange
from modelmux.config import loader
from modelmux.config.loader import ConfigError
from modelmux.errors import GatewayError
from modelmux.translate import effort
from modelmux.translate.registry import PROTOCOLS

PATH = Path("/etc/modelmux/routes.yaml")
PROVIDERS = """
providers:
  anthropic: {protocol: anthropic, base_url: "https://api.anthropic.com", auth: passthrough}
  codex: {protocol: openai-responses, base_url: "https://api.openai.com/v1", credentials: [{label: a, key: sk-a}]}
  chat: {protocol: openai-chat, base_url: "https://vendor.example/v1", credentials: [{label: a, key: sk-c}]}
  google: {protocol: gemini, base_url: "https://generativelanguage.googleapis.com/v1beta",
           credentials: [{label: a, key: AIzaSyFakeGoogleKey0001}]}
"""
ROUTES = PROVIDERS + """
routes:
  - {match: claude-opus-4-5, provider: codex, model: "gpt-5.3-codex(xhigh)", fallback: [{provider: google, model: "gemini-3-pro-preview(low)"}]}
  - {match: claude-haiku-4-5, provider: chat, model: deepseek-reasoner}
  - {match: "gpt-*", provider: codex}
  - {match: "gemini-*", provider: google}
  - {match: "claude-*", provider: anthropic}
profiles:
  codex:
    slots: {opus: "gpt-5.3-codex(xhigh)", sonnet: "gpt-5.3-codex(high)", haiku: gpt-5.3-codex-spark}
"""
BODY = {"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": "hi"}],
        "thinking": {"type": "enabled", "budget_tokens": 2000}}  # fmt: skip


def parse(text: str) -> loader.Config:
    return loader.parse(yaml.safe_load(text), PATH, {})


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as raised:
        parse(text)
    return raised.value.problems


CONFIG = parse(ROUTES)


@pytest.mark.parametrize("model, expected", [
    ("gpt-5.3-codex(xhigh)", ("gpt-5.3-codex", "xhigh")),
    ("gemini-2.5-flash(8192)", ("gemini-2.5-flash", 8192)),
    ("gpt-5(High)", ("gpt-5", "high")),
    ("gpt-5.3-codex-spark", ("gpt-5.3-codex-spark", None)),
    ("odd(name)", ("odd(name)", None)),  # a client may send any name: no effort, all of it the name
    ("(high)", ("(high)", None)),
])  # fmt: skip
def test_a_model_name_with_an_effort(model, expected):
    assert effort.of(model) == expected


def test_parse_names_what_it_accepts():
    assert [effort.parse(e) for e in ("none", " High ", "8192")] == ["none", "high", 8192]
    with pytest.raises(ValueError, match="^'huge' is not a reasoning effort; write one of none, minimal, low, "
                                         "medium, high, xhigh or a token budget such as 8192$"):
        effort.parse("huge")


@pytest.mark.parametrize("protocol, model, wanted, problem", [
    ("openai-responses", "gpt-5.3-codex", "xhigh", None),
    ("openai-responses", "gpt-5.1-codex-max", "xhigh", None),
    ("openai-responses", "gpt-5.1-codex", "xhigh", "gpt-5.1-codex takes reasoning effort none, minimal, low, medium, high, not xhigh"),
    ("openai-responses", "gpt-5", "none", "gpt-5 takes reasoning effort minimal, low, medium, high, not none"),
    ("openai-responses", "gpt-5.1", "minimal", "gpt-5.1 takes reasoning effort none, low, medium, high, not minimal"),
    ("openai-chat", "gpt-5-pro", "low", "gpt-5-pro takes reasoning effort high, not low"),
    ("openai-chat", "o3", "minimal", "o3 takes reasoning effort low, medium, high, not minimal"),
    ("openai-chat", "gpt-4.1", "low", "gpt-4.1 is not a reasoning model and takes no reasoning effort; remove the suffix"),
    ("openai-chat", "deepseek-reasoner", "xhigh", None),  # nothing known against it: the vendor decides
    ("openai-chat", "gpt-5", 8192, "openai-chat takes a named effort (none, minimal, low, medium, high, xhigh), not a token budget"),
    ("gemini", "gemini-3-pro-preview", "low", None),
    ("gemini", "gemini-3-pro-preview", "medium", "gemini-3-pro-preview takes thinking levels low, high, not medium"),
    ("gemini", "gemini-3-pro-preview", "none", "gemini-3-pro-preview cannot turn thinking off; its lowest level is low"),
    ("gemini", "gemini-3-flash-preview", "none", None),  # the lowest level, minimal
    ("gemini", "gemini-3-flash-preview", "xhigh", "gemini-3-flash-preview takes thinking levels minimal, low, medium, high, not xhigh"),
    ("gemini", "gemini-3-pro-preview", 8192, None),
    ("gemini", "gemini-2.5-pro", 0, "gemini-2.5-pro cannot turn thinking off; write a budget of 128 to 32768 or low/medium/high"),
    ("gemini", "gemini-2.5-pro", "none", "gemini-2.5-pro cannot turn thinking off; write a budget of 128 to 32768 or low/medium/high"),
    ("gemini", "gemini-2.5-flash", 30000, "gemini-2.5-flash takes a thinking budget of 0 to 24576"),
    ("gemini", "gemini-2.5-flash-lite", 100, "gemini-2.5-flash-lite takes a thinking budget of 512 to 24576 (or 0: off)"),
    ("gemini", "gemini-2.5-flash-lite", 0, None),
    ("gemini", "gemini-2.5-flash", "xhigh", None),  # the most it thinks
    ("gemini", "gemini-2.0-flash", "high", "gemini-2.0-flash does not think (Gemini 2.0 and earlier and Gemma take no thinkingConfig); remove the suffix"),
    ("anthropic", "claude-opus-4-5", "high", "an anthropic provider gets the request as the client sent it, thinking "
                                             "settings included; remove the suffix (Claude Code sets thinking itself)"),
])  # fmt: skip
def test_what_each_provider_takes(protocol, model, wanted, problem):
    assert PROTOCOLS[protocol].effort_problem(model, wanted) == problem


def test_the_bundled_efforts_load():
    assert CONFIG.profiles["codex"].slots["opus"] == "gpt-5.3-codex(xhigh)"


def test_unsupported_efforts_fail_the_load_naming_model_and_key():
    text = PROVIDERS + """
routes:
  - {match: a, provider: codex, model: "gpt-5.1(xhigh)"}
  - {match: b, provider: google, model: "gemini-2.5-pro(0)", fallback: [{provider: codex, model: "gpt-5(8192)"}]}
  - {match: c, provider: chat, model: "gpt-5(extreme)"}
  - {match: "gemini-*", provider: google}
  - {match: "claude-*", provider: anthropic}
aliases: {smart: "gemini-3-pro-preview(none)"}
profiles:
  p: {slots: {opus: "claude-opus-4-5(high)", haiku: smart}}
"""
    assert problems(text) == [
        "routes[0].model: gpt-5.1(xhigh) asks provider 'codex' (openai-responses) for reasoning effort xhigh, "
        "but gpt-5.1 takes reasoning effort none, low, medium, high, not xhigh",
        "routes[1].model: gemini-2.5-pro(0) asks provider 'google' (gemini) for reasoning effort 0, but "
        "gemini-2.5-pro cannot turn thinking off; write a budget of 128 to 32768 or low/medium/high",
        "routes[1].fallback[0].model: gpt-5(8192) asks provider 'codex' (openai-responses) for reasoning effort "
        "8192, but openai-responses takes a named effort (none, minimal, low, medium, high, xhigh), not a token budget",
        "routes[2].model: gpt-5(extreme): 'extreme' is not a reasoning effort; write one of none, minimal, low, "
        "medium, high, xhigh or a token budget such as 8192",
        "aliases.smart: gemini-3-pro-preview(none) asks provider 'google' (gemini) for reasoning effort none, but "
        "gemini-3-pro-preview cannot turn thinking off; its lowest level is low",
        "profiles.p.slots.opus: claude-opus-4-5(high) asks provider 'anthropic' (anthropic) for reasoning effort "
        "high, but an anthropic provider gets the request as the client sent it, thinking settings included; "
        "remove the suffix (Claude Code sets thinking itself)",
        "profiles.p.slots.haiku: gemini-3-pro-preview(none) asks provider 'google' (gemini) for reasoning effort "
        "none, but gemini-3-pro-preview cannot turn thinking off; its lowest level is low",
    ]


def test_a_provider_model_list_entry_is_checked_and_routable():
    text = PROVIDERS.replace("credentials: [{label: a, key: sk-a}]}", "credentials: [{label: a, key: sk-a}], "
                             "models: ['gpt-5.3-codex(xhigh)', 'gpt-5(none)']}")
    assert problems(text) == [
        "providers.codex.models[1]: gpt-5(none) asks provider 'codex' (openai-responses) for reasoning effort none, "
        "but gpt-5 takes reasoning effort minimal, low, medium, high, not none"]
    loaded = parse(text.replace(", 'gpt-5(none)'", ""))
    decision = routing.route(loaded, "gpt-5.3-codex(xhigh)")
    assert (decision.route.source, decision.upstream_model, decision.effort) == (
        "providers.codex.models", "gpt-5.3-codex", "xhigh")
    assert routing.catalog_entry(loaded, "gpt-5.3-codex(xhigh)")["display_name"] == "gpt-5.3-codex(xhigh)"
    assert routing.catalog_entry(CONFIG, "claude-opus-4-5")["display_name"] == (
        "claude-opus-4-5 → codex/gpt-5.3-codex(xhigh)")


@pytest.mark.parametrize("model, provider, upstream, wanted", [
    ("gpt-5.3-codex(xhigh)", "codex", "gpt-5.3-codex", "xhigh"),  # the name matches gpt-*; the suffix is the effort
    ("gpt-5.3-codex-spark", "codex", "gpt-5.3-codex-spark", None),
    ("claude-opus-4-5", "codex", "gpt-5.3-codex", "xhigh"),  # the route's model carries it
    ("gemini-2.5-flash(8192)", "google", "gemini-2.5-flash", 8192),
    ("claude-haiku-4-5", "chat", "deepseek-reasoner", None),
])  # fmt: skip
def test_routing_splits_the_effort_off(model, provider, upstream, wanted):
    decision = routing.route(CONFIG, model)
    assert (decision.provider.name, decision.upstream_model, decision.effort) == (provider, upstream, wanted)
    assert decision.requested == model


def test_a_fallback_takes_its_own_models_effort():
    decision = routing.route(CONFIG, "claude-opus-4-5")
    fallback = routing.candidates(CONFIG, decision)[1]
    assert (fallback.provider.name, fallback.upstream_model, fallback.effort) == (
        "google", "gemini-3-pro-preview", "low")


def sent(model: str, body: dict | None = None) -> tuple[exchange.Outgoing, dict]:
    decision = routing.route(CONFIG, model)
    body = {**(body or BODY), "model": model}
    outgoing = exchange.prepare(decision, body, json.dumps(body).encode(), "/v1/messages", "", {},
                                decision.provider.credentials[0] if decision.provider.credentials else None)
    return outgoing, json.loads(outgoing.content)


def test_each_protocol_gets_the_effort_in_its_own_form():
    outgoing, responses = sent("gpt-5.3-codex(xhigh)")  # the client asked for a 2000-token budget: low
    assert (outgoing.url, responses["model"], responses["reasoning"]) == (
        "https://api.openai.com/v1/responses", "gpt-5.3-codex", {"effort": "xhigh", "summary": "auto"})
    assert outgoing.translation["context"]["model"] == "gpt-5.3-codex(xhigh)"  # the client sees what it asked for
    _, plain = sent("gpt-5.3-codex-spark")
    assert plain["reasoning"] == {"effort": "low", "summary": "auto"}  # the client's own thinking
    outgoing, gemini = sent("gemini-2.5-flash(8192)")
    assert outgoing.url == "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    assert gemini["generationConfig"]["thinkingConfig"] == {"thinkingBudget": 8192, "includeThoughts": True}
    outgoing, gemini = sent("gemini-3-pro-preview(low)", {**BODY, "stream": True})
    assert outgoing.url == ("https://generativelanguage.googleapis.com/v1beta/models/gemini-3-pro-preview"
                            ":streamGenerateContent?alt=sse")
    assert gemini["generationConfig"]["thinkingConfig"] == {"thinkingLevel": "low", "includeThoughts": True}
    chat_config = parse(ROUTES.replace("model: deepseek-reasoner}", "model: 'deepseek-reasoner(high)'}"))
    decision = routing.route(chat_config, "claude-haiku-4-5")
    outgoing = exchange.prepare(decision, BODY, b"", "/v1/messages", "", {}, decision.provider.credentials[0])
    assert json.loads(outgoing.content)["reasoning_effort"] == "high"  # without reasoning_effort: true in the shape


def test_an_effort_a_client_names_that_its_provider_cannot_take_is_a_400():
    with pytest.raises(GatewayError) as raised:
        sent("gpt-5(8192)")
    assert (raised.value.status, raised.value.message) == (
        400, "model 'gpt-5(8192)' asks provider 'codex' for reasoning effort 8192, but openai-responses takes a "
             "named effort (none, minimal, low, medium, high, xhigh), not a token budget")


def test_upstream_url_joins_base_path_endpoint_and_queries():
    assert exchange.upstream_url("https://h/v1beta", "/models/m:streamGenerateContent?alt=sse", {"key": "x y"}) == (
        "https://h/v1beta/models/m:streamGenerateContent?alt=sse&key=x+y")
    assert exchange.upstream_url("https://h", "/responses", {}) == "https://h/responses"


def test_thinking_signed_for_a_translated_upstream_never_reaches_anthropic():
    anthropic_signed = {"type": "thinking", "thinking": "mine", "signature": "RXVnZW4="}
    history = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "", "signature": "gemini-next:c2ln"},
            {"type": "thinking", "thinking": "s", "signature": "modelmux:openai-responses:v1:e30="},
            {"type": "thinking", "thinking": "chat", "signature": ""},
            {"type": "text", "text": "hello"}]},
        {"role": "assistant", "content": [anthropic_signed]},
        {"role": "user", "content": "again"},
    ]  # fmt: skip
    body = {**BODY, "model": "claude-sonnet-4-5", "messages": history}
    raw = json.dumps(body, separators=(",", ":")).encode()
    decision = routing.route(CONFIG, "claude-sonnet-4-5")
    sent_body = json.loads(exchange.prepare(decision, body, raw, "/v1/messages", "", {}, None).content)
    assert sent_body["messages"] == [
        history[0], {"role": "assistant", "content": [{"type": "text", "text": "hello"}]}, history[2], history[3]]
    clean = {**body, "messages": [history[0], history[2]]}
    clean_raw = json.dumps(clean).encode()
    assert exchange.prepare(decision, clean, clean_raw, "/v1/messages", "", {}, None).content is clean_raw


def test_gemini_errors_are_read_for_their_status_name():
    google = CONFIG.providers["google"]
    text = json.dumps({"error": {"code": 429, "message": "Quota exceeded for AIzaSyFakeGoogleKey0001", "status": "RESOURCE_EXHAUSTED",
                                 "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "36.2s"}]}})
    status, body, headers = exchange.upstream_failure(google, 429, "Too Many Requests", text)
    assert (status, headers) == (429, {"retry-after": "37"})
    assert json.loads(body) == {"type": "error", "error": {"type": "rate_limit_error", "message":
                                "provider 'google' answered HTTP 429: Quota exceeded for a…0001 (RESOURCE_EXHAUSTED)"}}
    invalid = json.dumps({"error": {"code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT",
                                    "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]}})
    assert exchange.upstream_failure(google, 400, "Bad Request", invalid)[0] == 401
    codex = CONFIG.providers["codex"]
    status, body, headers = exchange.upstream_failure(codex, 400, "Bad Request", '{"error": {"message": "bad effort"}}')
    assert (status, json.loads(body)["error"]["message"], headers) == (
        400, "provider 'codex' answered HTTP 400 Bad Request: bad effort", {})


@pytest.mark.parametrize("model, takes", [
    ("o1", True), ("o3", True), ("o3-mini", True), ("o4-mini", True), ("o3-pro", True), ("openai/o4-mini", True),
    ("o1-mini", False), ("o1-preview", False),  # before reasoning_effort existed
    ("gpt-5", True), ("gpt-5-mini", True), ("gpt-5.1", True), ("gpt-5.3-codex", True), ("openai/gpt-5.2", True),
    ("gpt-5-chat-latest", False), ("gpt-5.1-chat-latest", False),  # none at all / medium only
    ("gpt-4o", False), ("gpt-4.1-mini", False), ("chatgpt-4o-latest", False), ("gpt-test", False),
    ("gpt-oss-120b", True), ("openai/gpt-oss-20b", True), ("gpt-oss:20b", True),
    ("gemini-2.5-flash", True), ("gemini-3-pro-preview", True), ("gemini-flash-latest", True),
    ("gemini-2.0-flash", False), ("gemma-3-27b-it", False),
    ("deepseek-reasoner", False), ("deepseek-chat", False), ("grok-4", False), ("qwen3-coder", False), ("my-deployment", False),
])  # fmt: skip
def test_which_models_take_a_reasoning_effort_on_chat_completions(model, takes):
    assert effort.reasons(model) is takes
