"""Set-up mistakes answered with what to fix: a base URL written with /v1, an unknown
path, and a client's own Anthropic credential sent to a provider that takes another."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from gateway import Gateway
from upstream import Reply, Upstream

from modelmux.config.types import Provider
from modelmux.config.types import Auth
from modelmux.attempt.exchange import credential_mismatch
from modelmux.headers import client_credential

SUBSCRIPTION = "sk-ant-oat01-aaaaaaaaaaaa1111"
API_KEY = "sk-ant-api03-bbbbbbbbbbbb2222"
SERVED = ("POST /v1/messages, POST /v1/messages/count_tokens, GET /v1/models, GET /v1/models/{id} "
          "and GET /healthz")
VENDOR_401 = json.dumps({"error": {"message": "invalid api key", "code": 1000}}).encode()
ANTHROPIC_OAUTH_401 = json.dumps({"type": "error", "error": {
    "type": "authentication_error", "message": "OAuth authentication is currently not supported."}}).encode()


def rejecting(request) -> Reply:
    return Reply(status=401, body=VENDOR_401)


@pytest.fixture(scope="module")
def vendor() -> Iterator[Upstream]:
    with Upstream() as server:
        server.reply = rejecting
        yield server


@pytest.fixture(scope="module")
def anthropic() -> Iterator[Upstream]:
    """What a passthrough default forwards other paths to."""
    with Upstream() as server:
        server.reply = lambda request: Reply(status=404, body=b'{"type":"error","error":{"type":"not_found_error","message":"Not Found"}}')
        yield server


@pytest.fixture(scope="module")
def gateway(vendor, tmp_path_factory) -> Iterator[Gateway]:
    """No default: paths modelmux does not serve have nowhere to go."""
    routes = f"""
server: {{max_attempts: 1}}
providers:
  vendor: {{protocol: anthropic, base_url: "{vendor.url}/api/anthropic", auth: passthrough}}
  spare: {{protocol: anthropic, base_url: "{vendor.url}/spare", auth: passthrough}}
routes:
  - {{match: glm-4.6, provider: vendor}}
  - {{match: glm-relayed, provider: vendor, fallback: [spare]}}
default: null
"""
    with Gateway(tmp_path_factory.mktemp("friendly"), routes) as gw:
        yield gw


@pytest.fixture(scope="module")
def forwarding(anthropic, tmp_path_factory) -> Iterator[Gateway]:
    routes = f"""
providers:
  anthropic: {{protocol: anthropic, base_url: "{anthropic.url}", auth: passthrough}}
default: {{provider: anthropic}}
"""
    with Gateway(tmp_path_factory.mktemp("forwarding"), routes) as gw:
        yield gw


@pytest.fixture(autouse=True)
def fresh(vendor, anthropic) -> None:
    vendor.received.clear()
    anthropic.received.clear()


def assert_error(response: httpx.Response, status: int, error_type: str, message: str) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"type": "error", "error": {"type": error_type, "message": message}}


def doubled(gateway: Gateway, meant: str) -> str:
    return (f"modelmux serves {meant}, not /v1{meant}: remove /v1 from ANTHROPIC_BASE_URL "
            f"(set it to http://127.0.0.1:{gateway.port}; the client adds /v1 itself)")


# ---- a base URL written with /v1 ------------------------------------------------------------

@pytest.mark.parametrize("which", ["gateway", "forwarding"])
def test_doubled_v1_says_to_remove_it_even_with_a_passthrough_default(which, request, anthropic) -> None:
    gw: Gateway = request.getfixturevalue(which)
    body = {"model": "claude-sonnet-4-5", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}
    post = httpx.post(f"{gw.url}/v1/v1/messages?beta=true", json=body, headers={"x-api-key": API_KEY})
    assert_error(post, 404, "not_found_error", doubled(gw, "/v1/messages"))
    count = httpx.post(f"{gw.url}/v1/v1/messages/count_tokens", json=body)
    assert_error(count, 404, "not_found_error", doubled(gw, "/v1/messages/count_tokens"))
    models = httpx.get(f"{gw.url}/v1/v1/models")
    assert_error(models, 404, "not_found_error", doubled(gw, "/v1/models"))
    assert anthropic.received == []


# ---- other paths -----------------------------------------------------------------------------

def test_unknown_path_without_a_passthrough_default_lists_what_modelmux_serves(gateway) -> None:
    assert_error(httpx.get(f"{gateway.url}/v1/files"), 404, "not_found_error",
                 f"modelmux does not serve GET /v1/files; it serves {SERVED}")
    assert_error(httpx.post(f"{gateway.url}/v1/complete", json={}), 404, "not_found_error",
                 f"modelmux does not serve POST /v1/complete; it serves {SERVED}")


def test_unknown_path_with_a_passthrough_default_is_the_upstreams_to_answer(forwarding, anthropic) -> None:
    response = httpx.get(f"{forwarding.url}/v1/files?limit=2", headers={"x-api-key": API_KEY})
    assert_error(response, 404, "not_found_error", "Not Found")
    assert [r.path for r in anthropic.received] == ["/v1/files?limit=2"]


# ---- the client's own credential, the wrong kind for the provider --------------------------

def vendor_refusal(gateway: Gateway, vendor: Upstream, route: str, sent: str) -> str:
    return (f"routes.yaml's {route} sends {sent} to provider 'vendor' ({vendor.url}/api/anthropic), which "
            "answered HTTP 401: invalid api key. Only Anthropic takes Anthropic credentials: give 'vendor' a key "
            "of its own (replace its `auth: passthrough` with `credentials:` holding a `key:` in routes.yaml)")


MESSAGE = {"max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}


def test_subscription_login_sent_to_a_vendor_names_the_route_and_the_fix(gateway, vendor) -> None:
    response = httpx.post(f"{gateway.url}/v1/messages", json={"model": "glm-4.6", **MESSAGE},
                          headers={"authorization": f"Bearer {SUBSCRIPTION}"})
    assert_error(response, 401, "authentication_error",
                 vendor_refusal(gateway, vendor, "routes[0]", "your Claude subscription login"))


def test_api_key_sent_to_a_vendor_through_the_relay(gateway, vendor) -> None:
    """A route with a fallback is sent by the failover relay. With one attempt allowed its
    401 is the answer; after several the client gets the relay's summary of them."""
    response = httpx.post(f"{gateway.url}/v1/messages", json={"model": "glm-relayed", **MESSAGE},
                          headers={"x-api-key": API_KEY})
    assert response.status_code == 401
    assert response.json()["error"]["message"] == vendor_refusal(gateway, vendor, "routes[1]", "your Anthropic API key")


