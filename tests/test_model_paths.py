"""Model names go into an upstream's URL path only as one safe segment (modelmux/translate/model_paths.py):
a client's other names are its 400, routes.yaml's a config error."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from modelmux import routing
from modelmux.attempt import exchange
from modelmux.config import loader
from modelmux.errors import GatewayError
from modelmux.translate import model_paths

PATH = Path("/x/routes.yaml")
PROVIDERS = """
providers:
  gem: {protocol: gemini, base_url: "https://g.example/v1beta", credentials: [{label: g, key: k}]}
  azure: {protocol: openai-chat, base_url: "https://a.example/openai", endpoint: "/deployments/{model}/chat/completions",
          credentials: [{label: a, key: k}]}
  fireworks: {protocol: openai-chat, base_url: "https://f.example/v1", credentials: [{label: f, key: k}]}
  ollama: {protocol: openai-chat, base_url: "http://127.0.0.1:11434/v1", auth: none}
"""


def load(text: str) -> loader.Config:
    return loader.parse(yaml.safe_load(PROVIDERS + text), PATH, {})


@pytest.mark.parametrize("name", ["gemini-2.5-flash", "gemini-2.5-flash-preview-05-20", "gpt-4o_mini.2024", "Deploy-1"])
def test_names_of_letters_digits_dots_dashes_underscores_go_into_a_path_as_they_are(name: str) -> None:
    assert model_paths.problem(name) is None
    assert model_paths.segment(name) == name


@pytest.mark.parametrize("name", ["../../admin/secret?x=", "..", ".hidden", "-x", "a b", "a/b", "a:b", "a%2Fb", "a#b",
                                  "a?b", "é", "x" * 257, ""])
def test_anything_else_cannot_go_into_a_path(name: str) -> None:
    assert model_paths.problem(name) is not None
    with pytest.raises(ValueError):
        model_paths.segment(name)


@pytest.mark.parametrize("model, in_path", [
    ("gem,gemini-2.5-flash", True), ("azure,deploy-1", True), ("fireworks,gpt-4o", False), ("ollama,qwen3", False),
])
def test_which_providers_put_the_model_into_their_path(model: str, in_path: bool) -> None:
    decision = routing.route(load("default: null\n"), model)
    assert model_paths.in_path(decision.provider) is in_path


@pytest.mark.parametrize("model", ["fireworks,accounts/fireworks/models/llama-v3p1-70b-instruct",
                                   "ollama,qwen3-coder:30b", "fireworks,gpt 5 (preview)"])
def test_names_that_only_go_into_a_body_keep_any_character(model: str) -> None:
    decision = routing.route(load("default: null\n"), model)
    outgoing = exchange.prepare(decision, {"model": model, "messages": []}, b"", "/v1/messages", "", {},
                                decision.provider.credentials[0] if decision.provider.credentials else None)
    assert outgoing.url.endswith("/chat/completions")


def test_a_clients_name_that_cannot_go_into_the_path_is_its_400() -> None:
    decision = routing.route(load("routes:\n  - {match: 'az-*', provider: azure}\ndefault: null\n"), "az-x y(high)")
    with pytest.raises(GatewayError) as raised:
        exchange.prepare(decision, {"model": "az-x y(high)"}, b"", "/v1/messages", "", {}, decision.provider.credentials[0])
    assert raised.value.status == 400
    assert raised.value.message == (
        "model: 'az-x y(high)' is sent as 'az-x y', which goes into provider 'azure''s URL path, but a model name in "
        "a URL path may only hold letters, digits, '.', '_' and '-' (starting with a letter or digit, at most 256)")


def test_a_configured_name_that_cannot_go_into_the_path_is_a_config_error() -> None:
    with pytest.raises(loader.ConfigError) as raised:
        load("""
routes:
  - {match: fast, provider: gem, model: "models/gemini-2.5-flash", fallback: [{provider: azure, model: "my deploy"}]}
  - {match: "gem-*", provider: gem}
aliases: {quick: "gem-../x"}
default: null
""")
    assert raised.value.problems == [
        "routes[0].model: 'models/gemini-2.5-flash' goes into provider 'gem''s URL path, but a model name in a URL path "
        "may only hold letters, digits, '.', '_' and '-' (starting with a letter or digit, at most 256)",
        "routes[0].fallback[0].model: 'my deploy' goes into provider 'azure''s URL path, but a model name in a URL "
        "path may only hold letters, digits, '.', '_' and '-' (starting with a letter or digit, at most 256)",
        "aliases.quick: 'gem-../x' goes into provider 'gem''s URL path, but a model name in a URL path may only hold "
        "letters, digits, '.', '_' and '-' (starting with a letter or digit, at most 256)",
    ]


def test_configured_names_for_body_only_providers_and_efforts_are_fine() -> None:
    loaded = load("""
routes:
  - {match: fw, provider: fireworks, model: "accounts/fireworks/models/llama-v3p1-70b-instruct"}
  - {match: think, provider: gem, model: "gemini-2.5-pro(8192)"}
default: null
""")
    assert [r.model for r in loaded.routes] == ["accounts/fireworks/models/llama-v3p1-70b-instruct", "gemini-2.5-pro(8192)"]
