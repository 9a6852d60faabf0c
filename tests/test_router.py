"""The real gateway routing real SDK requests: what the upstream receives, what the client gets."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import anthropic
import httpx
import pytest

from gateway import Gateway
from upstream import Reply, Stream, Upstream, message, message_events

ZAI_KEY = "sk-zai-aaaaaaaaaaaa1111"
KIMI_KEY = "sk-kimi-bbbbbbbbbbbb2222"
CLIENT_TOKEN = "sk-ant-oat01-client-subscription-token"


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, Upstream]]:
    with Upstream() as anthropic_up, Upstream() as zai, Upstream() as kimi:
        yield {"anthropic": anthropic_up, "zai": zai, "kimi": kimi}


@pytest.fixture(scope="module")
def gateway(upstreams: dict[str, Upstream], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    routes = f"""
providers:
  anthropic: {{protocol: anthropic, base_url: "{upstreams['anthropic'].url}", auth: passthrough}}
  zai:
    protocol: anthropic
    base_url: "{upstreams['zai'].url}/api/anthropic"
    credentials: [{{label: zai-main, key: "${{ZAI_KEY}}"}}]
    headers: {{x-vendor-team: modelmux-tests}}
    models: [glm-4.6]
  kimi:
    protocol: anthropic
    base_url: "{upstreams['kimi'].url}"
    auth: "Authorization: Bearer {{key}}"
    credentials: [{{label: kimi-a, key: "${{KIMI_KEY}}"}}]
routes:
  - {{match: claude-opus-4-1, provider: kimi, model: kimi-k2}}
  - {{match: "claude-*haiku*", provider: zai, model: glm-4.5-air}}
  - {{match: {{regex: "^kimi-"}}, provider: kimi}}
  - {{match: "raw-*", provider: zai, model: glm-raw, response_model: upstream}}
  - {{match: "warm-*", provider: zai, model: glm-warm, intercept: [warmup]}}
aliases: {{opus: claude-opus-4-1}}
profiles:
  claude: {{slots: {{sonnet: claude-sonnet-4-5}}, providers: [anthropic]}}
  vendors: {{slots: {{opus: claude-opus-4-1, haiku: claude-haiku-4-5}}, providers: [zai, kimi]}}
