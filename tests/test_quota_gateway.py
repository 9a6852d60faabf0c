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
from prometheus_client.parser import text_string_to_metric_families
from upstream import Received, Reply, Stream, Upstream, message, message_events

RESET = int(time.time()) + 3 * 3600
# What the fake Anthropic answers each key with: the 5-hour window's use differs per key.
USED = {"sk-ant-one-0000": "0.25", "sk-ant-a-1111": "0.9", "sk-ant-b-2222": "0.3", "client-login-token-9999": "0.5"}


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
                      headers={"authorization": "Bearer client-login-token-9999", "anthropic-version": "2023-06-01"})


def rate_limit_headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k.startswith("anthropic-ratelimit-")}


@pytest.mark.parametrize("model", ["claude-direct", "claude-relay"])  # mitmproxy's own path, the relay
@pytest.mark.parametrize("stream", [False, True])
def test_passthrough_hands_the_client_the_rate_limit_headers_unchanged(setup, model, stream):
    upstream, gateway = setup
    answer = ask(gateway, model, stream)
    assert answer.status_code == 200, answer.text
    assert rate_limit_headers(answer) == unified("client-login-token-9999")
    assert [key_of(r) for r in upstream.received] == ["client-login-token-9999"]
    refused = ask(gateway, model, stream, "refuse")  # the 5-hour limit, as Claude Code shows it
    assert refused.status_code == 429
    assert rate_limit_headers(refused) == unified("client-login-token-9999", "rejected")
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
    # The same in /metrics, as Prometheus parses it.
    metrics = httpx.get(f"{gateway.url}/metrics", timeout=5).text
    gauges = {(s.name, s.labels.get("provider"), s.labels.get("credential"), s.labels.get("window")): s.value
              for family in text_string_to_metric_families(metrics) for s in family.samples
              if s.name.startswith("modelmux_quota_")}
    assert gauges == {
        **{("modelmux_quota_used_ratio", p, c, "5h"): float(USED[k]) for p, c, k in PLACES},
        **{("modelmux_quota_used_ratio", p, c, "7d"): 0.125 for p, c, _ in PLACES},
        **{("modelmux_quota_reset_timestamp_seconds", p, c, "5h"): RESET for p, c, _ in PLACES},
        **{("modelmux_quota_reset_timestamp_seconds", p, c, "7d"): RESET + 86400 for p, c, _ in PLACES},
        **{("modelmux_quota_left_ratio", p, c, None): round(1 - float(USED[k]), 6) for p, c, k in PLACES},
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
