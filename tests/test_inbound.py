"""server.api_key: the gateway's own key, required from clients and never forwarded."""

from __future__ import annotations

import httpx
import pytest

from upstream import Upstream

GATEWAY_KEY = "mm-gateway-key-5555"


@pytest.fixture
def setup(start_gateway):
    with Upstream() as up:
        routes = f"""
server: {{api_key: "${{MM_KEY}}"}}
providers:
  anthropic: {{protocol: anthropic, base_url: "{up.url}", auth: passthrough}}
default: {{provider: anthropic}}
"""
        yield start_gateway(routes, {"MM_KEY": GATEWAY_KEY}), up


def post(gateway, **headers: str) -> httpx.Response:
    return httpx.post(f"{gateway.url}/v1/messages", json={"model": "claude-x"}, headers=headers)


@pytest.mark.parametrize("headers", [{}, {"x-api-key": "wrong"}, {"authorization": "Bearer wrong"}])
def test_request_without_the_key_is_401(setup, headers):
    gateway, up = setup
    response = post(gateway, **headers)
    assert response.status_code == 401
    assert response.json() == {"type": "error", "error": {"type": "authentication_error", "message": (
        "this modelmux gateway requires its API key (server.api_key): send it in x-modelmux-key, "
        "x-api-key or Authorization: Bearer")}}
    assert up.received == []


@pytest.mark.parametrize("header, value", [
    ("x-modelmux-key", GATEWAY_KEY), ("x-api-key", GATEWAY_KEY), ("authorization", f"Bearer {GATEWAY_KEY}")])
def test_the_key_is_accepted_and_never_forwarded(setup, header, value):
    gateway, up = setup
    assert post(gateway, **{header: value, "x-client": "yes"}).status_code == 200
    received = up.received[0].headers
    assert received["x-client"] == "yes"
    assert GATEWAY_KEY not in str(received)


def test_passthrough_keeps_the_clients_token_beside_the_gateway_key(setup):
    gateway, up = setup
    assert post(gateway, **{"x-modelmux-key": GATEWAY_KEY, "authorization": "Bearer sk-ant-oat-client"}).status_code == 200
    assert up.received[0].headers["authorization"] == "Bearer sk-ant-oat-client"
    assert "x-modelmux-key" not in up.received[0].headers


def test_healthz_needs_no_key(setup):
    gateway, _ = setup
    assert httpx.get(f"{gateway.url}/healthz").json()["status"] == "ok"
