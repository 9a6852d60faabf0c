"""No real key at any moment, in flight included: requests of every kind, on both send
paths, first end (their upstreams quoting the credential they got) and then wait for an
upstream that never answers, while mitmweb's API is polled and its websocket push kept;
the gateway stops with them still waiting, so mitmproxy writes them to the `-w` file.
No provider key, oauth token, gateway key or client login shows in mitmweb, the `-w`
file, the recording or the log; the credential headers still show, redacted."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from gateway import Gateway
from leaks import Poller, Updates, describe, find_leaks, finished_flows, flows_in, mitmweb_surfaces
from upstream import Behaviour, Hang, Received, Reply, Upstream

from modelmux.oauth import tokens
from modelmux.oauth.tokens import Token

SECRETS = {
    "solo-main": "sk-solo-inflight-ssssssssssss-1111",  # openai-chat, one key: mitmproxy sends it
    "gem-main": "gem-inflight-key-gggggggggggg-2222",  # gemini, one key: x-goog-api-key
    "vendor-main": "vendor-inflight-vvvvvvvvvv-3333",  # Anthropic-compatible, one key: x-api-key
    "pool-a": "sk-pool-inflight-aaaaaaaaaaaa-4444",  # openai-chat, two keys: the failover relay
    "pool-b": "sk-pool-inflight-bbbbbbbbbbbb-4445",
    "max": "at-max-inflight-dddddddddddd-5555",  # a Claude subscription login's access token (relay)
    "max refresh": "rt-max-inflight-eeeeeeeeeeee-5556",
    "gateway key": "mm-gateway-inflight-kkkkkkkk-7777",
    "client login": "sk-ant-oat01-inflight-cccccccc-8888",  # the client's own, passed through to `mine`
}
ENV = {"SOLO": SECRETS["solo-main"], "GEM": SECRETS["gem-main"], "VENDOR": SECRETS["vendor-main"],
       "POOL_A": SECRETS["pool-a"], "POOL_B": SECRETS["pool-b"], "GATEWAY_KEY": SECRETS["gateway key"]}
# model → the path that sends it
MODELS = {"solo-x": "mitmproxy", "gem-x": "mitmproxy", "vendor-x": "mitmproxy", "mine-x": "mitmproxy",
          "pool-x": "relay", "max-x": "relay"}
# model → the auth header its flow shows in flight: name, redacted value
SHOWN = {"solo-x": ("authorization", "Bearer solo-main…1111"), "gem-x": ("x-goog-api-key", "gem-main…2222"),
         "vendor-x": ("x-api-key", "vendor-main…3333"), "mine-x": ("authorization", "Bearer client…8888"),
         "pool-x": ("authorization", "Bearer client…8888"), "max-x": ("authorization", "Bearer client…8888")}


def routes(url: str, login: Path) -> str:
    return f"""
server:
  api_key: "${{GATEWAY_KEY}}"
providers:
  solo: {{protocol: openai-chat, base_url: "{url}/solo/v1", credentials: [{{label: solo-main, key: "${{SOLO}}"}}]}}
  gem: {{protocol: gemini, base_url: "{url}/v1beta", credentials: [{{label: gem-main, key: "${{GEM}}"}}]}}
  vendor: {{protocol: anthropic, base_url: "{url}/vendor", credentials: [{{label: vendor-main, key: "${{VENDOR}}"}}]}}
  mine: {{protocol: anthropic, base_url: "{url}/mine", auth: passthrough}}
  pool:
    protocol: openai-chat
    base_url: "{url}/pool/v1"
    credentials: [{{label: pool-a, key: "${{POOL_A}}"}}, {{label: pool-b, key: "${{POOL_B}}"}}]
  sub: {{protocol: anthropic, base_url: "{url}/sub", credentials: [{{label: max, oauth: "{login}"}}]}}
routes:
  - {{match: "solo-*", provider: solo, model: solo-model}}
  - {{match: "gem-*", provider: gem, model: gem-model}}
  - {{match: "vendor-*", provider: vendor, model: vendor-model}}
  - {{match: "mine-*", provider: mine}}
  - {{match: "pool-*", provider: pool, model: pool-model}}
  - {{match: "max-*", provider: sub}}
