"""No secret in a saved flow: the provider's key and the client's token are redacted
once the request has left (what mitmweb shows and -w saves)."""

from __future__ import annotations

import httpx
from mitmproxy import io

from gateway import free_port
from upstream import Upstream

VENDOR_KEY = "sk-vendor-dddddddddddd4444"
CLIENT_TOKEN = "sk-ant-oat01-client-token-5555"


def test_saved_flows_hold_no_secret(start_gateway, tmp_path):
    flows_file = tmp_path / "flows.mitm"
    with Upstream() as vendor, Upstream() as anthropic_up:
        routes = f"""
providers:
  anthropic: {{protocol: anthropic, base_url: "{anthropic_up.url}", auth: passthrough}}
  vendor: {{protocol: anthropic, base_url: "{vendor.url}", auth: "Authorization: Bearer {{key}}",
           credentials: [{{label: vendor-main, key: "${{VENDOR_KEY}}"}}]}}
  down: {{protocol: anthropic, base_url: "http://127.0.0.1:{free_port()}",
         credentials: [{{label: down-main, key: "${{VENDOR_KEY}}"}}]}}
routes:
  - {{match: "glm-*", provider: vendor}}
  - {{match: "down-*", provider: down}}
default: {{provider: anthropic}}
"""
        gateway = start_gateway(routes, {"VENDOR_KEY": VENDOR_KEY}, ["-w", str(flows_file)])
        client_auth = {"authorization": f"Bearer {CLIENT_TOKEN}"}
        for model in ("glm-4.6", "claude-sonnet-4-5", "down-1"):
            httpx.post(f"{gateway.url}/v1/messages", json={"model": model, "max_tokens": 1}, headers=client_auth)
        stream = {"model": "glm-4.6", "max_tokens": 1, "stream": True}
        assert httpx.post(f"{gateway.url}/v1/messages", json=stream, headers=client_auth).status_code == 200
        assert vendor.received[0].headers["authorization"] == f"Bearer {VENDOR_KEY}"  # the upstream got the real key
        assert anthropic_up.received[0].headers["authorization"] == f"Bearer {CLIENT_TOKEN}"
        gateway.stop()
    saved = flows_file.read_bytes()
    assert VENDOR_KEY.encode() not in saved and CLIENT_TOKEN.encode() not in saved
    with flows_file.open("rb") as file:
        flows = [f for f in io.FlowReader(file).stream() if f.request.path == "/v1/messages"]
    auth = [f.request.headers.get("authorization") or f.request.headers.get("x-api-key") for f in flows]
    assert auth == ["Bearer vendor-main…4444", "Bearer client…5555", "down-main…4444", "Bearer vendor-main…4444"]
