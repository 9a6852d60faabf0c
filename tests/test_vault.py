"""The Vault: a flow holds credentials only redacted, and mitmproxy's own HTTP/1, HTTP/2
and HTTP/3 client code writes the real values upstream; when that code moved, every
request that needs a real value goes through the relay, and one mitmproxy sent without
it anyway is a clear error. tests/test_vault_gateway.py checks mitmweb and the files
with requests in flight."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from gateway import Gateway
from mitmproxy import options
from mitmproxy.proxy import commands
from mitmproxy.proxy.context import Context
from mitmproxy.proxy.layers.http import RequestHeaders, _http1, _http2, _http3
from mitmproxy.test import taddons, tflow, tutils
from mitmproxy.tools.web.app import flow_to_json
from test_router import message_flow, router_in_process
from upstream import Reply, Upstream

from modelmux.addons import vault
from modelmux.addons.internals import WireHeaders

KEY = "sk-provider-kkkkkkkkkkkk-1111"
LOGIN = "sk-ant-oat01-client-cccccccc-2222"
GATEWAY_KEY = "mm-gateway-gggggggggggg-3333"


@pytest.fixture
def installed() -> Iterator[vault.Vault]:
    addon = vault.Vault()
    with taddons.context(addon):
        assert vault.on_the_wire()
        yield addon
    addon.done()
    assert not vault.on_the_wire()


def client_flow():
    flow = tflow.tflow(req=tutils.treq(method=b"POST", path=b"/v1/messages", content=b"{}"))
    flow.request.headers["Authorization"] = f"Bearer {LOGIN}"
    flow.request.headers["x-modelmux-key"] = GATEWAY_KEY
    return flow


def shown_anywhere(flow) -> str:
    """The flow as mitmweb's API sends it and as a flow file saves it."""
    return json.dumps(flow_to_json(flow)) + repr(flow.get_state())


def context() -> Context:
    ctx = Context(tflow.tclient_conn(), options.Options())
    ctx.server = tflow.tserver_conn()
    return ctx


def http1_bytes(request) -> bytes:
    client = _http1.Http1Client(context())
    sent = client.send(RequestHeaders(1, request, end_stream=True))
    return b"".join(c.data for c in sent if isinstance(c, commands.SendData))


def h2_headers(module, request) -> list[tuple[bytes, bytes]]:
    generator = module.format_h2_request_headers(context(), RequestHeaders(1, request, end_stream=True))
    try:
        while True:
            next(generator)
    except StopIteration as done:
        return done.value


def test_the_clients_credentials_are_sealed_before_anything_can_show_the_flow(installed):
    flow = client_flow()
    installed.requestheaders(flow)
    assert flow.request.headers["authorization"] == "Bearer client…2222"
    assert flow.request.headers["x-modelmux-key"] == "client…3333"
    assert LOGIN not in shown_anywhere(flow) and GATEWAY_KEY not in shown_anywhere(flow)
    real = vault.real_headers(flow.request)
    assert (real["authorization"], real["x-modelmux-key"]) == (f"Bearer {LOGIN}", GATEWAY_KEY)


def test_every_client_protocol_writes_the_real_values_and_the_flow_keeps_the_shown_ones(installed):
    flow = client_flow()
    installed.requestheaders(flow)
    vault.seal(flow.request, "x-api-key", KEY, "main…1111")
    wire = http1_bytes(flow.request)
    assert f"Authorization: Bearer {LOGIN}\r\n".encode() in wire and f"x-api-key: {KEY}\r\n".encode() in wire
    for module in (_http2, _http3):
        headers = dict(h2_headers(module, flow.request))
        assert (headers[b"authorization"], headers[b"x-api-key"]) == (f"Bearer {LOGIN}".encode(), KEY.encode())
    assert flow.request.headers["x-api-key"] == "main…1111"
    assert KEY not in shown_anywhere(flow) and LOGIN not in shown_anywhere(flow)


def test_a_sealed_path_goes_real_on_the_wire_and_shown_on_the_flow(installed):
    """A provider's query may hold a secret (query: {sig: ${SIG}}): the Router seals it."""
    flow = client_flow()
    real, shown = f"/v1/chat/completions?sig={KEY}", "/v1/chat/completions?sig=sig…1111"
    vault.seal_path(flow.request, real, shown)
    assert vault.pending(flow.request)
    assert http1_bytes(flow.request).startswith(f"POST {real} HTTP/1.1\r\n".encode())
    for module in (_http2, _http3):
        assert dict(h2_headers(module, flow.request))[b":path"] == real.encode()
    assert flow.request.path == shown and KEY not in shown_anywhere(flow)
    flow.request.path = "/elsewhere"  # changed after sealing: goes as it is now
    assert http1_bytes(flow.request).startswith(b"POST /elsewhere HTTP/1.1") and not vault.pending(flow.request)