default: {{provider: anthropic}}
"""
    with Gateway(tmp_path_factory.mktemp("router"), routes, {"ZAI_KEY": ZAI_KEY, "KIMI_KEY": KIMI_KEY}) as gw:
        yield gw


@pytest.fixture(autouse=True)
def fresh(upstreams: dict[str, Upstream], gateway: Gateway) -> None:
    gateway.reset_credentials()
    for server in upstreams.values():
        server.received.clear()
        server.reply = __import__("upstream").anthropic_like


def client(gateway: Gateway, **headers: str) -> anthropic.Anthropic:
    return anthropic.Anthropic(base_url=gateway.url, auth_token=CLIENT_TOKEN, default_headers=headers, max_retries=0)


def ask(gateway: Gateway, model: str, **headers: str) -> anthropic.types.Message:
    return client(gateway, **headers).messages.create(
        model=model, max_tokens=16, messages=[{"role": "user", "content": "hi"}]
    )


def only(server: Upstream) -> dict:
    assert len(server.received) == 1, [r.path for r in server.received]
    return server.received[0].__dict__


@pytest.mark.parametrize(
    "model, provider, upstream_model",
    [
        ("claude-opus-4-1", "kimi", "kimi-k2"),  # exact
        ("opus", "kimi", "kimi-k2"),  # alias
        ("claude-3-5-haiku-20241022", "zai", "glm-4.5-air"),  # glob
        ("kimi-k2-turbo", "kimi", "kimi-k2-turbo"),  # regex, model unchanged
        ("glm-4.6", "zai", "glm-4.6"),  # the provider's model list
        ("claude-sonnet-4-5", "anthropic", "claude-sonnet-4-5"),  # default
    ],
)
def test_routes_by_model(gateway, upstreams, model, provider, upstream_model):
    answer = ask(gateway, model)
    assert answer.model == model  # the client sees the name it asked for
    assert answer.content[0].text == "Hello from the fake upstream."
    received = only(upstreams[provider])
    assert json.loads(received["body"])["model"] == upstream_model
    assert [len(s.received) for name, s in upstreams.items() if name != provider] == [0, 0]


def test_vendor_gets_its_key_and_never_the_client_token(gateway, upstreams):
    ask(gateway, "claude-haiku-4-5", **{"anthropic-version": "2023-06-01", "anthropic-beta": "tools-2024-04-04",
                                        "x-modelmux-profile": "vendors"})
    received = only(upstreams["zai"])
    headers = received["headers"]
    assert received["path"] == "/api/anthropic/v1/messages"
    assert headers["x-api-key"] == ZAI_KEY
    assert "authorization" not in headers
    assert headers["anthropic-version"] == "2023-06-01"
    assert headers["anthropic-beta"] == "tools-2024-04-04"
    assert headers["x-vendor-team"] == "modelmux-tests"
    assert headers["host"] == f"127.0.0.1:{upstreams['zai'].port}"
    assert not [h for h in headers if h.startswith("x-modelmux")]
    assert CLIENT_TOKEN not in json.dumps(headers)
    assert json.loads(received["body"]) == {
        "model": "glm-4.5-air", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}


def test_bearer_auth_format(gateway, upstreams):
    anthropic.Anthropic(base_url=gateway.url, api_key="client-api-key", max_retries=0).messages.create(
        model="kimi-k2", max_tokens=1, messages=[{"role": "user", "content": "hi"}])
    headers = only(upstreams["kimi"])["headers"]
    assert headers["authorization"] == f"Bearer {KIMI_KEY}"
    assert "x-api-key" not in headers


def test_passthrough_keeps_the_clients_own_token_and_body(gateway, upstreams):
    raw = b'{"model": "claude-sonnet-4-5",  "max_tokens": 3, "messages": [{"role": "user", "content": "hi"}]}'
    response = httpx.post(f"{gateway.url}/v1/messages?beta=true", content=raw, headers={
        "authorization": f"Bearer {CLIENT_TOKEN}", "x-api-key": "sk-ant-api-client", "content-type": "application/json",
        "anthropic-version": "2023-06-01", "x-modelmux-profile": "claude"})
    assert response.status_code == 200
    received = only(upstreams["anthropic"])
    assert received["path"] == "/v1/messages?beta=true"
    assert received["headers"]["authorization"] == f"Bearer {CLIENT_TOKEN}"
    assert received["headers"]["x-api-key"] == "sk-ant-api-client"
    assert "x-modelmux-profile" not in received["headers"]
    assert received["body"] == raw  # byte for byte: nothing to rewrite


def test_response_model_can_stay_the_upstreams(gateway, upstreams):
    assert ask(gateway, "raw-thing").model == "glm-raw"


def test_count_tokens_is_routed_like_messages(gateway, upstreams):
    count = client(gateway).messages.count_tokens(model="opus", messages=[{"role": "user", "content": "hi"}])
    assert count.input_tokens == 42
    received = only(upstreams["kimi"])
    assert received["path"] == "/v1/messages/count_tokens"
    assert json.loads(received["body"])["model"] == "kimi-k2"
    assert received["headers"]["authorization"] == f"Bearer {KIMI_KEY}"


def test_other_paths_pass_through_to_the_default(gateway, upstreams):
    upstreams["anthropic"].reply = lambda r: Reply(body=b'{"ok": true}')
    response = httpx.get(f"{gateway.url}/v1/files?limit=1", headers={"x-api-key": "client-key"})
    assert (response.status_code, response.json()) == (200, {"ok": True})
    received = only(upstreams["anthropic"])
    assert (received["method"], received["path"], received["headers"]["x-api-key"]) == ("GET", "/v1/files?limit=1", "client-key")


def test_streamed_answer_keeps_the_requested_model(gateway, upstreams):
    with client(gateway).messages.stream(model="opus", max_tokens=16, messages=[{"role": "user", "content": "hi"}]) as stream:
        events = [event.type for event in stream]
        final = stream.get_final_message()
    assert final.model == "opus"
    assert final.content[0].text == "Hello from the fake upstream."
    assert events[0] == "message_start" and events[-1] == "message_stop"
    assert json.loads(only(upstreams["kimi"])["body"])["stream"] is True


def test_streamed_passthrough_is_byte_for_byte(gateway, upstreams):
    pieces = message_events("claude-sonnet-4-5")
    upstreams["anthropic"].reply = lambda r: Stream(pieces)
    with httpx.stream("POST", f"{gateway.url}/v1/messages", json={"model": "claude-sonnet-4-5", "stream": True}) as r:
        assert r.headers["content-type"] == "text/event-stream"
        body = b"".join(r.iter_raw())
    assert body == b"".join(pieces)


@pytest.mark.parametrize("model", ["claude-sonnet-4-5", "opus"])  # passthrough, and with message_start rewritten
def test_first_event_arrives_while_the_upstream_holds_the_rest(gateway, upstreams, model):
    """The upstream sends message_start, then holds the next event for 1.5 s."""
    target = "anthropic" if model.startswith("claude") else "kimi"
    upstreams[target].reply = lambda r: Stream(message_events(r.json()["model"]), delays=[0, 1.5])
    sent = time.monotonic()
    arrivals: list[tuple[str, float]] = []
    with client(gateway).messages.stream(model=model, max_tokens=16, messages=[{"role": "user", "content": "hi"}]) as stream:
        for event in stream:
            arrivals.append((event.type, time.monotonic() - sent))
    assert arrivals[0][0] == "message_start"
    assert arrivals[0][1] < 1.0, arrivals  # well before the held event
    assert arrivals[-1][1] >= 1.5, arrivals
    assert stream.get_final_message().model == model


def test_gzip_requests_and_answers_survive_a_rewrite(gateway, upstreams):
    import gzip

    upstreams["kimi"].reply = lambda r: Reply(
        body=gzip.compress(json.dumps(message("kimi-k2")).encode()),
        headers={"content-type": "application/json", "content-encoding": "gzip"})
    response = httpx.post(f"{gateway.url}/v1/messages", json={"model": "opus", "max_tokens": 1},
                          headers={"accept-encoding": "gzip"})
    assert response.json()["model"] == "opus"
    assert only(upstreams["kimi"])["headers"]["accept-encoding"] == "identity"


def test_concurrent_requests_each_reach_their_provider(gateway, upstreams):
    models = ["opus", "claude-haiku-4-5", "claude-sonnet-4-5", "kimi-k2"] * 5
    answers: dict[int, str] = {}

    def run(i: int, model: str) -> None:
        answers[i] = ask(gateway, model).model

    threads = [threading.Thread(target=run, args=(i, m)) for i, m in enumerate(models)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert [answers[i] for i in range(len(models))] == models
    assert len(upstreams["kimi"].received) == 10
    assert {r.headers["authorization"] for r in upstreams["kimi"].received} == {f"Bearer {KIMI_KEY}"}
    assert {r.headers["x-api-key"] for r in upstreams["zai"].received} == {ZAI_KEY}
    assert all("x-api-key" not in r.headers for r in upstreams["anthropic"].received)


def test_no_secret_in_the_gateway_log(gateway):
    text = gateway.log.read_text()
    assert "POST" in text  # the log is really there
    for secret in (ZAI_KEY, KIMI_KEY, CLIENT_TOKEN):
        assert secret not in text


@contextmanager
def router_in_process(tmp_path, routes: str) -> Iterator:
    """The Router addon with its Settings, configured from `routes`, without a proxy."""
    from mitmproxy.test import taddons

    from modelmux.addons.credentials import Credentials
    from modelmux.addons.dashboard import Dashboard
    from modelmux.addons.direct import Direct
    from modelmux.addons.discovery import Discovery
    from modelmux.addons.failover import Failover
    from modelmux.addons.relay import Relay
    from modelmux.addons.router import Router
    from modelmux.addons.settings import Settings

    config = tmp_path / "routes.yaml"
    config.write_text(routes)
    settings = Settings()
    credentials = Credentials(settings)
    direct = Direct(credentials, Dashboard())
    router = Router(settings, credentials, direct, Relay(Failover(credentials)), Discovery(settings))
    with taddons.context(settings, router) as context:
        context.configure(settings, modelmux_config=str(config))
        yield router


def message_flow(path: bytes, body: bytes):
    from mitmproxy.test import tflow, tutils

    return tflow.tflow(req=tutils.treq(method=b"POST", path=path, content=body))


def test_an_internal_error_is_answered_never_forwarded_unrouted(monkeypatch, tmp_path):
    """A bug while routing must not let the flow go to the reverse target as it is."""
    from modelmux.addons import router as router_addon

    routes = "providers:\n  a: {protocol: anthropic, base_url: 'http://127.0.0.1:9', auth: passthrough}\ndefault: {provider: a}\n"
    with router_in_process(tmp_path, routes) as router:
        monkeypatch.setattr(router_addon.routing, "route", lambda *a: 1 / 0)
        flow = message_flow(b"/v1/messages", b'{"model": "m"}')
        asyncio.run(router.request(flow))
    assert flow.response.status_code == 500
    assert json.loads(flow.response.content) == {"type": "error", "error": {"type": "api_error", "message": (
        "modelmux failed to route this request (internal error; see the gateway log)")}}


def test_an_internal_error_is_logged_without_the_query(monkeypatch, tmp_path, caplog):
    """A client's query may carry a key (`?key=`, as Gemini's clients send it)."""
    from modelmux.addons import router as router_addon

    routes = "providers:\n  a: {protocol: anthropic, base_url: 'http://127.0.0.1:9', auth: passthrough}\ndefault: {provider: a}\n"
    with router_in_process(tmp_path, routes) as router:
        monkeypatch.setattr(router_addon.routing, "route", lambda *a: 1 / 0)
        asyncio.run(router.request(message_flow(b"/v1/messages?key=sk-query-key-0000111122223333", b'{"model": "m"}')))
    assert "routing POST /v1/messages failed" in caplog.text
    assert "sk-query-key" not in caplog.text


@pytest.mark.parametrize("headers", [{"authorization": "Bearer modelmux-placeholder"}, {"x-api-key": "modelmux-placeholder"}])
def test_the_placeholder_token_never_reaches_a_passthrough_upstream(gateway, upstreams, headers):
    for path in ("/v1/messages", "/v1/files"):
        response = httpx.post(f"{gateway.url}{path}", json={"model": "claude-sonnet-4-5"}, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"] == {"type": "authentication_error", "message": (
            "provider 'anthropic' uses the client's own Anthropic credentials (auth: passthrough), but this "
            "request carries modelmux's placeholder token; log in to Claude Code (or set ANTHROPIC_API_KEY), "
            "or use a profile whose providers have credentials of their own")}
    assert upstreams["anthropic"].received == []
    # vendors get their own key instead, so the placeholder is fine there
    assert httpx.post(f"{gateway.url}/v1/messages", json={"model": "opus"}, headers=headers).status_code == 200


def test_the_base_url_probe_is_answered_locally(gateway, upstreams):
    response = httpx.head(gateway.url + "/")  # Claude Code sends this before its first request
    assert response.status_code == 200
    assert httpx.get(gateway.url + "/").json() == {"service": "modelmux", "version": "0.1.0"}
    assert [len(s.received) for s in upstreams.values()] == [0, 0, 0]


def test_warmup_is_answered_locally_on_routes_that_intercept_it(gateway, upstreams):
    warmup = [{"role": "user", "content": [{"type": "text", "text": "Warmup"}]}]
    answer = client(gateway).messages.create(model="warm-1", max_tokens=1, messages=warmup)
    assert (answer.model, answer.content[0].text, answer.stop_reason) == ("warm-1", "OK", "end_turn")
    with client(gateway).messages.stream(model="warm-1", max_tokens=1, messages=warmup) as stream:
        assert stream.get_final_message().content[0].text == "OK"
    assert upstreams["zai"].received == []
    # only the last message decides: a conversation that once said "Warmup" is real
    history = [*warmup, {"role": "assistant", "content": "OK"}, {"role": "user", "content": "now a real question"}]
    client(gateway).messages.create(model="warm-1", max_tokens=1, messages=history)
    assert json.loads(only(upstreams["zai"])["body"])["model"] == "glm-warm"
    # and routes without `intercept` forward it
    ask_warmup = client(gateway).messages.create(model="claude-haiku-4-5", max_tokens=1, messages=warmup)
    assert ask_warmup.content[0].text == "Hello from the fake upstream."


def test_the_dashboard_comment_keeps_what_the_translator_adds(tmp_path):
    """count_tokens on a translated route is answered locally; mitmweb's comment says both
    where the request was routed and that nobody upstream was asked."""
    routes = ("providers:\n  oai: {protocol: openai-chat, base_url: 'http://127.0.0.1:9/v1', "
              "credentials: [{label: main, key: sk-test-key-1234}]}\ndefault: {provider: oai, model: gpt-x}\n")
    from modelmux.credentials import snapshot

    with router_in_process(tmp_path, routes) as router:
        flow = message_flow(b"/v1/messages/count_tokens", b'{"model": "m", "messages": [{"role": "user", "content": "hi"}]}')
        asyncio.run(router.request(flow))
        credential = snapshot.snapshot(router.credentials.pools)["providers"]["oai"]["credentials"][0]
    assert flow.response.status_code == 200
    assert flow.comment == "m → oai/gpt-x [default] · count_tokens answered locally (estimate)"
    assert (credential["in_flight"], credential["requests"]) == (0, 0)  # no credential taken for a local answer
