"""Quota in view, through the real gateway: Anthropic's unified rate-limit headers reach
the client unchanged on both send paths (Claude Code's status line and near-limit
warnings read them), and each pooled credential's quota is in the pools' state
(`modelmux status --json`) and steers `most-quota`."""

from __future__ import annotations

import json
import time

from pathlib import Path

import httpx
import pytest
from mitmproxy import io
from leaks import find_leaks, flows_in
from prometheus_client.parser import text_string_to_metric_families
from test_cli_credentials import run
from upstream import Received, Reply, Stream, Upstream, message, message_events

from modelmux.secrets import fingerprint

RESET = int(time.time()) + 3 * 3600
CLIENT = "sk-ant-oat01-client-login-9999"  # the client's own Claude subscription login, on passthrough
# What the fake Anthropic answers each key with: the 5-hour window's use differs per key.
USED = {"sk-ant-one-0000": "0.25", "sk-ant-a-1111": "0.9", "sk-ant-b-2222": "0.3", CLIENT: "0.5"}


# The pooled credentials the fake answers with a quota: provider, label, key.
PLACES = [("one", "one", "sk-ant-one-0000"), ("pool", "a", "sk-ant-a-1111"), ("pool", "b", "sk-ant-b-2222")]


def unified(key: str, status: str = "allowed") -> dict[str, str]:
    return {
        "anthropic-ratelimit-unified-status": status,
        "anthropic-ratelimit-unified-reset": str(RESET),
        "anthropic-ratelimit-unified-representative-claim": "five_hour",
        "anthropic-ratelimit-unified-5h-utilization": "1.0" if status == "rejected" else USED.get(key, "0.0"),
        "anthropic-ratelimit-unified-5h-reset": str(RESET),
        "anthropic-ratelimit-unified-5h-status": status,
        "anthropic-ratelimit-unified-7d-utilization": "0.125",
        "anthropic-ratelimit-unified-7d-reset": str(RESET + 86400),
        "anthropic-ratelimit-unified-7d-status": "allowed",
    }


def key_of(request: Received) -> str:
    return request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix("Bearer ")


def anthropic_with_quota(request: Received):
    """Anthropic's Messages API with a subscription's headers; `refuse` in the prompt: its 429."""
    body = request.json()
    key = key_of(request)
    if "refuse" in json.dumps(body["messages"]):
        error = {"type": "error", "error": {"type": "rate_limit_error", "message": "5-hour limit reached"}}
        return Reply(429, json.dumps(error).encode(), {"content-type": "application/json", "retry-after": "7",
                                                       **unified(key, "rejected")})
    if body.get("stream"):
        return Stream(message_events(body["model"]), headers={"content-type": "text/event-stream", **unified(key)})
    return Reply(body=json.dumps(message(body["model"])).encode(),
                 headers={"content-type": "application/json", **unified(key)})


def routes(url: str) -> str:
    """Every provider is the fake Anthropic: passthrough (alone, and with a fallback: the
    relay), a single key (mitmproxy's own path) and a pool of two (the relay)."""
    def anthropic(more: str) -> str:
        return f'{{protocol: anthropic, base_url: "{url}", {more}}}'

    return f"""
providers:
  anthropic: {anthropic("auth: passthrough")}
  spare: {anthropic("credentials: [{label: spare, key: sk-spare-3333}]")}
  one: {anthropic("credentials: [{label: one, key: sk-ant-one-0000}]")}
  pool: {anthropic("strategy: most-quota, credentials: [{label: a, key: sk-ant-a-1111}, {label: b, key: sk-ant-b-2222}]")}
routes:
  - {{match: "claude-direct", provider: anthropic}}
  - {{match: "claude-relay", provider: anthropic, fallback: [spare]}}
  - {{match: "one-*", provider: one}}
  - {{match: "pool-*", provider: pool}}
default: null
"""


@pytest.fixture
def setup(upstream: Upstream, start_gateway, tmp_path: Path):
    upstream.reply = anthropic_with_quota
    gateway = start_gateway(routes(upstream.url), extra_args=["-w", str(tmp_path / "flows.mitm")])
    gateway.flows = tmp_path / "flows.mitm"
    return upstream, gateway


def summary_of(gateway, model: str) -> tuple[dict, str]:
    """The Dashboard's summary and comment of the last flow for `model`, once -w wrote it."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with gateway.flows.open("rb") as file:
            found = [f for f in io.FlowReader(file).stream()
                     if (f.metadata.get("modelmux") or {}).get("requested_model") == model]
        if found and "summary" in found[-1].metadata["modelmux"]:
            return found[-1].metadata["modelmux"]["summary"], found[-1].comment
        time.sleep(0.05)
    raise AssertionError(f"no flow for {model} was saved")


def ask(gateway, model: str, stream: bool, text: str = "hi") -> httpx.Response:
    body = {"model": model, "max_tokens": 16, "stream": stream, "messages": [{"role": "user", "content": text}]}
    return httpx.post(f"{gateway.url}/v1/messages", json=body, timeout=15,
                      headers={"authorization": f"Bearer {CLIENT}", "anthropic-version": "2023-06-01"})


def quota_gauges(gateway) -> dict[tuple, float]:
    """/metrics' quota gauges, as Prometheus parses them, by name, provider, credential, login and window."""
    metrics = httpx.get(f"{gateway.url}/metrics", timeout=5).text
    return {(s.name, s.labels.get("provider"), s.labels.get("credential"), s.labels.get("login"),
             s.labels.get("window")): s.value
            for family in text_string_to_metric_families(metrics) for s in family.samples
            if s.name.startswith("modelmux_quota_")}


