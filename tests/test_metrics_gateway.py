"""GET /metrics through the real gateway, parsed with prometheus_client's own parser and
held to what the fake upstream saw: every protocol on both send paths (mitmproxy's own,
`*-solo`; the failover relay, `*-pool`) counts the same."""

from __future__ import annotations

import json
from collections import Counter

import httpx
import pytest
from both_paths import (  # noqa: F401 (fixtures: fresh, gateway, server)
    MODELS, PATHS, PROTOCOLS, first, fresh, gateway, key_of, post, server,
)
from prometheus_client.parser import text_string_to_metric_families
from upstream import Reply

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(gateway, **headers: str) -> Samples:
    response = httpx.get(f"{gateway.url}/metrics", headers=headers, timeout=5)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def total(samples: Samples, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(value for (found, have), value in samples.items() if found == name and wanted <= have)


def grew(before: Samples, after: Samples, name: str, **labels: str) -> float:
    return total(after, name, **labels) - total(before, name, **labels)


def error_reply(status: int, error_type: str, **headers: str) -> Reply:
    body = {"type": "error", "error": {"type": error_type, "message": f"the fake says {status}"}}
    return Reply(status, json.dumps(body).encode(), {"content-type": "application/json", **headers})


def test_requests_attempts_tokens_and_times_match_the_upstreams_count(gateway, server):
    before = scrape(gateway)
    server.reply = first(error_reply(429, "rate_limit_error", **{"retry-after": "30"}))  # vend-pool's first key
    sent: Counter[tuple[str, str]] = Counter()
    for short in ["vend", *(s for s in PROTOCOLS if s != "vend")]:
        for path in ("pool", "solo"):  # the relay first: its first key gets the 429
            for stream in (False, True):
                answer = post(gateway, f"{short}-{path}", stream)
                assert answer.status_code == 200, answer.text
                sent[(f"{short}-{path}", MODELS[short])] += 1
    after = scrape(gateway)
    usage = httpx.get(f"{gateway.url}/modelmux/usage?days=1", timeout=5).json()

    for (provider, model), count in sent.items():
        assert grew(before, after, "modelmux_requests_total", provider=provider, model=model, status="200") == count
        assert grew(before, after, "modelmux_errors_total", provider=provider) == 0
        # Every fake answers 12 input and 7 output tokens, in any protocol and either form.
        assert grew(before, after, "modelmux_tokens_total", provider=provider, model=model, type="input") == 12 * count
        assert grew(before, after, "modelmux_tokens_total", provider=provider, model=model, type="output") == 7 * count
        for histogram in ("modelmux_time_to_first_token_seconds", "modelmux_request_duration_seconds"):
            assert grew(before, after, f"{histogram}_count", provider=provider, model=model) == count
            assert grew(before, after, f"{histogram}_bucket", provider=provider, model=model, le="+Inf") == count
            assert grew(before, after, f"{histogram}_sum", provider=provider, model=model) > 0
    # Each attempt the fake received, by the key it carried and what it answered.
    answered = Counter((f"{name.split('-')[0]}-{'solo' if name.endswith('solo') else 'pool'}",
                        name.split("-")[1], "429" if i == 0 else "200")
                       for i, name in enumerate(key_of(r) for r in server.received))
    assert answered[("vend-pool", "a", "429")] == 1
    for (provider, credential, status), count in answered.items():
        assert grew(before, after, "modelmux_upstream_attempts_total", provider=provider, credential=credential,
                    status=status) == count, (provider, credential, status)
    assert sum(grew(before, after, "modelmux_upstream_attempts_total", provider=p) for p, _ in sent) == \
        len(server.received)
    # The same requests as the usage statistics (read from the same summaries), row by row.
    for row in usage["rows"]:
        labels = {"provider": row["provider"], "model": row["model"], "credential": row["credential"]}
        assert total(after, "modelmux_requests_total", **labels) == row["requests"]
        for kind, field in [("input", "input_tokens"), ("output", "output_tokens"), ("cache_read", "cached_tokens"),
                            ("cache_write", "cache_write_tokens")]:
            assert total(after, "modelmux_tokens_total", type=kind, **labels) == row[field]
    assert all(labels == labels | {("client_key", "")}
               for (name, labels) in after if name == "modelmux_requests_total")


@pytest.mark.parametrize("path", PATHS)
def test_errors_are_counted_by_type(gateway, server, path):
    before = scrape(gateway)
    server.reply = lambda request: error_reply(529, "overloaded_error")
    answer = post(gateway, f"vend-{path}", stream=True)
    assert answer.status_code in (503, 529)
    after = scrape(gateway)
    provider = f"vend-{path}"
    status = str(answer.status_code)
    assert grew(before, after, "modelmux_requests_total", provider=provider, status=status) == 1
    assert grew(before, after, "modelmux_errors_total", provider=provider, type="overloaded_error") == 1
    assert grew(before, after, "modelmux_upstream_attempts_total", provider=provider, status="529") == \
        len(server.received)
    assert grew(before, after, "modelmux_tokens_total", provider=provider) == 0


def test_credential_gauges_are_read_when_scraped(gateway, server):
    server.reply = first(error_reply(429, "rate_limit_error", **{"retry-after": "60"}))
    assert post(gateway, "chat-pool", stream=False).status_code == 200  # key a cools, b answers
    cooled = key_of(server.received[0]).split("-")[1]
    samples = scrape(gateway)
    state = {labels: value for (name, labels), value in samples.items() if name == "modelmux_credential_state"}
    assert state[frozenset({("provider", "chat-pool"), ("credential", cooled), ("state", "cooling")})] == 1
    assert state[frozenset({("provider", "chat-pool"), ("credential", cooled), ("state", "healthy")})] == 0
    assert total(samples, "modelmux_credential_state", provider="chat-pool", state="healthy") == 1
    assert 50 < total(samples, "modelmux_credential_cooldown_seconds", provider="chat-pool", credential=cooled) <= 60
    assert total(samples, "modelmux_credential_in_flight") == 0
    assert total(samples, "modelmux_breaker_state", provider="chat-pool", state="closed") == 1


ROUTES = """
server: {api_key: "${GATEWAY_KEY}"}
providers:
  zai: {protocol: anthropic, base_url: "URL", credentials: [{label: main, key: zai-key-0000}]}
default: {provider: zai, model: glm-4.6}
"""


def test_metrics_need_the_gateway_key_when_one_is_set(start_gateway, upstream):
    gateway = start_gateway(ROUTES.replace("URL", upstream.url), env={"GATEWAY_KEY": "mm-metrics-key-7788"})
    refused = httpx.get(f"{gateway.url}/metrics", timeout=5)
    assert (refused.status_code, refused.json()["error"]["type"]) == (401, "authentication_error")
    answer = httpx.post(f"{gateway.url}/v1/messages", timeout=10, headers={"x-api-key": "mm-metrics-key-7788"},
                        json={"model": "claude-x", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]})
    assert answer.status_code == 200
    samples = scrape(gateway, authorization="Bearer mm-metrics-key-7788")  # as Prometheus' `authorization` sends it
    assert total(samples, "modelmux_requests_total", provider="zai", model="glm-4.6", credential="main") == 1
    assert total(samples, "modelmux_credential_state", provider="zai", credential="main", state="healthy") == 1
    assert not any("zai-key" in repr(key) for key in samples)  # labels name credentials, never keys
    openmetrics = httpx.get(f"{gateway.url}/metrics", timeout=5, headers={
        "authorization": "Bearer mm-metrics-key-7788", "accept": "application/openmetrics-text; version=1.0.0"})
    assert openmetrics.headers["content-type"].startswith("application/openmetrics-text")
    assert openmetrics.text.endswith("# EOF\n") and "modelmux_requests_total{" in openmetrics.text
    # A request it refused counts, with its error; scrapes (refused or not) are not requests.
    keyless = httpx.post(f"{gateway.url}/v1/messages", timeout=10,
                         json={"model": "claude-x", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]})
    assert keyless.status_code == 401
    scrape(gateway, authorization="Bearer mm-metrics-key-7788")
    samples = scrape(gateway, authorization="Bearer mm-metrics-key-7788")
    assert total(samples, "modelmux_requests_total") == 2
    assert total(samples, "modelmux_requests_total", status="401") == 1
    assert total(samples, "modelmux_errors_total") == total(samples, "modelmux_errors_total",
                                                            type="authentication_error") == 1