def test_the_router_seals_the_secrets_written_in_a_providers_headers_and_query(installed, tmp_path, monkeypatch):
    routes = f"""
providers:
  azure:
    protocol: openai-chat
    base_url: http://127.0.0.1:9/openai
    credentials: [{{label: main, key: {KEY}}}]
    headers: {{x-tenant: "${{TENANT}}", x-app: modelmux-tests}}
    query: {{sig: "${{SIG}}", api-version: "2024-10-21"}}
default: {{provider: azure}}
"""
    tenant, sig = "tenant-token-tttttttt-4444", "signature-ssssssss-5555"
    monkeypatch.setenv("TENANT", tenant)
    monkeypatch.setenv("SIG", sig)
    # A stream, which mitmproxy sends (the relay sends a JSON answer's request itself).
    body = {"model": "gpt-x", "max_tokens": 8, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    with router_in_process(tmp_path, routes) as router:
        flow = message_flow(b"/v1/messages", json.dumps(body).encode())
        asyncio.run(router.request(flow))
    assert flow.response is None, flow.response and flow.response.content
    assert (flow.request.headers["x-tenant"], flow.request.headers["x-app"]) == ("azure.headers.x-tenant…4444", "modelmux-tests")
    assert flow.request.path == "/openai/chat/completions?sig=azure.query.sig…5555&api-version=2024-10-21"
    assert tenant not in shown_anywhere(flow) and sig not in shown_anywhere(flow) and KEY not in shown_anywhere(flow)
    wire = http1_bytes(flow.request)
    assert f"?sig={sig}&api-version=2024-10-21 HTTP/1.1".encode() in wire and f"x-tenant: {tenant}".encode() in wire


def test_a_header_replaced_or_removed_after_sealing_goes_as_it_is_now(installed):
    flow = client_flow()
    installed.requestheaders(flow)
    del flow.request.headers["x-modelmux-key"]  # as InboundAuth does with the gateway key
    flow.request.headers["authorization"] = "Bearer other"
    wire = http1_bytes(flow.request)
    assert b"Authorization: Bearer other\r\n" in wire and GATEWAY_KEY.encode() not in wire
    assert not vault.pending(flow.request)


def test_the_relays_loopback_request_keeps_the_shown_values(installed):
    flow = client_flow()
    installed.requestheaders(flow)
    vault.keep_off_wire(flow.request)
    assert LOGIN.encode() not in http1_bytes(flow.request)
    assert vault.real_headers(flow.request)["authorization"] == f"Bearer {LOGIN}"  # for the relay's plan


def test_a_flow_that_ends_forgets_its_credentials(installed):
    flow = client_flow()
    installed.requestheaders(flow)
    assert LOGIN.encode() in http1_bytes(flow.request)
    flow.response = tutils.tresp()
    installed.response(flow)
    assert vault.real_fields(flow.request) == list(flow.request.headers.fields)
    assert flow.response.status_code == 200  # it went upstream as it should: the answer stands


def test_a_moved_touchpoint_is_found_and_nothing_is_replaced(monkeypatch, caplog):
    original = _http1.Http1Client.send

    def moved(layer, event):  # a release whose send no longer calls assemble_request_head by that name
        return original(layer, event)

    monkeypatch.setattr(_http1.Http1Client, "send", moved)
    wire = WireHeaders()
    assert not wire.install(lambda request: None)
    assert _http1.Http1Client.send is moved and "through its relay instead" in caplog.text
    monkeypatch.setattr(_http1.Http1Client, "send", original)
    monkeypatch.delattr(_http2, "format_h2_request_headers")
    assert not wire.install(lambda request: None)


# -- the real gateway, its touchpoint moved or bypassed ------------------------------

ROUTES = """
providers:
  solo: {protocol: anthropic, base_url: "URL/solo", credentials: [{label: main, key: "${SOLO}"}]}
  mine: {protocol: anthropic, base_url: "URL/mine", auth: passthrough}
routes:
  - {match: "solo-*", provider: solo}
default: {provider: mine}
"""
# Loaded before the gateway's script: Http1Client.send no longer calls assemble_request_head by name.
MOVED = """
from mitmproxy.proxy.layers.http import _http1
_original = _http1.Http1Client.send
_http1.Http1Client.send = lambda layer, event: _original(layer, event)
"""
# Loaded after it: mitmproxy writes requests without the Vault's touchpoint, which looks in place.
BYPASSED = """
from mitmproxy.proxy.layers.http import _http1
from modelmux.addons import vault
class Bypass:
    def running(self):
        _http1.Http1Client.send = vault._wire._originals[0]
addons = [Bypass()]
"""


class GatewayWith(Gateway):
    """The gateway with a script loaded before its own (`first`) or after it (`extra_args`)."""

    def __init__(self, *args, first: Path | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.first = first

    @property
    def command(self) -> list[str]:
        command = super().command
        return command[:1] + (["-s", str(self.first)] if self.first else []) + command[1:]


def post(gateway: Gateway, model: str, stream: bool = False) -> httpx.Response:
    return httpx.post(f"{gateway.url}/v1/messages", timeout=15, headers={"authorization": f"Bearer {LOGIN}"},
                      json={"model": model, "max_tokens": 8, "stream": stream,
                            "messages": [{"role": "user", "content": "hi"}]})


def test_with_the_touchpoint_moved_every_credential_goes_through_the_relay(tmp_path: Path) -> None:
    (tmp_path / "moved.py").write_text(MOVED)
    with Upstream() as server, GatewayWith(tmp_path, ROUTES.replace("URL", server.url), {"SOLO": KEY},
                                           first=tmp_path / "moved.py") as gateway:
        # A provider's key, and the client's own login passed through; streams, which
        # mitmproxy would send (a JSON answer's request is always the relay's).
        for model in ("solo-x", "claude-x"):
            assert post(gateway, model, stream=True).status_code == 200
        other = httpx.get(f"{gateway.url}/v1/files", headers={"authorization": f"Bearer {LOGIN}"})
        log = gateway.log.read_text()
    # mitmproxy would have sent the redacted forms: the relay sent these, from its plans
    assert [r.headers.get("x-api-key") or r.headers["authorization"] for r in server.received] == [KEY, f"Bearer {LOGIN}"]
    assert "through its relay instead" in log
    assert other.status_code == 500 and "cannot forward GET /v1/files with the client's credentials" in other.text


def test_a_request_sent_without_the_touchpoint_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "bypass.py").write_text(BYPASSED)
    with Upstream() as server:
        server.reply = lambda request: Reply(401, b'{"type":"error","error":{"type":"authentication_error",'
                                                  b'"message":"invalid x-api-key"}}')
        with Gateway(tmp_path, ROUTES.replace("URL", server.url), {"SOLO": KEY},
                     ["-s", str(tmp_path / "bypass.py")]) as gateway:
            answer = post(gateway, "solo-x", stream=True)  # mitmproxy sends it (a JSON answer is the relay's)
            log = gateway.log.read_text()
    # the redacted form, never the key (http.server reads header bytes as latin-1)
    assert server.received[0].headers["x-api-key"] == "main…1111".encode().decode("latin-1")
    assert answer.status_code == 500
    message = answer.json()["error"]["message"]
    assert message.startswith("modelmux could not put this request's credential on the wire: mitmproxy ")
    assert "answered HTTP 401" in message and message in log and KEY not in log


@pytest.mark.skipif(shutil.which("curl") is None, reason="no curl (an HTTP/2 client that mitmproxy answers)")
def test_an_http2_client_gets_its_answer_and_the_upstream_the_real_credentials(tmp_path: Path) -> None:
    """HTTP/2 from the client, HTTP/1 upstream: mitmproxy converts the request the Vault
    opened (a copy), and neither the client's login nor the key shows on the flow. curl,
    not httpx: mitmproxy never answers httpx's HTTP/2 (the same on main, even /healthz)."""
    with Upstream() as server, Gateway(tmp_path, ROUTES.replace("URL", server.url), {"SOLO": KEY},
                                       ["-w", str(tmp_path / "flows.mitm")]) as gateway:
        for model in ("solo-x", "claude-x"):
            body = json.dumps({"model": model, "max_tokens": 8, "stream": True,  # a stream: mitmproxy sends it
                               "messages": [{"role": "user", "content": "hi"}]})
            curl = subprocess.run(
                ["curl", "-sk", "--http2", "-o", "/dev/null", "-w", "%{http_version} %{http_code}",
                 "-H", f"authorization: Bearer {LOGIN}", "-H", "content-type: application/json", "-d", body,
                 f"{gateway.url.replace('http:', 'https:')}/v1/messages"], capture_output=True, text=True, timeout=20)
            assert curl.stdout == "2 200", curl
    assert [r.headers.get("x-api-key") or r.headers["authorization"] for r in server.received] == [KEY, f"Bearer {LOGIN}"]
    saved = (tmp_path / "flows.mitm").read_bytes()
    assert KEY.encode() not in saved and LOGIN.encode() not in saved and "main…1111".encode() in saved
