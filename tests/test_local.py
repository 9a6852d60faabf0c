"""/healthz and /v1/models, answered by the gateway without any upstream."""

from __future__ import annotations

import os
import time

import anthropic
import httpx

ROUTES = """
providers:
  anthropic: {protocol: anthropic, base_url: "http://127.0.0.1:9", auth: passthrough}
  zai: {protocol: anthropic, base_url: "http://127.0.0.1:9", credentials: [{label: a, key: k}], models: [glm-4.6]}
routes:
  - {match: "claude-*haiku*", provider: zai, model: glm-4.5-air}
aliases: {fast: claude-haiku-4-5}
profiles:
  claude: {slots: {sonnet: claude-sonnet-4-5}, providers: [anthropic]}
default: {provider: anthropic}
"""


def test_healthz(start_gateway):
    gateway = start_gateway(ROUTES)
    health = httpx.get(f"{gateway.url}/healthz").json()
    assert health["status"] == "ok"
    assert health["service"] == "modelmux"
    assert health["pid"] == gateway.process.pid
    assert health["config"] == {
        "path": str(gateway.config), "providers": ["anthropic", "zai"], "routes": 1, "provider_models": 1,
        "default": "anthropic", "aliases": 1, "profiles": ["claude"],
    }  # the one route under routes:, and what zai's models and the default add
    assert health["reload_error"] is None
    assert health["listeners"] == [f"reverse:https://api.anthropic.com@127.0.0.1:{gateway.port}"]
    assert health["log"] is None  # started as mitmdump in the foreground: its output is the test's
    assert health["file_problems"] == []  # what bad state files look like: test_state_gateway.py
    logged = start_gateway(ROUTES, extra_args=["--set", "modelmux_log=/var/log/modelmux.log"])
    assert httpx.get(f"{logged.url}/healthz").json()["log"] == "/var/log/modelmux.log"


def test_a_head_gets_headers_only_and_the_connection_stays_usable(start_gateway):
    """Claude Code probes HEAD / on a kept-alive connection before its first request."""
    gateway = start_gateway(ROUTES)
    with httpx.Client(base_url=gateway.url) as client:
        head = client.head("/")
        assert (head.status_code, head.content) == (200, b"")
        assert int(head.headers["content-length"]) == len(client.get("/").content)
        assert client.get("/healthz").json()["status"] == "ok"  # the same connection, read cleanly


def test_models_in_anthropic_list_format(start_gateway):
    gateway = start_gateway(ROUTES)
    client = anthropic.Anthropic(base_url=gateway.url, api_key="x", max_retries=0)
    models = list(client.models.list(limit=2))  # the SDK follows has_more / last_id
    assert [(m.id, m.display_name, m.type) for m in models] == [
        ("fast", "fast → zai/glm-4.5-air", "model"),
        ("glm-4.6", "glm-4.6", "model"),
        ("claude-sonnet-4-5", "claude-sonnet-4-5", "model"),
        ("zai,glm-4.6", "zai,glm-4.6", "model"),  # a provider's model by explicit PROVIDER,MODEL
    ]
    assert client.models.retrieve("fast").display_name == "fast → zai/glm-4.5-air"
    missing = httpx.get(f"{gateway.url}/v1/models/nope")
    assert missing.status_code == 404
    assert missing.json()["error"] == {"type": "not_found_error", "message": "model 'nope' is not configured in routes.yaml"}
    bad = httpx.get(f"{gateway.url}/v1/models?limit=0")
    assert (bad.status_code, bad.json()["error"]["type"]) == (400, "invalid_request_error")


def test_models_for_a_profile(start_gateway):
    gateway = start_gateway(ROUTES)
    page = httpx.get(f"{gateway.url}/v1/models", headers={"x-modelmux-profile": "claude"}).json()
    assert [m["id"] for m in page["data"]] == ["claude-sonnet-4-5"]


def test_listens_on_loopback_even_without_a_host_in_the_mode(tmp_path):
    from gateway import Gateway

    gateway = Gateway(tmp_path, ROUTES)
    gateway.mode = f"reverse:https://api.anthropic.com@{gateway.port}"  # no host: mitmproxy's default is every interface
    with gateway:
        # The gateway answers /healthz on the wildcard listener mitmproxy opened, a moment
        # before the Listeners addon has moved it to loopback: wait for the move.
        deadline = time.monotonic() + 10
        while True:
            bound = {address for port, address in _tcp_listeners() if port == f"{gateway.port:04X}"}
            if bound == {"0100007F"} or time.monotonic() > deadline:
                break
            time.sleep(0.05)
    assert bound == {"0100007F"}


def _tcp_listeners() -> set[tuple[str, str]]:
    """(port hex, IPv4 address hex) of every listening TCP socket, from /proc/net/tcp."""
    if not os.path.exists("/proc/net/tcp"):
        import pytest

        pytest.skip("needs /proc/net/tcp")
    listening = set()
    for line in open("/proc/net/tcp").read().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if state == "0A":
            addr, port = local.split(":")
            listening.add((port, addr))
    return listening