default: null
"""


@pytest.fixture
def server() -> Iterator[Upstream]:
    with Upstream() as fake:
        fake.reply = lambda request: Hang()
        yield fake


def quoting(request: Received) -> Behaviour:
    """A 400 that quotes the credential it got, as some upstreams' errors do."""
    token = (request.headers.get("x-api-key") or request.headers.get("x-goog-api-key")
             or request.headers.get("authorization", ""))
    error = {"type": "invalid_request_error", "message": f"this request is malformed (credential {token})"}
    return Reply(400, json.dumps({"type": "error", "error": error}).encode())


def send(gateway: Gateway, model: str) -> None:
    # mitmproxy sends a single upstream's streams; a JSON answer is always the relay's.
    body = {"model": model, "max_tokens": 16, "stream": model != "max-x",
            "messages": [{"role": "user", "content": "hi"}]}
    headers = {"authorization": f"Bearer {SECRETS['client login']}", "x-modelmux-key": SECRETS["gateway key"],
               "anthropic-version": "2023-06-01"}
    try:
        httpx.post(f"{gateway.url}/v1/messages", json=body, headers=headers, timeout=60)
    except httpx.HTTPError:
        pass  # the gateway stopped with the request in flight


def send_all(gateway: Gateway, models: list[str]) -> list[threading.Thread]:
    senders = [threading.Thread(target=send, args=(gateway, model), daemon=True) for model in models]
    for sender in senders:
        sender.start()
    return senders


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.mark.parametrize("path", ["mitmproxy", "relay"])
def test_no_key_is_visible_while_requests_wait_for_their_upstream(tmp_path: Path, server: Upstream, path: str) -> None:
    models = [model for model, sent_by in MODELS.items() if sent_by == path]
    login = tmp_path / "max.json"
    tokens.write(login, Token(kind="claude", access_token=SECRETS["max"], refresh_token=SECRETS["max refresh"],
                              expires_at=time.time() + 3600, email="max@example.com", token_url=f"{server.url}/token"))
    saved, recorded = tmp_path / "flows.mitm", tmp_path / "recorded.mitm"
    gateway = Gateway(tmp_path, routes(server.url, login), ENV,
                      ["-w", str(saved), "--set", f"modelmux_record={recorded}"], web=True)
    shown: dict[str, bytes] = {}
    with gateway:
        updates, poller = Updates(gateway), Poller(gateway, SECRETS)
        # Flows that end first, each upstream quoting the credential it got: the recording keeps these.
        server.reply = quoting
        for sender in send_all(gateway, models):
            sender.join(30)
        wait_for(lambda: len(finished_flows(gateway, len(models) + 1)) > len(models), "the first flows to end")
        server.received.clear()
        # Then requests that wait for their upstream's first byte, as long as the test looks.
        server.reply = lambda request: Hang()
        send_all(gateway, models)
        wait_for(lambda: len(server.received) == len(models), "every request to reach the upstream")
        got = json.dumps([r.headers for r in server.received])  # the upstreams got the real credentials
        sent = ("solo-main", "gem-main", "vendor-main", "client login") if path == "mitmproxy" else ("max",)
        assert all(SECRETS[name] in got for name in sent)
        assert path == "mitmproxy" or SECRETS["pool-a"] in got or SECRETS["pool-b"] in got
        flows = gateway.web_api("/flows").json()
        in_flight = {f["comment"].split(" ")[0]: f for f in flows
                     if f.get("response") is None and f["request"]["method"] == "POST"}
        assert {model: f["comment"].endswith("failover relay") for model, f in in_flight.items()} == {
            model: path == "relay" for model in models}
        shown.update(mitmweb_surfaces(gateway, flows))
        poller.wait(3)
        leaks = poller.stop()
        shown["the websocket push (/updates)"] = pushed = updates.close()
        assert pushed.count(b'"flows/add"') >= 2 * len(models)
    # Stopped with requests in flight: mitmproxy's Save wrote them at `done`.
    assert sum(f.response is None for f in flows_in(saved)) == len(models)
    assert len(flows_in(recorded)) == len(models)  # the flows that ended
    shown[f"-w {saved.name}"] = saved.read_bytes()
    shown[f"the recording {recorded.name}"] = recorded.read_bytes()
    shown["the gateway's console log"] = gateway.log.read_bytes()
    leaks += find_leaks(shown, SECRETS)
    assert not leaks, describe(leaks)
    # The dashboard still shows each credential header, redacted.
    for model in models:
        assert SHOWN[model] in [tuple(h) for h in in_flight[model]["request"]["headers"]], model
