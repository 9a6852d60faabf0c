"""The Metrics addon with plain flows: what one summary adds, read back through
prometheus_client's own parser (the gateway's counts: test_metrics_gateway.py)."""

from __future__ import annotations

from typing import Any

from mitmproxy.test import tflow
from prometheus_client.parser import text_string_to_metric_families

from modelmux.addons.metrics import Metrics


class NoSettings:
    def subscribe(self, callback: Any) -> None:
        pass


def metrics() -> Metrics:
    from modelmux.addons.credentials import Credentials

    return Metrics(Credentials(NoSettings()))  # type: ignore[arg-type]


def summary(**changes: Any) -> dict[str, Any]:
    return {"kind": "routed", "path": "/v1/messages", "provider": "zai", "model": "glm-4.6", "credential": "a",
            "status": 200, "error_type": None, "input_tokens": 10, "cached_tokens": 100, "cache_write_tokens": 5,
            "output_tokens": 20, "ttft_ms": 1000.0, "total_ms": 2500.0, **changes}


def flow(notes: dict[str, Any]) -> Any:
    made = tflow.tflow(resp=True)
    made.metadata["modelmux"] = notes
    return made


def samples(counted: Metrics) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = counted.exposition(None)[0].decode()
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(found: dict, name: str, **labels: str) -> float:
    return found[(name, frozenset(labels.items()))]


def test_one_request_with_a_client_key_and_a_failover():
    counted = metrics()
    attempts = [{"provider": "zai", "credential": "b", "outcome": "not sent: the provider takes no images"},
                {"provider": "zai", "credential": "b", "outcome": 429},
                {"provider": "zai", "credential": "a", "outcome": 200}]
    done = flow({"summary": summary(), "attempts": attempts, "client_key": "ci"})
    counted.response(done)
    counted.error(done)  # a flow may end in both: counted once
    found = samples(counted)
    labels = {"provider": "zai", "model": "glm-4.6", "credential": "a", "client_key": "ci"}
    assert value(found, "modelmux_requests_total", status="200", **labels) == 1
    assert {kind: value(found, "modelmux_tokens_total", type=kind, **labels)
            for kind in ("input", "output", "cache_read", "cache_write")} == \
        {"input": 10, "output": 20, "cache_read": 100, "cache_write": 5}
    attempts_seen = {(dict(l)["credential"], dict(l)["status"]): v
                     for (name, l), v in found.items() if name == "modelmux_upstream_attempts_total"}
    assert attempts_seen == {("b", "not sent"): 1, ("b", "429"): 1, ("a", "200"): 1}
    buckets = {dict(l)["le"]: v for (name, l), v in found.items()
               if name == "modelmux_time_to_first_token_seconds_bucket"}
    assert (buckets["0.5"], buckets["1.0"], buckets["+Inf"]) == (0, 1, 1)  # 1.0 s is in le="1.0"
    assert value(found, "modelmux_request_duration_seconds_sum", provider="zai", model="glm-4.6") == 2.5
    assert not any(name == "modelmux_errors_total" for name, _ in found)


def test_refusals_count_on_the_api_only_and_local_answers_not_at_all():
    counted = metrics()
    refused = summary(kind="refused", provider=None, model=None, credential=None, status=429,
                      error_type="rate_limit_error")
    counted.response(flow({"summary": refused, "error": "every credential is cooling"}))
    counted.response(flow({"summary": {**refused, "path": "/metrics", "status": 401}}))  # a scrape without the key
    counted.response(flow({"summary": summary(kind="local", path="/healthz"), "local": True}))
    counted.response(flow({"provider": "zai"}))  # no summary: the Dashboard did not see it
    found = samples(counted)
    requests = {(dict(l)["provider"], dict(l)["status"]): v
                for (name, l), v in found.items() if name == "modelmux_requests_total"}
    assert requests == {("", "429"): 1}
    assert value(found, "modelmux_errors_total", provider="", model="", credential="", client_key="",
                 type="rate_limit_error") == 1
    assert not any(name == "modelmux_upstream_attempts_total" for name, _ in found)
