"""server.api_keys: labelled client keys, each limited to some profiles, providers and a
rate, and its requests counted under its label; on both send paths (a model with one
upstream goes by mitmproxy's own path, one with a fallback by the relay)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from gateway import Gateway, all_running
from prometheus_client.parser import text_string_to_metric_families
from redis_server import RedisServer
from test_fleet_gateways import wait_for
from upstream import Reply, Upstream, anthropic_like

from modelmux.addons.inbound import Rates
from modelmux.cli.status_report import client_key_lines
from modelmux.config import loader

KEYS = {"alice": "mm-alice-key-1111aaaa", "bob": "mm-bob-key-2222bbbb", "carol": "mm-carol-key-3333cccc",
        "ops": "mm-ops-key-4444dddd"}
ENV = {f"KEY_{label.upper()}": key for label, key in KEYS.items()} | {"VENDOR_KEY": "sk-vendor-key-5555eeee"}
# A model of each send path: mitmproxy's own (one upstream), the failover relay (a fallback).
MODELS = {"solo": "claude-x", "relay": "claude-relayed"}


def routes(up: Upstream, state: str = "") -> str:
    return f"""
{state}
server:
  api_keys:
    alice: {{key: "${{KEY_ALICE}}", rpm: 3}}
    bob: {{key: "${{KEY_BOB}}", profiles: [cheap], providers: [vendor]}}
    carol: {{key: "${{KEY_CAROL}}", providers: [anthropic]}}
    ops: {{key: "${{KEY_OPS}}", admin: true}}
providers:
  anthropic: {{protocol: anthropic, base_url: "{up.url}", auth: passthrough}}
  again: {{protocol: anthropic, base_url: "{up.url}/again", auth: passthrough}}
  vendor: {{protocol: anthropic, base_url: "{up.url}/vendor", credentials: [{{label: v, key: "${{VENDOR_KEY}}"}}]}}
routes:
  - {{match: "claude-relayed", provider: anthropic, fallback: [again]}}
  - {{match: "vendor-*", provider: vendor}}
profiles:
  cheap: {{slots: {{sonnet: vendor-small}}, providers: [vendor]}}
  full: {{slots: {{sonnet: claude-x}}}}
