"""Which of a client's headers each upstream gets (docs/forwarding.md), and how its
tokens are read: pure, the decisions both send paths share (exchange.prepare)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from modelmux import __version__, routing
from modelmux.attempt import exchange
from modelmux.config import loader
from modelmux.headers import every_token, token_of, vendor_betas

ROUTES = """
providers:
  anthropic: {protocol: anthropic, base_url: "https://api.anthropic.com", auth: passthrough}
  anthropic-keys: {protocol: anthropic, base_url: "https://api.anthropic.com", credentials: [{label: k, key: sk-ant-api-mine}]}
  vendor: {protocol: anthropic, base_url: "https://api.z.ai/api/anthropic", credentials: [{label: v, key: vendor-key-1}],
           headers: {x-title: modelmux-user}}
  picky: {protocol: anthropic, base_url: "https://bedrock-proxy.example", credentials: [{label: p, key: picky-key-1}],
          headers: {anthropic-beta: "interleaved-thinking-2025-05-14", user-agent: "my-gateway/1"}}
  chat: {protocol: openai-chat, base_url: "https://api.deepseek.com", credentials: [{label: c, key: chat-key-1}]}
  local: {protocol: openai-chat, base_url: "http://127.0.0.1:11434/v1", auth: none}
routes:
  - {match: keys, provider: anthropic-keys}
  - {match: vendor, provider: vendor}
  - {match: picky, provider: picky}
  - {match: chat, provider: chat}
  - {match: local, provider: local}
default: {provider: anthropic}
"""
CLIENT = {
    "authorization": "Bearer sk-ant-oat01-client", "x-api-key": "sk-ant-api03-client", "x-goog-api-key": "AIza-client",
    "api-key": "azure-client", "x-modelmux-profile": "p", "user-agent": "claude-cli/2.1.0 (external, cli)",
    "x-app": "cli", "x-claude-code-session-id": "s-1", "x-stainless-os": "Linux", "anthropic-version": "2023-06-01",
    "anthropic-beta": "claude-code-20250219,oauth-2025-04-20", "content-type": "application/json",
    "accept": "application/json", "content-length": "40", "host": "127.0.0.1:7878",
}
BODY = {"model": "x", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}


def sent(model: str) -> dict[str, str]:
    """The headers the upstream of `model` gets, by lowercase name (what both paths send)."""
    cfg = loader.parse(yaml.safe_load(ROUTES), Path("/routes.yaml"), {})
    decision = routing.route(cfg, model)
    credential = decision.provider.credentials[0] if decision.provider.credentials else None
    outgoing = exchange.prepare(decision, BODY, b"{}", "/v1/messages", "", CLIENT, credential)
    return dict(outgoing.headers(list(CLIENT.items())))


def test_passthrough_to_anthropic_gets_the_client_headers_as_sent():
    assert sent("claude-x") == {k: v for k, v in CLIENT.items()
                                if k not in ("x-modelmux-profile", "content-length", "host")}


def test_anthropic_with_a_key_keeps_claude_codes_headers_but_none_of_the_clients_tokens():
    headers = sent("keys")
    assert headers["x-api-key"] == "sk-ant-api-mine"
    assert "authorization" not in headers and "x-goog-api-key" not in headers and "api-key" not in headers
    assert headers["user-agent"] == CLIENT["user-agent"] and headers["x-stainless-os"] == "Linux"
    assert headers["anthropic-beta"] == CLIENT["anthropic-beta"]


def test_a_vendor_gets_the_anthropic_headers_the_body_needs_and_modelmuxs_user_agent():
    assert sent("vendor") == {
        "anthropic-version": "2023-06-01", "anthropic-beta": "claude-code-20250219", "content-type": "application/json",
        "accept": "application/json", "x-api-key": "vendor-key-1", "user-agent": f"modelmux/{__version__}",
        "x-title": "modelmux-user",
    }


def test_a_providers_headers_replace_what_modelmux_would_send():
    headers = sent("picky")
    assert headers["anthropic-beta"] == "interleaved-thinking-2025-05-14" and headers["user-agent"] == "my-gateway/1"


@pytest.mark.parametrize("model, auth", [("chat", {"authorization": "Bearer chat-key-1"}), ("local", {})])
def test_a_translated_upstream_gets_nothing_of_the_clients(model, auth):
    assert sent(model) == {**auth, "user-agent": f"modelmux/{__version__}", "content-type": "application/json",
                           "accept-encoding": "identity"}


@pytest.mark.parametrize("value, token", [
    ("Bearer abc", "abc"), ("bearer abc", "abc"), ("BEARER  abc ", "abc"), ("abc", "abc"), ("Basic Zm9v", "Basic Zm9v"),
])
def test_the_bearer_scheme_is_read_in_any_case(value, token):
    assert token_of(value) == token


def test_every_token_a_client_sent_is_found_once():
    headers = {"authorization": "bearer t1", "x-api-key": "t2", "x-goog-api-key": "t3", "api-key": "t2",
               "x-modelmux-key": "t4", "proxy-authorization": "Bearer t5", "x-other": "t6"}
    assert every_token(headers) == ["t1", "t2", "t3", "t4", "t5"]


def test_a_vendor_never_gets_the_betas_of_the_clients_login():
    assert vendor_betas("oauth-2025-04-20, claude-code-20250219 ,x") == "claude-code-20250219,x"
    assert vendor_betas("oauth-2025-04-20") == ""
