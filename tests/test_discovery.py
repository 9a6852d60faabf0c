"""Discovery in the running gateway: it asks each provider's model list in the
background after start-up and after a reload, keeps what the lists report in the cache
file the launcher reads (never a key), logs a failing list once and carries on, and
caps each request's output by what the lists reported, on both send paths. Local fake
model-list servers stand in for OpenRouter and Gemini."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gateway import Gateway, free_port
from gemini_upstream import gemini_like
from openai_upstream import json_reply, openai_like
from upstream import Behaviour, Hang, Received, Reply, Upstream

from modelmux.config import model_facts

OR_KEYS = ("sk-or-aaaaaaaaaaaaaaaa-0001", "sk-or-bbbbbbbbbbbbbbbb-0002")
GEM_KEY = "AIza-gem-cccccccccccccccc-0003"
BROKEN_KEY = "sk-broken-dddddddddddd-0004"
ENV = {"OR_A": OR_KEYS[0], "OR_B": OR_KEYS[1], "GEM_KEY": GEM_KEY, "BROKEN_KEY": BROKEN_KEY}
SECRETS = (*OR_KEYS, GEM_KEY, BROKEN_KEY)
# OpenRouter's model list (openrouter.ai/docs/models), for the one model routed there.
OPENROUTER = {"data": [{
    "id": "z-ai/glm-4.6", "name": "Z.AI: GLM 4.6", "context_length": 202752,
    "architecture": {"input_modalities": ["text"], "output_modalities": ["text"]},
    "top_provider": {"context_length": 202752, "max_completion_tokens": 2000, "is_moderated": False},
    "supported_parameters": ["max_tokens", "reasoning", "tools"],
}]}
# Gemini's (the Model resource of ai.google.dev/api/models).
GEMINI = {"models": [{"name": "models/gemini-2.5-flash", "displayName": "Gemini 2.5 Flash",
                      "inputTokenLimit": 1048576, "outputTokenLimit": 3000, "thinking": True,
                      "supportedGenerationMethods": ["generateContent"]}]}


def routes(url: str, gem_url: str, gone: int) -> str:
    return f"""
providers:
  or:                       # two keys: the failover relay sends its requests
    protocol: openai-chat
    base_url: "{url}/or/v1"
    credentials: [{{label: a, key: "${{OR_A}}"}}, {{label: b, key: "${{OR_B}}"}}]
    models: [z-ai/glm-4.6]
  gem:                      # one key: mitmproxy sends its requests itself
    protocol: gemini
    base_url: "{gem_url}/v1beta"
    credentials: [{{label: g, key: "${{GEM_KEY}}"}}]
    models: [gemini-2.5-flash]
  broken:
    protocol: openai-chat
    base_url: "{url}/broken/v1"
    credentials: [{{label: k, key: "${{BROKEN_KEY}}"}}]
    models: [broken-model]
  slow:                     # its list never answers
    protocol: openai-chat
    base_url: "{url}/slow/v1"
    auth: none
    models: [slow-model]
  gone:                     # nothing listens there
    protocol: openai-chat
    base_url: "http://127.0.0.1:{gone}/v1"
    auth: none
    models: [gone-model]
