"""OpenTelemetry traces, exported by the real gateway over OTLP/HTTP to a fake collector
that parses them with opentelemetry-proto's own classes: one span per request, one child
per upstream attempt on both send paths, the GenAI attributes, never a secret, and
message content only when routes.yaml turns it on."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from both_paths import ENV, KEYS, MODELS, first, normally, routes_yaml
from upstream import Reply, Upstream

pytest.importorskip("opentelemetry.sdk", reason="the otel extra is not installed: pip install -e '.[test,otel]'")
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402

GATEWAY_KEY = "mm-traces-gateway-key-4242"
COLLECTOR_TOKEN = "collector-token-8686"


class Collector:
    """A fake OTLP/HTTP collector: POST /v1/traces, kept raw and parsed."""

    def __init__(self) -> None:
        self.raw: list[bytes] = []
        self.headers: list[dict[str, str]] = []
        self.spans: list[Any] = []
        self.resources: list[dict[str, Any]] = []
        collector = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                collector.raw.append(body)
                collector.headers.append({k.lower(): v for k, v in self.headers.items()})
                request = ExportTraceServiceRequest.FromString(body)
                for resource_spans in request.resource_spans:
                    collector.resources.append(attributes(resource_spans.resource.attributes))
                    for scope_spans in resource_spans.scope_spans:
                        collector.spans.extend(scope_spans.spans)
                self.send_response(200)
                self.send_header("content-type", "application/x-protobuf")
                self.send_header("content-length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait(self, count: int, timeout: float = 15) -> list[Any]:
        deadline = time.monotonic() + timeout
        while len(self.spans) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.spans) >= count, f"{len(self.spans)} spans of {count}"
        return list(self.spans)


def attributes(pairs: Any) -> dict[str, Any]:
    """OTLP KeyValues as plain values (arrays as lists)."""
    found: dict[str, Any] = {}
    for pair in pairs:
        value = pair.value
        kind = value.WhichOneof("value")
        if kind == "array_value":
            found[pair.key] = [getattr(v, v.WhichOneof("value")) for v in value.array_value.values]
        else:
            found[pair.key] = getattr(value, kind)
    return found


@pytest.fixture
def collector() -> Iterator[Collector]:
    running = Collector()
    yield running
    running.server.shutdown()


def telemetry(collector: Collector, content: bool) -> str:
    return (f"server: {{api_key: {GATEWAY_KEY}}}\n"
            f"telemetry:\n  otlp_endpoint: {collector.url}\n  content: {str(content).lower()}\n"
            f"  otlp_headers: {{authorization: 'Bearer ${{COLLECTOR_TOKEN}}'}}\n  service_name: modelmux-test\n")


@pytest.fixture
def start(upstream: Upstream, start_gateway, collector: Collector):
    def run(content: bool = False):
        upstream.reply = normally
        env = {**ENV, "COLLECTOR_TOKEN": COLLECTOR_TOKEN, "OTEL_BSP_SCHEDULE_DELAY": "100"}
        return start_gateway(routes_yaml(upstream.url) + telemetry(collector, content), env=env)
    return run


def post(gateway, model: str, stream: bool, text: str = "hi") -> httpx.Response:
    return httpx.post(f"{gateway.url}/v1/messages", timeout=15, headers={"x-api-key": GATEWAY_KEY},
                      json={"model": model, "max_tokens": 64, "stream": stream, "system": "Be brief.",
                            "messages": [{"role": "user", "content": text}]})


def by_kind(spans: list[Any], kind: int) -> list[Any]:
    return [span for span in spans if span.kind == kind]


SERVER, CLIENT = 2, 3  # Span.SpanKind in the OTLP protobuf


def test_a_span_per_request_and_per_attempt_on_both_paths(start, upstream: Upstream, collector: Collector):
    gateway = start()
    assert post(gateway, "vend-solo", stream=True, text="tell me about zebras").status_code == 200  # mitmproxy's path
    upstream.reply = first(Reply(429, json.dumps({"error": {"message": "slow down"}}).encode(),
                                 {"content-type": "application/json", "retry-after": "30"}))
    assert post(gateway, "chat-pool", stream=False).status_code == 200  # the relay: a 429, then the other key
    spans = collector.wait(5)
    requests = {attributes(s.attributes)["gen_ai.request.model"]: s for s in by_kind(spans, SERVER)}
    assert set(requests) == {"vend-solo", "chat-pool"}

    solo = requests["vend-solo"]
    assert solo.name == "chat vend-solo"
    found = attributes(solo.attributes)
    assert {k: v for k, v in found.items() if not k.startswith("modelmux.time")} == {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": "vend-solo", "gen_ai.system": "vend-solo",
        "gen_ai.request.model": "vend-solo", "gen_ai.response.model": MODELS["vend"],
        "gen_ai.usage.input_tokens": 12, "gen_ai.usage.output_tokens": 7,
        "gen_ai.usage.cache_read.input_tokens": 0, "gen_ai.usage.cache_creation.input_tokens": 0,
        "gen_ai.response.finish_reasons": ["end_turn"], "http.response.status_code": 200,
        "modelmux.provider": "vend-solo", "modelmux.credential": "solo", "modelmux.route": "routes[6]",
        "modelmux.protocol": "anthropic", "modelmux.stream": True, "modelmux.attempts": 1,
        "modelmux.client_key": "default",  # server.api_key's label
    }
    assert found["modelmux.time_to_first_token_ms"] > 0
    assert solo.end_time_unix_nano > solo.start_time_unix_nano

    pool = requests["chat-pool"]
    assert attributes(pool.attributes)["gen_ai.response.finish_reasons"] == ["end_turn"]
    assert attributes(pool.attributes)["modelmux.attempts"] == 2
    children = sorted((s for s in by_kind(spans, CLIENT) if s.parent_span_id == pool.span_id),
                      key=lambda s: s.start_time_unix_nano)
    keys = [KEYS_BY_VALUE[r.headers["authorization"].removeprefix("Bearer ")] for r in upstream.received[1:]]
    assert [attributes(c.attributes)["modelmux.credential"] for c in children] == [k.split("-")[1] for k in keys]
    failed, answered = (attributes(c.attributes) for c in children)
    assert (failed["http.response.status_code"], failed["error.type"], failed["modelmux.outcome"]) == (429, "429", "429")
    assert (answered["http.response.status_code"], answered["modelmux.outcome"]) == (200, "200")
    assert "error.type" not in answered
    assert answered["server.address"] == "127.0.0.1" and answered["gen_ai.request.model"] == MODELS["chat"]
    assert children[0].status.code == 2 and children[1].status.code != 2  # STATUS_CODE_ERROR
    for child in children:
        assert child.trace_id == pool.trace_id
        assert pool.start_time_unix_nano <= child.start_time_unix_nano < child.end_time_unix_nano
        assert child.end_time_unix_nano <= pool.end_time_unix_nano
    solo_children = [s for s in by_kind(spans, CLIENT) if s.parent_span_id == solo.span_id]
    assert [attributes(c.attributes)["modelmux.credential"] for c in solo_children] == ["solo"]

    assert collector.resources[0]["service.name"] == "modelmux-test"
    assert collector.headers[0]["authorization"] == f"Bearer {COLLECTOR_TOKEN}"  # to the collector, not in a span
    everything = b"".join(collector.raw)
    for secret in [*KEYS.values(), GATEWAY_KEY, COLLECTOR_TOKEN]:
        assert secret.encode() not in everything
    assert b"zebras" not in everything and b"Be brief" not in everything  # no content unless turned on


KEYS_BY_VALUE = {value: name for name, value in KEYS.items()}


def test_content_only_when_turned_on(start, collector: Collector):
    gateway = start(content=True)
    assert post(gateway, "resp-solo", stream=True, text="what is 2+2?").status_code == 200  # translated stream
    assert post(gateway, "gem-pool", stream=False, text="and 3+3?").status_code == 200  # the relay, JSON
    spans = collector.wait(4)
    requests = {attributes(s.attributes)["gen_ai.request.model"]: attributes(s.attributes)
                for s in by_kind(spans, SERVER)}
    for model, question in [("resp-solo", "what is 2+2?"), ("gem-pool", "and 3+3?")]:
        found = requests[model]
        assert json.loads(found["gen_ai.system_instructions"]) == [{"type": "text", "content": "Be brief."}]
        assert json.loads(found["gen_ai.input.messages"]) == [
            {"role": "user", "parts": [{"type": "text", "content": question}]}]
        output = json.loads(found["gen_ai.output.messages"])
        assert output[0]["role"] == "assistant" and output[0]["finish_reason"] == "end_turn"
        assert output[0]["parts"][0]["type"] == "text" and output[0]["parts"][0]["content"]
    everything = b"".join(collector.raw)
    for secret in [*KEYS.values(), GATEWAY_KEY, COLLECTOR_TOKEN]:
        assert secret.encode() not in everything


def test_a_telemetry_section_without_the_sdk_names_the_fix(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from modelmux.config import loader

    routes = tmp_path / "routes.yaml"
    routes.write_text("providers:\n  z: {protocol: anthropic, base_url: 'http://127.0.0.1:9', auth: passthrough}\n"
                      "telemetry: {otlp_endpoint: 'http://127.0.0.1:4318'}\n")
    assert loader.load(routes, environ={}).telemetry.otlp_endpoint == "http://127.0.0.1:4318/v1/traces"
    monkeypatch.setattr(loader, "otel_missing", lambda: "opentelemetry-sdk")
    with pytest.raises(loader.ConfigError) as raised:
        loader.load(routes, environ={})
    assert raised.value.problems == [
        "telemetry.otlp_endpoint: traces need the OpenTelemetry SDK, and opentelemetry-sdk is not installed; "
        "install modelmux's otel extra (pip install 'modelmux[otel]'; pipx: pipx inject modelmux "
        "opentelemetry-sdk opentelemetry-exporter-otlp-proto-http), or remove telemetry.otlp_endpoint"]
    routes.write_text(routes.read_text().replace("telemetry: {otlp_endpoint: 'http://127.0.0.1:4318'}\n", ""))
    assert loader.load(routes, environ={}).telemetry.otlp_endpoint is None  # off by default: no SDK needed
