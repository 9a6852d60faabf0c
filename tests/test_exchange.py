"""exchange: the output cap each request's model gets from what is known of it (its
max_output, the provider's max_tokens_limit), in every protocol's own field. Pure: the
request both send paths build (exchange.prepare)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from modelmux import routing
from modelmux.attempt import exchange
from modelmux.config import loader, model_facts
from modelmux.config.model_facts import listed
from modelmux.translate import validation

ROUTES = """
providers:
  chat:
    protocol: openai-chat
    base_url: "https://api.deepseek.com"
    credentials: [{label: c, key: chat-key-1}]
    models: [{name: deepseek-chat, max_output: 8192}, deepseek-reasoner, {name: tiny, max_output: 100}]
  limited:
    protocol: openai-chat
    base_url: "https://api.deepseek.com"
    credentials: [{label: l, key: limited-key-1}]
    max_tokens_limit: 4096
    models: [{name: small-window, max_output: 16000}, {name: smaller, max_output: 2000}]
  resp: {protocol: openai-responses, base_url: "https://api.openai.com/v1", credentials: [{label: r, key: r-key}],
         models: [{name: gpt-5-mini, max_output: 8192}]}
  gem: {protocol: gemini, base_url: "https://generativelanguage.googleapis.com/v1beta",
        credentials: [{label: g, key: g-key}], models: [{name: gemini-2.0-flash, max_output: 8192}]}
  vendor: {protocol: anthropic, base_url: "https://api.z.ai/api/anthropic", credentials: [{label: v, key: v-key}],
           models: [{name: glm-4.6, max_output: 8192}, glm-4.5-air]}
  anthropic: {protocol: anthropic, base_url: "https://api.anthropic.com", auth: passthrough,
              models: [{name: claude-mine, max_output: 8192}, claude-sonnet-4-5]}
  anthropic-keys: {protocol: anthropic, base_url: "https://api.anthropic.com", credentials: [{label: k, key: sk-ant-k}],
                   models: [claude-opus-4-6]}
default: null
"""
# What model lists reported (the gateway's Discovery keeps these).
DISCOVERED = {
    "chat": {"deepseek-chat": listed(max_output=65536), "deepseek-reasoner": listed(max_output=32768)},
    "vendor": {"glm-4.5-air": listed(max_output=4000)},
    "anthropic": {"claude-sonnet-4-5": listed(max_output=1000)},
    "anthropic-keys": {"claude-opus-4-6": listed(max_output=1000)},
}
CLIENT = {"anthropic-version": "2023-06-01", "content-type": "application/json", "x-api-key": "sk-ant-client"}


def upstream_body(model: str, **body: Any) -> dict[str, Any]:
    """What the upstream of `model` receives for a request asking Claude Code's 32000."""
    cfg = loader.parse(yaml.safe_load(ROUTES), Path("/routes.yaml"), {})
    decision = routing.route(cfg, model)
    decision = replace(decision, model_facts=model_facts.facts_for(decision.provider, decision.upstream_model,
                                                                    DISCOVERED))
    request = {"model": model, "max_tokens": 32000, "messages": [{"role": "user", "content": "hi"}], **body}
    credential = decision.provider.credentials[0] if decision.provider.credentials else None
    outgoing = exchange.prepare(decision, request, json.dumps(request).encode(), "/v1/messages", "", CLIENT, credential)
    return json.loads(outgoing.content)


@pytest.mark.parametrize(("model", "field", "cap"), [
    ("deepseek-chat", "max_tokens", 8192),  # routes.yaml's max_output wins over the list's 65536
    ("deepseek-reasoner", "max_tokens", 32000),  # the list's 32768 is above what was asked
    ("tiny", "max_tokens", 100),
    ("small-window", "max_tokens", 4096),  # max_tokens_limit is smaller than max_output
    ("smaller", "max_tokens", 2000),  # max_output is smaller than max_tokens_limit
    ("gpt-5-mini", "max_output_tokens", 8192),
    ("glm-4.6", "max_tokens", 8192),  # an Anthropic-compatible vendor
    ("glm-4.5-air", "max_tokens", 4000),  # ... by what its list reported
])  # fmt: skip
def test_output_is_capped_at_the_models_maximum_in_each_protocol(model: str, field: str, cap: int):
    assert upstream_body(model)[field] == cap


def test_gemini_gets_the_cap_as_max_output_tokens():
    assert upstream_body("gemini-2.0-flash")["generationConfig"]["maxOutputTokens"] == 8192


def test_a_smaller_request_is_left_as_it_is():
    assert upstream_body("deepseek-chat", max_tokens=1000)["max_tokens"] == 1000


def test_anthropic_itself_is_capped_only_by_what_routes_yaml_says():
    """Anthropic knows its own models' limits; only the user's own fact overrides that."""
    assert upstream_body("claude-mine")["max_tokens"] == 8192
    assert upstream_body("claude-sonnet-4-5")["max_tokens"] == 32000  # passthrough, a list's fact
    assert upstream_body("claude-opus-4-6")["max_tokens"] == 32000  # Anthropic's API with a key


def test_a_thinking_budget_stays_below_the_cap():
    """Anthropic's API requires budget_tokens < max_tokens."""
    sent = upstream_body("glm-4.6", thinking={"type": "enabled", "budget_tokens": 31999})
    assert (sent["max_tokens"], sent["thinking"]) == (8192, {"type": "enabled", "budget_tokens": 8191})
    sent = upstream_body("glm-4.6", thinking={"type": "enabled", "budget_tokens": 4000})
    assert sent["thinking"]["budget_tokens"] == 4000


def test_a_request_within_every_cap_goes_as_the_client_sent_it():
    cfg = loader.parse(yaml.safe_load(ROUTES), Path("/routes.yaml"), {})
    decision = routing.route(cfg, "glm-4.6")
    decision = replace(decision, model_facts=model_facts.facts_for(decision.provider, "glm-4.6"))
    raw = b'{"model": "glm-4.6", "max_tokens": 10, "messages": [{"role": "user", "content": "hi"}]}'
    outgoing = exchange.prepare(decision, json.loads(raw), raw, "/v1/messages", "", CLIENT,
                                decision.provider.credentials[0])
    assert outgoing.content is raw


def test_a_rewritten_model_is_written_into_the_clients_bytes():
    """Writing Claude Code's 80 KB request again costs some 300 µs; its bytes with the
    model's value replaced, about 5. The upstream reads the same request."""
    cfg = loader.parse(yaml.safe_load(ROUTES), Path("/routes.yaml"), {})
    decision = routing.route(cfg, "glm-4.5-air")
    decision = replace(decision, model_facts=model_facts.facts_for(decision.provider, "glm-4.5-air"),
                       requested="opus")
    raw = b'{"model": "opus", "max_tokens": 10, "messages": [{"role": "user", "content": "caf\xc3\xa9"}]}'
    body, model_at = validation.parse_placed(raw)
    outgoing = exchange.prepare(decision, body, raw, "/v1/messages", "", CLIENT, decision.provider.credentials[0],
                                model_at)
    assert outgoing.content == raw.replace(b'"opus"', b'"glm-4.5-air"')
    # Without the place, or with a body json.dumps would send otherwise, it is written again.
    for raw, model_at in ((raw, None), (raw.replace(b"caf\xc3\xa9", b"\xed\xa0\x80"), model_at)):
        outgoing = exchange.prepare(decision, body, raw, "/v1/messages", "", CLIENT, decision.provider.credentials[0],
                                    model_at)
        assert outgoing.content == exchange.upstream_json({**body, "model": "glm-4.5-air"})
