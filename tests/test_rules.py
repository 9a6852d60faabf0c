"""Routing rules beyond the model name: thinking, prompt size, tools, profile and
headers; explicit PROVIDER,MODEL names; and the rule that matched, in the dashboard."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
import yaml
from gateway import Gateway
from mitmproxy import io
from upstream import Upstream

from modelmux import routing
from modelmux.config import loader
from modelmux.config.loader import ConfigError
from modelmux.errors import GatewayError

ROUTES = """
providers:
  anthropic: {protocol: anthropic, base_url: "https://api.anthropic.com", auth: passthrough}
  cheap: {protocol: anthropic, base_url: "https://cheap", credentials: [{label: a, key: k-cheap}], models: [glm-4.5-air]}
  reasoner: {protocol: anthropic, base_url: "https://reasoner", credentials: [{label: a, key: k-reason}]}
  longctx: {protocol: anthropic, base_url: "https://long", credentials: [{label: a, key: k-long}]}
  searcher: {protocol: anthropic, base_url: "https://search", credentials: [{label: a, key: k-search}]}
  pinned: {protocol: anthropic, base_url: "https://pinned", credentials: [{label: a, key: k-pin}]}
routes:
  - {match: "claude-*", header: "x-project: acme", provider: pinned}
  - {match: "claude-*haiku*", provider: cheap, model: glm-4.5-air}
  - {match: "claude-*", prompt_tokens_above: 1000, provider: longctx, model: long-1m}
  - {match: "claude-*", thinking: true, provider: reasoner, model: deep-r1}
  - {match: "claude-*", tool: "web_search*", provider: searcher, model: searchy}
  - {match: "claude-*", profile: work, header: x-debug, provider: pinned, model: debug}
default: {provider: anthropic}
profiles:
  work: {slots: {opus: claude-opus-4-5}}
  locked: {slots: {opus: claude-opus-4-5}, providers: [anthropic, cheap]}
"""
CONFIG = loader.parse(yaml.safe_load(ROUTES), Path("/x/routes.yaml"), {})
HI = [{"role": "user", "content": "hi"}]


def facts(body: dict | None = None, headers: dict | None = None, profile: str | None = None) -> routing.Facts:
    return routing.Facts({"model": "m", "messages": HI, **(body or {})}, headers or {}, profile)


@pytest.mark.parametrize("model, seen, provider, upstream, rule", [
    ("claude-sonnet-4-5", facts(), "anthropic", "claude-sonnet-4-5", "default"),
    ("claude-haiku-4-5", facts({"thinking": {"type": "enabled", "budget_tokens": 2048}}), "cheap", "glm-4.5-air",
     "routes[1]"),  # first match wins: the background haiku route comes before thinking
    ("claude-sonnet-4-5", facts({"thinking": {"type": "adaptive"}}), "reasoner", "deep-r1", "routes[3] if thinking"),
    ("claude-sonnet-4-5", facts({"messages": [{"role": "user", "content": "word " * 2000}]}), "longctx", "long-1m",
     "routes[2] if prompt > 1000 tokens"),
    ("claude-sonnet-4-5", facts({"tools": [{"type": "web_search_20250305", "name": "web_search"}]}), "searcher",
     "searchy", "routes[4] if tool web_search*"),
    ("claude-sonnet-4-5", facts({"tools": [{"name": "Bash", "input_schema": {}}]}), "anthropic", "claude-sonnet-4-5",
     "default"),
    ("claude-opus-4-5", facts(headers={"x-project": "acme"}), "pinned", "claude-opus-4-5", "routes[0] if header x-project: acme"),
    ("claude-opus-4-5", facts(headers={"x-project": "other"}), "anthropic", "claude-opus-4-5", "default"),
    ("claude-opus-4-5", facts(headers={"x-debug": "1"}), "anthropic", "claude-opus-4-5", "default"),  # no profile
    ("claude-opus-4-5", facts(headers={"x-debug": "1"}, profile="work"), "pinned", "debug",
     "routes[5] if profile work, header x-debug"),
])  # fmt: skip
def test_the_first_route_whose_conditions_hold_wins(model, seen, provider, upstream, rule):
    decision = routing.route(CONFIG, model, None, seen)
    assert (decision.provider.name, decision.upstream_model, decision.route.rule) == (provider, upstream, rule)


def test_the_prompt_is_estimated_only_when_a_route_asks():
    seen = facts(headers={"x-project": "acme"})
    routing.route(CONFIG, "claude-opus-4-5", None, seen)
    assert "prompt_tokens" not in vars(seen)  # routes[0] matched before the size condition came up


def test_without_facts_only_unconditional_routes_count():
    assert routing.route(CONFIG, "claude-sonnet-4-5").route.source == "default"


def test_explicit_provider_and_model():
    decision = routing.route(CONFIG, "reasoner,deep-r1(high)")
    assert (decision.provider.name, decision.upstream_model, decision.effort, decision.route.rule) == (
        "reasoner", "deep-r1", "high", "PROVIDER,MODEL")
    assert decision.requested == "reasoner,deep-r1(high)"
    with pytest.raises(GatewayError) as raised:
        routing.route(CONFIG, "nowhere,gpt-5")
    assert (raised.value.status, raised.value.message) == (404, (
        "model 'nowhere,gpt-5' names provider 'nowhere' (PROVIDER,MODEL), but there is no such provider in "
        "routes.yaml; known: anthropic, cheap, reasoner, longctx, searcher, pinned"))
    with pytest.raises(GatewayError) as raised:
        routing.route(CONFIG, "reasoner,deep-r1", CONFIG.profiles["locked"])
    assert (raised.value.status, raised.value.message) == (403, (
        "profile 'locked' may only use providers anthropic, cheap, but model 'reasoner,deep-r1' names provider "
        "'reasoner'; add it to profiles.locked.providers"))
    assert "cheap,glm-4.5-air" in routing.model_names(CONFIG)


def test_a_condition_on_an_unknown_profile_is_a_config_error():
    text = ROUTES.replace("profile: work, header", "profile: wrok, header")
    with pytest.raises(ConfigError) as raised:
        loader.parse(yaml.safe_load(text), Path("/x/routes.yaml"), {})
    assert raised.value.problems == ["routes[5].profile: 'wrok' is not a profile; known: work, locked"]


def test_rules_in_the_running_gateway(tmp_path):
    with Upstream() as server:
        routes = f"""
