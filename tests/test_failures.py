"""Every failure reaches the client as an Anthropic error: exact status, envelope, message."""

from __future__ import annotations

import datetime
import ipaddress
import json
import re
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anthropic
import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from gateway import Gateway, free_port
from modelmux.addons import internals
from upstream import Drop, Hang, Reply, Upstream

KEY = "sk-vendor-cccccccccccc3333"


def self_signed_tls(directory: Path) -> ssl.SSLContext:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    (directory / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (directory / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "cert.pem", directory / "key.pem")
    return context


@pytest.fixture(scope="module")
def unresponsive_port() -> Iterator[int]:
    """A port whose accept queue is full: connection attempts get no answer at all."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(0)
    filler = socket.create_connection(server.getsockname())
    yield server.getsockname()[1]
    filler.close()
    server.close()


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Upstream]]:
    tls = self_signed_tls(tmp_path_factory.mktemp("tls"))
    with Upstream() as vendor, Upstream(tls=tls) as tls_vendor, Upstream() as forbidden:
        yield {"vendor": vendor, "tls": tls_vendor, "forbidden": forbidden}


@pytest.fixture(scope="module")
def gateway(servers, unresponsive_port, tmp_path_factory) -> Iterator[Gateway]:
    routes = f"""
providers:
  vendor:
    protocol: anthropic
    base_url: "{servers['vendor'].url}"
    credentials: [{{label: main, key: "${{VENDOR_KEY}}"}}]
    response_timeout: 1.5
  refused: {{protocol: anthropic, base_url: "http://127.0.0.1:{free_port()}", auth: passthrough}}
  nodns: {{protocol: anthropic, base_url: "https://no-such-host.invalid", auth: passthrough}}
  selfsigned: {{protocol: anthropic, base_url: "{servers['tls'].url}", auth: passthrough}}
  blackhole: {{protocol: anthropic, base_url: "http://127.0.0.1:{unresponsive_port}", auth: passthrough, connect_timeout: 1}}
  forbidden: {{protocol: anthropic, base_url: "{servers['forbidden'].url}", auth: passthrough}}
  google: {{protocol: gemini, base_url: "https://generativelanguage.googleapis.com", credentials: [{{label: g, key: k}}]}}
routes:
  - {{match: refused, provider: refused}}
  - {{match: nodns, provider: nodns}}
  - {{match: selfsigned, provider: selfsigned}}
  - {{match: blackhole, provider: blackhole}}
  - {{match: forbidden-model, provider: forbidden}}
  - {{match: gemini-3-pro, provider: google}}
  - {{match: "vendor-*", provider: vendor}}
profiles:
  locked: {{providers: [vendor], port: {free_port()}}}
default: null
"""
    with Gateway(tmp_path_factory.mktemp("failures"), routes, {"VENDOR_KEY": KEY}) as gw:
        yield gw


@pytest.fixture(autouse=True)
def fresh(servers, gateway) -> None:
    gateway.reset_credentials()
    for server in servers.values():
        server.received.clear()
        server.reply = __import__("upstream").anthropic_like


def post(gateway: Gateway, body: object, port: int | None = None, **headers: str) -> httpx.Response:
    url = f"http://127.0.0.1:{port or gateway.port}/v1/messages"
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(url, content=content, headers={"content-type": "application/json", **headers}, timeout=15)


@pytest.fixture(params=[False, True], ids=["json", "stream"])
def stream(request) -> bool:
    """A JSON answer's request is sent by the relay, a single upstream's stream by mitmproxy:
    both say a failure in the same words."""
    return request.param


def assert_error(response: httpx.Response, status: int, error_type: str, message: str) -> None:
    assert response.status_code == status
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"type": "error", "error": {"type": error_type, "message": message}}


def test_malformed_json_is_400(gateway):
    assert_error(post(gateway, b'{"model": '), 400, "invalid_request_error",
                 "request body is not valid JSON (Expecting value: line 1 column 11 (char 10))")


@pytest.mark.parametrize("body", [{"max_tokens": 1}, {"model": ""}, {"model": 3}])
def test_missing_model_is_400(gateway, body):
    assert_error(post(gateway, body), 400, "invalid_request_error",
                 "model: field required (a non-empty string naming the model)")


def test_no_route_and_no_default_is_404_naming_what_exists(gateway):
    assert_error(post(gateway, {"model": "gemini-2-flash"}), 404, "not_found_error",
                 "model 'gemini-2-flash' matches no route in routes.yaml and there is no default; "
                 "models that exist: refused, nodns, selfsigned, blackhole, forbidden-model, gemini-3-pro; routes match vendor-*")


def test_unknown_path_is_404_when_there_is_no_passthrough_default(gateway):
    response = httpx.get(f"{gateway.url}/v1/complete")
    assert_error(response, 404, "not_found_error", "modelmux does not serve GET /v1/complete; it serves "
                 "POST /v1/messages, POST /v1/messages/count_tokens, GET /v1/models, GET /v1/models/{id} and GET /healthz")


def test_unreachable_upstream_is_502_json(gateway, stream):
    response = post(gateway, {"model": "refused", "stream": stream})
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["type"] == "api_error"
    assert re.match(r"provider 'refused' \(http://127\.0\.0\.1:\d+\) cannot be connected to: ", error["message"])
    assert "Connect call failed" in error["message"]
    assert "<html" not in response.text.lower()


def test_unknown_host_is_502_json(gateway, stream):
    assert_error(post(gateway, {"model": "nodns", "stream": stream}), 502, "api_error",
                 "provider 'nodns' (https://no-such-host.invalid:443) cannot be connected to: "
                 "[Errno -2] Name or service not known")


def test_tls_failure_is_502_json(gateway, servers, stream):
    assert_error(post(gateway, {"model": "selfsigned", "stream": stream}), 502, "api_error",
                 f"TLS connection to provider 'selfsigned' ({servers['tls'].url}) failed: "
                 "Certificate verify failed: self-signed certificate")


def test_upstream_that_cannot_be_connected_is_504(gateway, unresponsive_port, stream):
    assert_error(post(gateway, {"model": "blackhole", "stream": stream}), 504, "timeout_error",
                 f"provider 'blackhole' (http://127.0.0.1:{unresponsive_port}) could not be connected to "
                 "within 1 s (connect_timeout)")


@pytest.mark.parametrize("behaviour, status, error_type, what", [
    (Hang(), 504, "timeout_error", "did not answer within 1.5 s (response_timeout)"),
    (Drop(), 502, "api_error", "closed the connection without a complete answer: server closed connection"),
])
def test_upstream_that_hangs_or_drops_the_connection(gateway, servers, behaviour, status, error_type, what, stream):
    servers["vendor"].reply = lambda r: behaviour
    assert_error(post(gateway, {"model": "vendor-x", "stream": stream}), status, error_type,
                 f"provider 'vendor' ({servers['vendor'].url}) {what}")


def test_upstream_html_error_is_wrapped(gateway, servers, stream):
    servers["vendor"].reply = lambda r: Reply(
        503, b"<html><head><title>503</title></head><body><h1>Service Unavailable</h1></body></html>",
        {"content-type": "text/html", "retry-after": "7"})
    response = post(gateway, {"model": "vendor-x", "stream": stream})
    assert_error(response, 503, "overloaded_error",
                 "provider 'vendor' answered HTTP 503 Service Unavailable: 503 Service Unavailable")
    assert response.headers["retry-after"] == "7"


def test_upstream_error_keeps_the_upstreams_own_message(gateway, servers, stream):
    body = {"error": {"message": "The model `x` does not exist", "type": "invalid_request_error", "code": None}}
    servers["vendor"].reply = lambda r: Reply(404, json.dumps(body).encode())
    assert_error(post(gateway, {"model": "vendor-x", "stream": stream}), 404, "not_found_error",
                 "provider 'vendor' answered HTTP 404 Not Found: The model `x` does not exist")


def test_upstream_anthropic_error_passes_unchanged_but_scrubbed(gateway, servers, stream):
    body = {"type": "error", "error": {"type": "authentication_error", "message": f"invalid x-api-key {KEY}"}}
    servers["vendor"].reply = lambda r: Reply(401, json.dumps(body).encode())
    assert_error(post(gateway, {"model": "vendor-x", "stream": stream}), 401, "authentication_error",
                 "invalid x-api-key main…3333")


def test_sdk_sees_a_typed_error(gateway, servers):
    servers["vendor"].reply = lambda r: Hang()
    client = anthropic.Anthropic(base_url=gateway.url, api_key="placeholder", max_retries=0)
    with pytest.raises(anthropic.InternalServerError) as raised:
        client.messages.create(model="vendor-x", max_tokens=1, messages=[{"role": "user", "content": "hi"}])
    assert raised.value.status_code == 504
    assert raised.value.body["error"]["type"] == "timeout_error"


def test_provider_outside_the_profile_is_403_and_receives_nothing(gateway, servers):
    locked_port = next(p for p in [int(m.rsplit(":", 1)[1]) for m in gateway.health()["listeners"]] if p != gateway.port)
    expected = ("profile 'locked' may only use providers vendor, but model 'forbidden-model' routes to "
                "'forbidden' (routes[4]); add it to profiles.locked.providers or pick another model")
    assert_error(post(gateway, {"model": "forbidden-model"}, port=locked_port), 403, "permission_error", expected)
    assert_error(post(gateway, {"model": "forbidden-model"}, **{"x-modelmux-profile": "locked"}),
                 403, "permission_error", expected)
    # the port decides, whatever header the client sends
    assert_error(post(gateway, {"model": "forbidden-model"}, port=locked_port, **{"x-modelmux-profile": "nope"}),
                 403, "permission_error", expected)
    assert servers["forbidden"].received == []
    assert post(gateway, {"model": "vendor-ok"}, port=locked_port).json()["model"] == "vendor-ok"
    assert post(gateway, {"model": "forbidden-model"}).status_code == 200  # no profile: allowed
    assert len(servers["forbidden"].received) == 1


def test_no_secret_in_log_or_error_bodies(gateway):
    assert KEY not in gateway.log.read_text()


def test_the_installed_mitmproxy_is_a_verified_release() -> None:
    """What a fresh install resolves must be a release the suite was run on: when the
    registry offers a newer one inside the range, this fails until it is verified and
    added to internals.VERIFIED (or the range in pyproject.toml excludes it)."""
    assert internals.unverified() is None, internals.unverified()


def test_another_mitmproxy_release_is_named_with_the_verified_ones() -> None:
    assert internals.unverified("12.4.0") == (
        "mitmproxy 12.4.0 is not a release modelmux was verified on (12.2.3, 12.3.1); "
        "if something fails, install one of those"
    )


def test_requests_that_arrive_while_the_gateway_starts_never_stop_it(tmp_path: Path) -> None:
    """Clients already pointed at a (re)starting gateway send as soon as its port opens,
    before mitmproxy's own TlsConfig has its certificates (it loads them in its `running`
    hook, after the listeners are up). A routed request there crashed that addon, and
    mitmproxy exits a gateway that logged an error during start-up: 7 starts in 8."""
    with Upstream() as vendor:
        routes = f"""
