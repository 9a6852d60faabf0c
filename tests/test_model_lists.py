"""model_lists: where each protocol's model list is, what asking it sends (the
credential as the gateway sends it, or nothing), and the names and limits read from
its answer."""

from __future__ import annotations

import json
from pathlib import Path

from modelmux.config import loader
from modelmux.config.model_facts import listed
from modelmux.translate import model_lists

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
    providers = loader.load(tmp_path / "routes.yaml", {"KEY": KEY}).providers
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
    routes = loader.load(tmp_path / "routes.yaml", {"KEY": KEY}).routes
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


# -- what the lists report of each model ------------------------------------------------
# Each list's shape as its provider documents it (see model_lists.WINDOW_FIELDS).

ANTHROPIC = {"data": [{
    "type": "model", "id": "claude-opus-4-6", "display_name": "Claude Opus 4.6", "created_at": "2026-02-05T00:00:00Z",
    "max_input_tokens": 200000, "max_tokens": 128000,
    "capabilities": {
        "image_input": {"supported": True}, "pdf_input": {"supported": True},
        "thinking": {"supported": True, "types": {"adaptive": {"supported": True}, "enabled": {"supported": True}}},
        "effort": {"supported": True, "low": {"supported": True}, "medium": {"supported": True},
                   "high": {"supported": True}, "xhigh": None, "max": {"supported": True}},
        "batch": {"supported": True},
    },
}, {
    "type": "model", "id": "claude-3-haiku-20240307", "display_name": "Claude Haiku 3", "max_input_tokens": 200000,
    "max_tokens": 4096, "capabilities": {"thinking": {"supported": False, "types": {}}, "effort": {"supported": False},
                                         "image_input": {"supported": True}, "pdf_input": {"supported": False}},
}]}
GEMINI = {"models": [
    {"name": "models/gemini-2.5-flash", "displayName": "Gemini 2.5 Flash", "inputTokenLimit": 1048576,
     "outputTokenLimit": 65536, "supportedGenerationMethods": ["generateContent"], "thinking": True},
    # No `thinking`: proto3 JSON leaves a false flag out, so it stays unknown.
    {"name": "models/gemini-2.0-flash", "inputTokenLimit": 1048576, "outputTokenLimit": 8192},
]}
OPENROUTER = {"data": [{
    "id": "z-ai/glm-4.6", "name": "Z.AI: GLM 4.6", "context_length": 202752,
    "architecture": {"input_modalities": ["text"], "output_modalities": ["text"]},
    "top_provider": {"context_length": 202752, "max_completion_tokens": 131072, "is_moderated": False},
    "supported_parameters": ["max_tokens", "reasoning", "include_reasoning", "tools"],
}, {
    "id": "openai/gpt-4o", "context_length": 128000,
    "architecture": {"input_modalities": ["text", "image", "file"]},
    "top_provider": {"max_completion_tokens": None}, "supported_parameters": ["tools"],
}]}
MISTRAL = {"object": "list", "data": [{
    "id": "mistral-medium-latest", "object": "model", "max_context_length": 131072,
    "capabilities": {"completion_chat": True, "function_calling": True, "vision": True},
}]}
TOGETHER = [{"id": "moonshotai/Kimi-K2-Instruct", "object": "model", "type": "chat", "context_length": 131072}]
GROQ = {"object": "list", "data": [{"id": "llama-3.1-8b-instant", "object": "model", "active": True,
                                    "context_window": 131072}]}
VLLM = {"object": "list", "data": [{"id": "qwen3-coder", "object": "model", "owned_by": "vllm", "max_model_len": 32768}]}
OPENAI = {"object": "list", "data": [{"id": "gpt-5", "object": "model", "created": 1, "owned_by": "system"}]}


def test_what_each_list_reports_of_its_models() -> None:
    facts = model_lists.facts(json.dumps(ANTHROPIC))
    opus, haiku = facts["claude-opus-4-6"], facts["claude-3-haiku-20240307"]
    assert (opus.context_window, opus.max_output, opus.thinking, opus.images, opus.documents) == (
        200000, 128000, True, True, True)
    assert opus.efforts == ("low", "medium", "high", "max")
    assert opus.sources == dict.fromkeys(
        ("context_window", "max_output", "thinking", "efforts", "images", "documents"), "model list")
    assert (haiku.thinking, haiku.efforts, haiku.documents, haiku.max_output) == (False, (), False, 4096)

    facts = model_lists.facts(json.dumps(GEMINI))
    assert facts["gemini-2.5-flash"] == listed(context_window=1048576, max_output=65536, thinking=True)
    assert facts["gemini-2.0-flash"] == listed(context_window=1048576, max_output=8192)

    facts = model_lists.facts(json.dumps(OPENROUTER))
    assert facts["z-ai/glm-4.6"] == listed(context_window=202752, max_output=131072, thinking=True, images=False,
                                           documents=False)
    assert facts["openai/gpt-4o"] == listed(context_window=128000, thinking=False, images=True, documents=True)

    assert model_lists.facts(json.dumps(MISTRAL)) == {"mistral-medium-latest": listed(context_window=131072,
                                                                                     images=True)}
    assert model_lists.facts(json.dumps(TOGETHER)) == {"moonshotai/Kimi-K2-Instruct": listed(context_window=131072)}
    assert model_lists.facts(json.dumps(GROQ)) == {"llama-3.1-8b-instant": listed(context_window=131072)}
    assert model_lists.facts(json.dumps(VLLM)) == {"qwen3-coder": listed(context_window=32768)}
    # A list of names only reports nothing; an answer that is no list is None.
    assert model_lists.facts(json.dumps(OPENAI)) == {}
    assert model_lists.facts("<html>nope</html>") is None


def test_values_of_the_wrong_kind_are_not_facts() -> None:
    odd = {"data": [{"id": "m", "context_length": "big", "max_tokens": -1, "thinking": "yes",
                     "capabilities": {"vision": 1, "effort": {"supported": "maybe"}}, "top_provider": []}]}
    assert model_lists.facts(json.dumps(odd)) == {}


def test_the_lists_modelmux_asks_on_its_own(tmp_path: Path) -> None:
    local = "  local: {protocol: openai-chat, base_url: 'http://127.0.0.1:11434/v1', auth: none}\n"
    (tmp_path / "routes.yaml").write_text(ROUTES.replace("routes:\n", local + "routes:\n", 1))
    asked = [(provider.name, credential.label if credential else None)
             for provider, credential in model_lists.askable(loader.load(tmp_path / "routes.yaml", {"KEY": KEY}))]
    # Every keyed provider with its first key, a keyless one with none; never the passthrough one.
    assert asked == [("claude", "a"), ("azure", "a"), ("google", "a"), ("local", None)]


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