providers:
  main: {{protocol: anthropic, base_url: "{server.url}/main", credentials: [{{label: m, key: sk-main-000000000001}}]}}
  deep: {{protocol: anthropic, base_url: "{server.url}/deep", credentials: [{{label: d, key: sk-deep-000000000002}}],
          models: [deep-r1]}}
routes:
  - {{match: "claude-*", thinking: true, provider: deep, model: deep-r1}}
default: {{provider: main}}
"""
        with Gateway(tmp_path, routes, {}, ["-w", str(tmp_path / "flows.mitm")]) as gateway:
            def ask(model: str, **extra) -> httpx.Response:
                body = {"model": model, "max_tokens": 2048, "messages": HI, **extra}
                return httpx.post(f"{gateway.url}/v1/messages", json=body, headers={"x-api-key": "client"}, timeout=10)

            assert ask("claude-sonnet-4-5").status_code == 200
            assert ask("claude-sonnet-4-5", thinking={"type": "enabled", "budget_tokens": 1024}).status_code == 200
            assert ask("main,some-model").status_code == 200
            assert [(r.path, json.loads(r.body)["model"]) for r in server.received] == [
                ("/main/v1/messages", "claude-sonnet-4-5"), ("/deep/v1/messages", "deep-r1"),
                ("/main/v1/messages", "some-model")]
            missing = ask("nowhere,x")
            assert missing.status_code == 404 and "names provider 'nowhere'" in missing.json()["error"]["message"]
            listed = httpx.get(f"{gateway.url}/v1/models", headers={"x-api-key": "client"}, timeout=10).json()
            assert "deep,deep-r1" in [m["id"] for m in listed["data"]]
            deadline = time.monotonic() + 5
            comments: list[str] = []
            while time.monotonic() < deadline and len(comments) < 3:
                with (tmp_path / "flows.mitm").open("rb") as file:
                    comments = [f.comment for f in io.FlowReader(file).stream()
                                if (f.metadata.get("modelmux") or {}).get("requested_model")]
                time.sleep(0.05)
    assert len(comments) == 3, comments
    assert "[routes[0] if thinking]" in comments[1]
    assert "[default]" in comments[0] and "[PROVIDER,MODEL]" in comments[2]


def test_a_name_that_routes_nowhere_gives_a_404_not_a_recursion():
    text = "providers:\n  p: {protocol: anthropic, base_url: 'https://p', credentials: [{label: a, key: k}], models: [m]}\n" \
           "aliases: {lost: nothing-serves-this}\n"
    loaded = loader.parse(yaml.safe_load(text), Path("/x/routes.yaml"), {})
    with pytest.raises(GatewayError) as raised:
        routing.route(loaded, "zzz")
    assert raised.value.message == ("model 'zzz' matches no route in routes.yaml and there is no default; "
                                    "models that exist: m, p,m")