providers:
  vendor: {{protocol: anthropic, base_url: "{vendor.url}", credentials: [{{label: main, key: sk-start-1234567890}}]}}
default: {{provider: vendor}}
"""
        gateway = Gateway(tmp_path, routes)
        body = {"model": "claude-x", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}]}
        answered: list[int] = []
        stop = threading.Event()

        def keep_sending() -> None:
            with httpx.Client(timeout=5) as client:
                while not stop.is_set():
                    try:
                        answered.append(client.post(f"{gateway.url}/v1/messages", json=body).status_code)
                    except httpx.TransportError:  # not listening yet
                        time.sleep(0.002)

        senders = [threading.Thread(target=keep_sending) for _ in range(6)]
        for sender in senders:
            sender.start()
        try:
            with gateway:
                time.sleep(1)  # start-up is over: an error in it would have ended the gateway by now
                assert gateway.process is not None and gateway.process.poll() is None, gateway.log.read_text()[-2000:]
                # The senders stop before the gateway does: a request still in flight when it
                # stops gets a 502, which is the stop's doing, not the start's.
                stop.set()
                for sender in senders:
                    sender.join()
        finally:
            stop.set()
            for sender in senders:
                sender.join()
    assert answered and set(answered) == {200}
    assert "Addon error" not in gateway.log.read_text()