def rate_limit_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("anthropic-ratelimit-")}


@pytest.mark.parametrize("model", ["claude-direct", "claude-relay"])  # mitmproxy's own path, the relay
@pytest.mark.parametrize("stream", [False, True])
def test_passthrough_hands_the_client_the_rate_limit_headers_unchanged(setup, model, stream):
    upstream, gateway = setup
    answer = ask(gateway, model, stream)
    assert answer.status_code == 200, answer.text
    assert rate_limit_headers(answer) == unified(CLIENT)
    assert [key_of(r) for r in upstream.received] == [CLIENT]
    refused = ask(gateway, model, stream, "refuse")  # the 5-hour limit, as Claude Code shows it
    assert refused.status_code == 429
    assert rate_limit_headers(refused) == unified(CLIENT, "rejected")
    assert refused.headers["retry-after"] == "7"


def test_each_credential_keeps_its_quota_on_both_paths(setup):
    upstream, gateway = setup
    assert ask(gateway, "one-x", stream=True).status_code == 200  # mitmproxy's own path
    # The relay (two keys), most-quota: a is tried first (nothing known), then b (unknown: full),
    # then b again, which has more left than a.
    for _ in range(3):
        assert ask(gateway, "pool-x", stream=False).status_code == 200
    assert [key_of(r) for r in upstream.received] == ["sk-ant-one-0000", "sk-ant-a-1111", "sk-ant-b-2222",
                                                      "sk-ant-b-2222"]
    document = gateway.credentials()
    quotas = {(name, c["label"]): c["quota"] for name, pool in document["providers"].items()
              for c in pool["credentials"]}
    assert quotas[("spare", "spare")] is None  # never asked
    for provider, label, key in PLACES:
        seen = quotas[(provider, label)]
        assert (seen["source"], seen["status"], seen["binding"]) == ("anthropic", "allowed", "five_hour")
        assert [(w["name"], w["used"], w["status"]) for w in seen["windows"]] == [
            ("5h", float(USED[key]), "allowed"), ("7d", 0.125, "allowed")]
        assert seen["left"] == round(1 - float(USED[key]), 4)
        assert seen["windows"][0]["resets_at"] == time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(RESET))
    # The same in /metrics, as Prometheus parses it (`login` is empty: no label, to Prometheus).
    assert quota_gauges(gateway) == {
        **{("modelmux_quota_used_ratio", p, c, "", "5h"): float(USED[k]) for p, c, k in PLACES},
        **{("modelmux_quota_used_ratio", p, c, "", "7d"): 0.125 for p, c, _ in PLACES},
        **{("modelmux_quota_reset_timestamp_seconds", p, c, "", "5h"): RESET for p, c, _ in PLACES},
        **{("modelmux_quota_reset_timestamp_seconds", p, c, "", "7d"): RESET + 86400 for p, c, _ in PLACES},
        **{("modelmux_quota_left_ratio", p, c, "", None): round(1 - float(USED[k]), 6) for p, c, k in PLACES},
    }
    # A 429 that spends the window is kept too: b has nothing left, so a is picked again.
    assert ask(gateway, "pool-x", stream=True, text="refuse").status_code == 429  # b, then a: both refuse
    after = {c["label"]: c["quota"] for c in gateway.credentials()["providers"]["pool"]["credentials"]}
    assert (after["b"]["status"], after["b"]["left"]) == ("rejected", 0.0)


@pytest.mark.parametrize("model", ["claude-direct", "claude-relay", "one-x", "pool-x"])
def test_the_dashboard_summary_shows_the_quota_the_answer_named(setup, model):
    upstream, gateway = setup
    assert ask(gateway, model, stream=True).status_code == 200
    summary, comment = summary_of(gateway, model)
    key = key_of(upstream.received[-1])
    assert summary["quota"]["source"] == "anthropic"
    assert [(w["name"], w["used"]) for w in summary["quota"]["windows"]] == [("5h", float(USED[key])), ("7d", 0.125)]
    assert summary["quota"]["left"] == round(1 - float(USED[key]), 4)
    assert f"quota 5h {float(USED[key]) * 100:.0f}%, 7d 12%" in comment


def iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))


def status_json(gateway, capsys, monkeypatch) -> tuple[dict, str, str]:
    """`modelmux status --json` of the gateway, the text it is made from, and `modelmux status`."""
    monkeypatch.setenv("MODELMUX_STATE_DIR", gateway.env["MODELMUX_STATE_DIR"])
    where = ["--config", str(gateway.config), "--port", str(gateway.port)]
    code, out, err = run(capsys, "status", "--json", *where)
    assert code == 0, err
    text = run(capsys, "status", *where)[1]
    return json.loads(out), out, text