default: {{provider: anthropic}}
"""


@pytest.fixture
def setup(start_gateway) -> Iterator[tuple[Gateway, Upstream]]:
    with Upstream() as up:
        yield start_gateway(routes(up), ENV), up


def post(gateway: Gateway, key: str | None, model: str = "claude-x", **headers: str) -> httpx.Response:
    body = {"model": model, "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}
    auth = {"x-api-key": KEYS[key]} if key else {}
    return httpx.post(f"{gateway.url}/v1/messages", json=body, headers={**auth, **headers}, timeout=15)


def error(status: int, kind: str, message: str) -> tuple[int, dict]:
    return status, {"type": "error", "error": {"type": kind, "message": message}}


def said(response: httpx.Response) -> tuple[int, dict]:
    return response.status_code, response.json()


def test_a_request_without_one_of_the_keys_is_401(setup):
    gateway, up = setup
    for headers in ({}, {"x-api-key": "mm-not-a-key"}, {"authorization": f"Bearer {KEYS['alice']}x"}):
        response = httpx.post(f"{gateway.url}/v1/messages", json={"model": "claude-x"}, headers=headers)
        assert said(response) == error(401, "authentication_error", (
            "this modelmux gateway requires one of its API keys (server.api_keys): send it in x-modelmux-key, "
            "x-api-key or Authorization: Bearer"))
    assert up.received == []


@pytest.mark.parametrize("path", MODELS)
def test_each_key_is_taken_off_and_its_requests_counted_under_its_label(setup, path):
    gateway, up = setup
    for key in ("alice", "carol", "ops", "ops"):
        response = post(gateway, key, MODELS[path])
        assert response.status_code == 200, response.text
    assert not any(key in str(r.headers) for r in up.received for key in KEYS.values())
    ops = {"x-api-key": KEYS["ops"]}
    usage = httpx.get(f"{gateway.url}/modelmux/usage?days=1&by=client_key", headers=ops).json()
    assert [(row["client_key"], row["requests"]) for row in usage["rows"]] == [("ops", 2), ("alice", 1), ("carol", 1)]
    metrics = httpx.get(f"{gateway.url}/metrics", headers=ops).text
    counted = {sample.labels["client_key"]: sample.value
               for family in text_string_to_metric_families(metrics) if family.name == "modelmux_requests"
               for sample in family.samples if sample.name == "modelmux_requests_total"}
    assert counted == {"alice": 1.0, "carol": 1.0, "ops": 2.0}


def test_only_admin_keys_use_the_gateways_own_api(setup):
    gateway, _ = setup
    for path in ("/modelmux/credentials", "/modelmux/usage", "/metrics"):
        response = httpx.get(f"{gateway.url}{path}", headers={"x-api-key": KEYS["alice"]})
        assert said(response) == error(403, "permission_error", (
            f"the key 'alice' may send model requests only; {path} needs server.api_key or a key with "
            "admin: true under server.api_keys"))
        assert httpx.get(f"{gateway.url}{path}", headers={"x-api-key": KEYS["ops"]}).status_code == 200
    public = httpx.get(f"{gateway.url}/healthz", headers={"x-api-key": KEYS["alice"]}).json()
    assert "config" not in public
    assert "config" in httpx.get(f"{gateway.url}/healthz", headers={"x-api-key": KEYS["ops"]}).json()
    assert httpx.get(f"{gateway.url}/v1/models", headers={"x-api-key": KEYS["alice"]}).status_code == 200


def test_a_key_reaches_only_its_providers(setup):
    gateway, up = setup
    assert said(post(gateway, "carol", "vendor-small")) == error(403, "permission_error", (
        "the key 'carol' may use providers anthropic only (server.api_keys.carol.providers), "
        "and model 'vendor-small' routes to 'vendor'"))
    assert up.received == []
    # A fallback it may not use is skipped: the relay's route becomes mitmproxy's one upstream.
    up.reply = lambda request: Reply(529, json.dumps(
        {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}).encode(),
        {"content-type": "application/json"})
    assert said(post(gateway, "carol", MODELS["relay"])) == error(529, "overloaded_error", "busy")
    assert [r.path for r in up.received] == ["/v1/messages"]
    up.received.clear()
    assert said(post(gateway, "ops", MODELS["relay"])) == error(503, "overloaded_error", (
        "no upstream could serve model 'claude-relayed' (4 attempts): anthropic/client token 529; "
        "again/client token 529; anthropic/client token 529; again/client token 529"))
    assert [r.path for r in up.received] == ["/v1/messages", "/again/v1/messages"] * 2


def test_a_key_with_profiles_is_its_first_profile_unless_it_names_one_of_them(setup):
    gateway, up = setup
    response = post(gateway, "bob", "vendor-small")
    assert response.status_code == 200, response.text
    assert up.received[-1].path == "/vendor/v1/messages"
    assert up.received[-1].headers["x-api-key"] == ENV["VENDOR_KEY"]
    # The profile's own limits hold too: cheap may use the vendor only.
    assert said(post(gateway, "bob", "claude-x")) == error(403, "permission_error", (
        "profile 'cheap' may only use providers vendor, but model 'claude-x' routes to 'anthropic' (default); "
        "add it to profiles.cheap.providers or pick another model"))
    assert said(post(gateway, "bob", "vendor-small", **{"x-modelmux-profile": "full"})) == error(
        403, "permission_error",
        "the key 'bob' may use profiles cheap only (server.api_keys.bob.profiles), and this request is profile 'full'")
    assert len(up.received) == 1


def test_a_keys_rate_counts_both_paths_and_says_when_to_come_back(setup):
    gateway, up = setup
    for model in (MODELS["solo"], MODELS["relay"], MODELS["solo"]):
        assert post(gateway, "alice", model).status_code == 200
    for model in MODELS.values():
        refused = post(gateway, "alice", model)
        seconds = int(refused.headers["retry-after"])
        assert 50 <= seconds <= 60
        assert said(refused) == error(429, "rate_limit_error", (
            f"the key 'alice' may send 3 requests per minute (server.api_keys.alice.rpm); try again in {seconds} s"))
    assert len(up.received) == 3
    assert post(gateway, "carol").status_code == 200  # another key's rate is its own
    metrics = httpx.get(f"{gateway.url}/metrics", headers={"x-api-key": KEYS["ops"]}).text
    refused = [(sample.labels["client_key"], sample.labels["type"], sample.value)
               for family in text_string_to_metric_families(metrics) if family.name == "modelmux_errors"
               for sample in family.samples if sample.name == "modelmux_errors_total"]
    assert refused == [("alice", "rate_limit_error", 2.0)]
    document = httpx.get(f"{gateway.url}/modelmux/credentials", headers={"x-api-key": KEYS["ops"]}).json()
    assert document["client_keys"] == [
        {"label": "alice", "admin": False, "profiles": None, "providers": None, "rpm": 3, "last_minute": 3},
        {"label": "bob", "admin": False, "profiles": ["cheap"], "providers": ["vendor"], "rpm": None, "last_minute": None},
        {"label": "carol", "admin": False, "profiles": None, "providers": ["anthropic"], "rpm": None, "last_minute": None},
        {"label": "ops", "admin": True, "profiles": None, "providers": None, "rpm": None, "last_minute": None},
    ]
    assert client_key_lines(document) == [
        "client keys:",
        "  alice  3 of 3 requests in the last minute (this gateway)",
        "  bob    profiles cheap; providers vendor",
        "  carol  providers anthropic",
        "  ops    admin",
    ]


def test_rates_slide_over_the_last_minute() -> None:
    rates = Rates()
    assert [rates.wait("a", 2, t) for t in (0.0, 10.0, 20.0)] == [0.0, 0.0, 40.0]
    assert rates.wait("a", 2, 60.0) == 0.0  # the first left the window; the refused one never counted
    assert rates.wait("a", 2, 65.0) == 5.0
    assert rates.wait("b", 2, 65.0) == 0.0


def test_the_fleet_shares_each_keys_rate(tmp_path: Path):
    """Two gateways on one Redis: a key's rpm holds across both; with Redis gone each
    counts on its own and nothing fails for it."""
    with RedisServer(tmp_path / "redis") as redis, Upstream() as up:
        text = routes(up, f'state: {{backend: redis, url: "{redis.url}"}}')
        for i in range(2):
            (tmp_path / f"gateway{i}").mkdir()
        gateways = [Gateway(tmp_path / f"gateway{i}", text, ENV) for i in range(2)]
        with all_running(*gateways):
            first, second = gateways
            for gateway in gateways:
                wait_for(lambda g=gateway: httpx.get(f"{g.url}/healthz", headers={"x-api-key": KEYS["ops"]})
                         .json()["state"]["status"] == "connected", f"{gateway.url} connected")
            statuses = [post(gateway, "alice").status_code for gateway in (first, second, first, second)]
            assert statuses == [200, 200, 200, 429]
            redis.kill()
            # Each gateway's own count: the first saw two of alice's, the second one.
            assert [post(second, "alice").status_code for _ in range(3)] == [200, 200, 429]
            assert post(first, "alice").status_code == 200
            assert post(first, "alice").status_code == 429
    assert len(up.received) == 6


def test_client_keys_in_routes_yaml_are_checked(tmp_path: Path):
    path = tmp_path / "routes.yaml"
    path.write_text("""
