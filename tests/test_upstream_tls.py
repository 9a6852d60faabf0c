"""mitmproxy's options for upstream certificates hold on both send paths: what mitmproxy
sends itself (a single upstream's stream) and what the relay sends (every JSON answer,
a pool's stream). Before, the relay checked certificates against certifi's CAs alone,
so a provider behind a private CA answered streams and failed JSON answers."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from gateway import Gateway
from test_failures import self_signed_tls
from upstream import Upstream

KEYS = {"SOLO_KEY": "sk-solo-tttttttttttt1111", "POOL_A": "sk-pool-tttttttttttt2222", "POOL_B": "sk-pool-tttttttttttt3333"}
# model → the path that sends it
MODELS = {("solo-x", False): "relay", ("solo-x", True): "mitmproxy", ("pool-x", False): "relay", ("pool-x", True): "relay"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory):
    directory = tmp_path_factory.mktemp("tls")
    with Upstream(tls=self_signed_tls(directory)) as upstream:
        upstream.cert = directory / "cert.pem"  # type: ignore[attr-defined]
        yield upstream


def routes(url: str) -> str:
    return f"""
providers:
  solo: {{protocol: anthropic, base_url: "{url}", credentials: [{{label: s, key: "${{SOLO_KEY}}"}}]}}
  pool:
    protocol: anthropic
    base_url: "{url}"
    credentials: [{{label: a, key: "${{POOL_A}}"}}, {{label: b, key: "${{POOL_B}}"}}]
routes:
  - {{match: "pool-*", provider: pool}}
default: {{provider: solo}}
"""


def post(gateway: Gateway, model: str, stream: bool) -> httpx.Response:
    body = {"model": model, "max_tokens": 8, "stream": stream, "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(f"{gateway.url}/v1/messages", json=body, timeout=15)


@pytest.mark.parametrize("trust", ["ssl_insecure=true", "ssl_verify_upstream_trusted_ca={cert}"])
def test_an_upstream_with_a_private_certificate_answers_on_both_paths(tmp_path: Path, server: Upstream, trust: str):
    option = trust.format(cert=server.cert)  # type: ignore[attr-defined]
    with Gateway(tmp_path, routes(server.url), KEYS, ["--set", option]) as gateway:
        for (model, stream), path in MODELS.items():
            answer = post(gateway, model, stream)
            assert answer.status_code == 200, (model, stream, path, answer.text)
            if stream:
                assert answer.text.endswith("event: message_stop\ndata: {\"type\": \"message_stop\"}\n\n"), answer.text
            else:
                assert answer.json()["model"] == model
    assert len(server.received) >= len(MODELS)


def test_without_them_both_paths_refuse_it_in_the_same_words(tmp_path: Path, server: Upstream):
    with Gateway(tmp_path, routes(server.url), KEYS) as gateway:
        for model, stream in (("solo-x", False), ("solo-x", True)):
            answer = post(gateway, model, stream)
            assert (answer.status_code, answer.json()) == (502, {"type": "error", "error": {
                "type": "api_error", "message": f"TLS connection to provider 'solo' ({server.url}) failed: "
                                               "Certificate verify failed: self-signed certificate"}}), (model, stream)