def login_document(found: dict, status: str, used: float, seen_from: float, seen_to: float) -> dict:
    """The client's login as status must show it; its times, which depend on the clock, are
    checked here and taken from `found`."""
    seen = found["quota"]["seen_at"]
    assert iso(seen_from - 1) <= seen <= iso(seen_to)
    lefts = [w["seconds_left"] for w in found["quota"]["windows"]]
    assert RESET - seen_to - 1 <= lefts[0] <= RESET - seen_from and lefts[1] == lefts[0] + 86400
    return {"provider": "anthropic", "login": fingerprint(CLIENT), "kind": "subscription", "quota": {
        "source": "anthropic", "left": 0.0 if status == "rejected" else round(1 - used, 4), "status": status,
        "resets_at": iso(RESET), "binding": "five_hour", "seen_at": seen,
        "windows": [
            {"name": "5h", "used": used, "resets_at": iso(RESET), "seconds_left": lefts[0], "status": status,
             "reset": False},
            {"name": "7d", "used": 0.125, "resets_at": iso(RESET + 86400), "seconds_left": lefts[1],
             "status": "allowed", "reset": False},
        ]}}


@pytest.mark.parametrize("model", ["claude-direct", "claude-relay"])  # mitmproxy's own path, the relay
@pytest.mark.parametrize("stream", [False, True])
def test_the_clients_own_login_keeps_its_quota_on_both_paths(setup, model, stream, capsys, monkeypatch):
    """Most people pass their own Claude subscription through: status, /metrics and the
    dashboard show its quota by a fingerprint of its token, and never the token."""
    upstream, gateway = setup
    login = fingerprint(CLIENT)
    assert len(login) == 16 and CLIENT not in login
    before = time.time()
    assert ask(gateway, model, stream).status_code == 200
    report, shown, text = status_json(gateway, capsys, monkeypatch)
    logins = report["credentials"]["client_logins"]
    assert logins == [login_document(logins[0], "allowed", 0.5, before, time.time())]
    assert "client logins on passthrough (by a fingerprint of their token):\n" \
           f"  anthropic  client's subscription login {login}\n    quota (anthropic, seen " in text
    assert quota_gauges(gateway) == {
        ("modelmux_quota_used_ratio", "anthropic", "client token", login, "5h"): 0.5,
        ("modelmux_quota_used_ratio", "anthropic", "client token", login, "7d"): 0.125,
        ("modelmux_quota_reset_timestamp_seconds", "anthropic", "client token", login, "5h"): RESET,
        ("modelmux_quota_reset_timestamp_seconds", "anthropic", "client token", login, "7d"): RESET + 86400,
        ("modelmux_quota_left_ratio", "anthropic", "client token", login, None): 0.5,
    }
    summary, _ = summary_of(gateway, model)
    assert (summary["credential"], summary["login"]) == ("client token", login)
    # Its 429, which spends the window, is kept too (the relay then tries its fallback).
    before = time.time()
    assert ask(gateway, model, stream, "refuse").status_code == 429
    logins = status_json(gateway, capsys, monkeypatch)[0]["credentials"]["client_logins"]
    assert logins == [login_document(logins[0], "rejected", 1.0, before, time.time())]
    assert summary_of(gateway, model)[0]["login"] == login
    metrics = httpx.get(f"{gateway.url}/metrics", timeout=5).content
    artefacts = {"status --json": shown.encode(), "status": text.encode(), "/metrics": metrics,
                 "the flows": gateway.flows.read_bytes()}
    assert find_leaks(artefacts, {"the client's token": CLIENT}) == []
    assert all(CLIENT[:12] not in data.decode() for data in artefacts.values())  # not even its prefix
    sent = [f for f in flows_in(gateway.flows) if f.metadata["modelmux"].get("requested_model") == model]
    assert len(sent) == 2  # both requests' flows were searched


def test_the_quota_survives_a_restart_as_it_was_seen(setup):
    """After a restart status shows each credential's and login's quota as their last
    answer named it, with when that was, until the next answer says more."""
    upstream, gateway = setup
    started = time.time()
    assert ask(gateway, "one-x", stream=False).status_code == 200
    assert ask(gateway, "claude-direct", stream=True).status_code == 200
    before = gateway.credentials()
    gateway.stop()
    gateway.start()
    after = gateway.credentials()

    def as_seen(document: dict) -> list:
        """The quotas, without the seconds left, which run on."""
        found = [c["quota"] for c in document["providers"]["one"]["credentials"]]
        found += [login["quota"] for login in document["client_logins"]]
        for seen in found:
            for window in seen["windows"]:
                assert 0 < window.pop("seconds_left") <= RESET + 86400 - started
        return found

    assert [login["login"] for login in after["client_logins"]] == [fingerprint(CLIENT)]
    kept = as_seen(after)
    assert kept == as_seen(before) and [q["windows"][0]["used"] for q in kept] == [0.25, 0.5]
    assert [c["quota"] for c in after["providers"]["spare"]["credentials"]] == [None]  # never asked
    assert len(upstream.received) == 2  # nothing asked since the restart
