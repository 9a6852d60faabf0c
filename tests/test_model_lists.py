"""model_lists: where each protocol's model list is, what asking it sends (the
credential as the gateway sends it, or nothing), and the names and limits read from
its answer."""

from __future__ import annotations

import json
from pathlib import Path

from modelmux import config, model_lists

KEY = "sk-list-aaaaaaaaaaaa1111"
ROUTES = """
providers:
  claude: {protocol: anthropic, base_url: "https://vendor.example/api/anthropic", credentials: [{label: a, key: "${KEY}"}]}
  azure:
    protocol: openai-chat
    base_url: "https://x.openai.azure.com/openai"
    auth: "api-key: {key}"
    headers: {X-Team: blue}
    query: {api-version: "2024-10-21"}
    credentials: [{label: a, key: "${KEY}"}]
  google: {protocol: gemini, base_url: "https://generativelanguage.googleapis.com/v1beta", credentials: [{label: a, key: "${KEY}"}]}
  anthropic: {protocol: anthropic, base_url: "https://api.anthropic.com", auth: passthrough}
routes:
  - {match: "gpt-5*", provider: azure}
  - {match: "gpt-*", provider: google}
default: {provider: anthropic}
"""


def test_each_protocol_s_list_and_what_asking_it_sends(tmp_path: Path) -> None:
    (tmp_path / "routes.yaml").write_text(ROUTES)
    providers = config.load(tmp_path / "routes.yaml", {"KEY": KEY}).providers
    claude, azure, google, anthropic = (providers[n] for n in ("claude", "azure", "google", "anthropic"))
    assert model_lists.request(claude, claude.credentials[0]) == (
        "https://vendor.example/api/anthropic/v1/models?limit=1000", {"anthropic-version": "2023-06-01", "x-api-key": KEY})
    assert model_lists.request(azure, azure.credentials[0]) == (
        "https://x.openai.azure.com/openai/models?api-version=2024-10-21", {"x-team": "blue", "api-key": KEY})
    assert model_lists.bare(azure) == ("https://x.openai.azure.com/openai/models?api-version=2024-10-21", {})
    assert model_lists.request(google, google.credentials[0]) == (
        "https://generativelanguage.googleapis.com/v1beta/models?pageSize=1000", {"x-goog-api-key": KEY})
    assert model_lists.request(anthropic, None) == (
        "https://api.anthropic.com/v1/models?limit=1000", {"anthropic-version": "2023-06-01"})
    routes = config.load(tmp_path / "routes.yaml", {"KEY": KEY}).routes
    listed = ["text-embedding-3-small", "gpt-5-mini", "gpt-4o"]
    assert model_lists.routed_here(listed, routes, "azure") == "gpt-5-mini"
    assert model_lists.routed_here(listed, routes, "google") == "gpt-4o"  # gpt-5-mini: the first route's
    assert model_lists.routed_here(listed, routes, "claude") is None


def test_names_in_each_protocol_s_answer() -> None:
    anthropic = {"data": [{"type": "model", "id": "claude-opus-4-1"}], "has_more": False}
    openai = {"object": "list", "data": [{"id": "gpt-4o", "object": "model"}, {"id": "o3"}]}
    gemini = {"models": [{"name": "models/gemini-2.5-flash"}, {"name": "models/embedding-001"}]}
    assert model_lists.names(json.dumps(anthropic)) == ["claude-opus-4-1"]
    assert model_lists.names(json.dumps(openai)) == ["gpt-4o", "o3"]
    assert model_lists.names(json.dumps(gemini)) == ["gemini-2.5-flash", "embedding-001"]
    assert model_lists.names(json.dumps([{"id": "bare"}, "odd", {"id": ""}])) == ["bare"]
    assert model_lists.names(json.dumps({"data": []})) == []
    for not_a_list in ("<html><body>Welcome</body></html>", '{"error": {"message": "nope"}}', '"text"', ""):
        assert model_lists.names(not_a_list) is None, not_a_list


def test_limits_in_model_lists() -> None:
    """Each list's own names for a model's context window and output limit."""
    listed = json.dumps({"data": [
        {"id": "claude-sonnet-4-5", "max_input_tokens": 200000, "max_tokens": 64000},  # Anthropic's
        {"id": "deepseek/deepseek-r1", "context_length": 163840, "top_provider": {"max_completion_tokens": 65536}},
        {"id": "llama-3.3-70b", "context_window": 131072, "max_completion_tokens": 32768},  # Groq's
        {"id": "qwen", "max_model_len": 32768},  # vLLM's
        {"id": "gpt-4o", "max_tokens": 16384},  # not Anthropic's list: its max_tokens may mean anything
    ]})  # fmt: skip
    names = ("claude-sonnet-4-5", "deepseek/deepseek-r1", "llama-3.3-70b", "qwen", "gpt-4o", "not-listed")
    assert [model_lists.limits(listed, m) for m in names] == [
        (200000, 64000), (163840, 65536), (131072, 32768), (32768, None), (None, None), (None, None)]
    gemini = {"models": [{"name": "models/gemini-2.5-pro", "inputTokenLimit": 1048576, "outputTokenLimit": 65536}]}
    assert model_lists.limits(json.dumps(gemini), "gemini-2.5-pro") == (1048576, 65536)
    assert model_lists.limits("<html>", "gemini-2.5-pro") == (None, None)