def test_another_token_gets_the_upstreams_words_only(gateway, vendor) -> None:
    response = httpx.post(f"{gateway.url}/v1/messages", json={"model": "glm-4.6", **MESSAGE},
                          headers={"x-api-key": "some-vendor-key"})
    assert_error(response, 401, "authentication_error",
                 "provider 'vendor' answered HTTP 401 Unauthorized: invalid api key")


# ---- the decision, pure -------------------------------------------------------------------

def test_client_credential_kinds() -> None:
    assert client_credential({"authorization": f"Bearer {SUBSCRIPTION}"}) == "subscription"
    assert client_credential({"x-api-key": API_KEY}) == "api-key"
    assert client_credential({"x-api-key": "modelmux-placeholder"}) is None
    assert client_credential({}) is None


ANTHROPIC = Provider("anthropic", "anthropic", "https://api.anthropic.com", None)


def test_anthropic_itself_is_named_only_when_it_says_oauth() -> None:
    assert credential_mismatch(ANTHROPIC, "default", "subscription", 401, "invalid x-api-key") is None
    assert credential_mismatch(ANTHROPIC, "default", "subscription", 401, "OAuth authentication is currently "
                               "not supported.") == (
        "routes.yaml's default sends your Claude subscription login to provider 'anthropic' "
        "(https://api.anthropic.com), which answered HTTP 401: OAuth authentication is currently not supported. "
        "It needs an API key: run Claude Code with ANTHROPIC_API_KEY (logged out), or replace its "
        "`auth: passthrough` with `credentials:` holding a `key:` in routes.yaml")
    assert credential_mismatch(ANTHROPIC, "routes[3]", "api-key", 403, "this model needs an OAuth login") == (
        "routes.yaml's routes[3] sends your Anthropic API key to provider 'anthropic' (https://api.anthropic.com), "
        "which answered HTTP 403: this model needs an OAuth login. It needs a Claude subscription login: unset "
        "ANTHROPIC_API_KEY and log in to Claude Code (/login), or give 'anthropic' a login of its own "
        "(`modelmux login claude --label NAME --provider anthropic`)")


def test_only_passthrough_auth_failures_are_explained() -> None:
    keyed = Provider("zai", "anthropic", "https://api.z.ai/api/anthropic", None)
    assert credential_mismatch(keyed, "routes[0]", "subscription", 429, "slow down") is None
    assert credential_mismatch(keyed, "routes[0]", None, 401, "invalid api key") is None
    own = Provider("zai", "anthropic", "https://api.z.ai/api/anthropic", Auth("x-api-key", "{key}"))
    assert credential_mismatch(own, "routes[0]", "api-key", 401, "invalid api key") is None


@pytest.mark.parametrize("model, header, token", [
    ("glm-4.6", "authorization", f"Bearer {SUBSCRIPTION}"),  # sent by mitmproxy
    ("glm-relayed", "x-api-key", API_KEY),  # sent by the failover relay
])  # fmt: skip
def test_a_vendor_echoing_the_clients_token_gets_it_into_no_message_and_no_log(gateway, vendor, model, header,
                                                                             token) -> None:
    secret = token.removeprefix("Bearer ")
    vendor.gate = lambda request: Reply(401, json.dumps({"error": {"message": f"invalid api key {secret}"}}).encode())
    try:
        response = httpx.post(f"{gateway.url}/v1/messages", json={"model": model, **MESSAGE}, headers={header: token})
    finally:
        vendor.gate = None
    assert response.status_code == 401
    assert f"invalid api key client…{secret[-4:]}" in response.json()["error"]["message"]
    assert secret not in response.text
    assert secret not in gateway.log.read_text()