server:
  api_key: "${TOP}"
  api_keys:
    default: {key: "${OTHER}"}
    same: {key: "${TOP}"}
    lost: {key: "${UNSET}"}
    narrow: {key: k-narrow-0001, profiles: [nope], providers: [anthropic, gone]}
providers:
  anthropic: {protocol: anthropic, base_url: "https://api.anthropic.com", auth: passthrough}
default: {provider: anthropic}
""")
    with pytest.raises(loader.ConfigError) as caught:
        loader.load(path, {"TOP": "k-top-0001", "OTHER": "k-other-0001"})
    assert str(caught.value).splitlines() == [f"{path}: {problem}" for problem in (
        "server.api_keys.default: 'default' is the label of server.api_key's requests; name this key otherwise",
        "server.api_keys.same.key: is the same key as server.api_key's; give each label its own key, "
        "or its requests cannot be told apart",
        "server.api_keys.lost.key uses ${UNSET}, but environment variable UNSET is not set; "
        "export UNSET=... before starting modelmux, or remove it",
        "server.api_keys.narrow.profiles: 'nope' is not one of routes.yaml's profiles; known: none are configured",
        "server.api_keys.narrow.providers: 'gone' is not one of routes.yaml's providers; known: anthropic",
    )]
    assert "k-top-0001" not in str(caught.value)