default: null
"""


def lists(request: Received) -> Behaviour:
    path = request.path.split("?")[0]
    if path == "/or/v1/models":
        return json_reply(OPENROUTER)
    if path == "/broken/v1/models":
        return Reply(404, b"<html>no such page</html>", {"content-type": "text/html"})
    if path == "/slow/v1/models":
        return Hang()
    return openai_like(request)


def gemini(request: Received) -> Behaviour:
    if request.method == "GET" and request.path.split("?")[0] == "/v1beta/models":
        return json_reply(GEMINI)
    return gemini_like(request)


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[Upstream, Upstream]]:
    with Upstream() as chat, Upstream() as gem:
        chat.reply, gem.reply = lists, gemini
        yield chat, gem


@pytest.fixture(scope="module")
def gateway(servers: tuple[Upstream, Upstream], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    chat, gem = servers
    built = Gateway(tmp_path_factory.mktemp("discovery"), routes(chat.url, gem.url, free_port()), ENV,
                    model_lists=True)
    # What an earlier gateway found: kept for `slow`, whose list does not answer now;
    # a provider no longer in routes.yaml is dropped.
    cache = built.state_file(model_facts.SUFFIX)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"version": 1, "providers": {"slow": {"slow-model": {"max_output": 777}},
                                                             "removed": {"m": {"max_output": 5}}}}))
    with built as running:
        wait_for(lambda: set(cached(running)) >= {"or", "gem"} and "removed" not in cached(running))
        yield running


def cached(gateway: Gateway) -> dict[str, Any]:
    path = gateway.state_file(model_facts.SUFFIX)
    return json.loads(path.read_text())["providers"] if path.exists() else {}


def wait_for(condition, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def post(gateway: Gateway, model: str, max_tokens: int = 32000) -> httpx.Response:
    return httpx.post(f"{gateway.url}/v1/messages", timeout=10, json={
        "model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": "hi"}]})


def test_what_the_lists_report_is_kept_for_the_launcher_without_a_secret(gateway: Gateway):
    assert cached(gateway) == {
        "or": {"z-ai/glm-4.6": {"context_window": 202752, "max_output": 2000, "thinking": True, "images": False,
                                "documents": False}},
        "gem": {"gemini-2.5-flash": {"context_window": 1048576, "max_output": 3000, "thinking": True}},
        "slow": {"slow-model": {"max_output": 777}},
    }
    loaded = model_facts.load_discovered(gateway.state_file(model_facts.SUFFIX))
    assert loaded["gem"]["gemini-2.5-flash"].sources["max_output"] == model_facts.MODEL_LIST
    written = gateway.state_file(model_facts.SUFFIX).read_text() + gateway.log.read_text()
    assert not [secret for secret in SECRETS if secret in written]


def test_output_is_capped_by_what_a_list_reported_on_both_send_paths(gateway: Gateway, servers):
    chat, gem = servers
    chat.received.clear()
    gem.received.clear()
    assert post(gateway, "z-ai/glm-4.6").status_code == 200  # the relay (two keys)
    assert [r.json()["max_tokens"] for r in chat.received if r.method == "POST"] == [2000]
    assert post(gateway, "gemini-2.5-flash").status_code == 200  # mitmproxy itself (one key)
    assert [r.json()["generationConfig"]["maxOutputTokens"] for r in gem.received if r.method == "POST"] == [3000]
    # What the cache kept from an earlier gateway counts until the list answers.
    assert post(gateway, "slow-model").status_code == 200
    assert [r.json()["max_tokens"] for r in chat.received if r.path.startswith("/slow/")] == [777]


def test_a_list_that_hangs_delays_no_request(gateway: Gateway, servers):
    chat, _ = servers
    started = time.monotonic()
    assert post(gateway, "slow-model", max_tokens=10).status_code == 200
    assert time.monotonic() - started < 2


def test_a_failing_list_is_logged_once_and_asked_again_after_a_reload(gateway: Gateway, servers):
    chat, _ = servers
    def asked() -> int:
        return sum(r.path.startswith("/broken/v1/models") for r in chat.received)

    before = asked()
    gateway.config.write_text(gateway.config.read_text() + "# touched\n")
    wait_for(lambda: asked() > before)
    wait_for(lambda: "reloaded" in gateway.log.read_text())
    time.sleep(0.5)
    log = gateway.log.read_text()
    assert log.count("asked provider 'broken' for its model list and got HTTP 404") == 1
    assert log.count("asked provider 'gone' for its model list and got no answer (ConnectError)") == 1
    # Never fatal: the broken provider still serves requests.
    assert post(gateway, "broken-model", max_tokens=10).status_code == 200


def test_off_when_told(tmp_path: Path, servers):
    chat, gem = servers
    chat.received.clear()
    with Gateway(tmp_path, routes(chat.url, gem.url, free_port()), ENV) as off:  # modelmux_model_lists=false
        assert post(off, "broken-model", max_tokens=10).status_code == 200
        time.sleep(0.5)
        assert not [r for r in chat.received if r.method == "GET"]
        assert not off.state_file(model_facts.SUFFIX).exists()
