"""Requests where they do not belong (issue 17), against the real gateway: a model name
put into a URL path, a failing addon, a client's malformed request, and protocol
edges. Each test failed before its fix; each runs on both send paths where a path is
chosen (`*-solo`: mitmproxy sends it; `*-pool`, two keys: the failover relay does)."""

from __future__ import annotations

import asyncio
import json
import socket
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from gateway import Gateway
from gemini_upstream import gemini_like
from mitmproxy.test import tflow, tutils
from openai_upstream import gateway_fixtures, openai_like, server  # noqa: F401 (server: a fixture)
from test_router import router_in_process
from upstream import Behaviour, Received, Upstream, anthropic_like

SCRIPTS = Path(__file__).parent / "scripts"
PATHS = ["solo", "pool"]
KEY = "sk-secret-provider-key-0000"
HEADER_TIMEOUT = 2  # seconds (modelmux_header_timeout): a connection that sends no request is closed


def routes_yaml(url: str) -> str:
    keys = {"solo": "[{label: a, key: " + KEY + "}]", "pool": "[{label: a, key: " + KEY + "}, {label: b, key: " + KEY + "b}]"}
    providers = "".join(
        f"  gem-{path}: {{protocol: gemini, base_url: \"{url}/v1beta\", credentials: {keys[path]}}}\n"
        f"  az-{path}: {{protocol: openai-chat, base_url: \"{url}/openai\", credentials: {keys[path]},\n"
        f"            endpoint: \"/deployments/{{model}}/chat/completions\"}}\n"
        f"  vend-{path}: {{protocol: anthropic, base_url: \"{url}\", credentials: {keys[path]}}}\n"
        for path in PATHS)
    routes = "".join(f"  - {{match: \"{kind}-{path}\", provider: {kind}-{path}, model: {model}}}\n"
                     for kind, model in (("gem", "gemini-2.5-flash"), ("az", "deploy-1"), ("vend", "glm-4.6"))
                     for path in PATHS)
    return f"providers:\n{providers}routes:\n{routes}default: null\n"


def reply(request: Received) -> Behaviour:
    if "/v1beta/" in request.path:
        return gemini_like(request)
    return openai_like(request) if request.path.startswith("/openai/") else anthropic_like(request)


class Surrounded(Gateway):
    """The gateway between two test scripts whose request hook raises on demand
    (scripts/raising.py): one before modelmux's script, one after it. Unrouted requests
    would reach the reverse target, the fake upstream. Only the test addon's own
    errors may be in its log."""

    @property
    def command(self) -> list[str]:
        mitmdump, *rest = super().command
        return [mitmdump, "-s", str(SCRIPTS / "raising_first.py"), *rest, "-s", str(SCRIPTS / "raising_last.py")]

    def check_log(self) -> None:
        log = self.log.read_text(errors="replace")
        assert log.count("Addon error") == log.count("Addon error: the test addon raised"), log


def surrounded(directory: Path, routes: str, env: dict[str, str], extra: list[str], server: Upstream) -> Gateway:
    built = Surrounded(directory, routes, env, extra)
    built.mode = f"reverse:{server.url}@127.0.0.1:{built.port}"  # where an unrouted request would go
    return built


GATEWAY_ARGS = ["--set", f"modelmux_header_timeout={HEADER_TIMEOUT}"]
gateway, fresh = gateway_fixtures("security", routes_yaml, {}, reply, surrounded)


def post(gateway: Gateway, body: Any, path: str = "/v1/messages", **headers: str) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return httpx.post(f"{gateway.url}{path}", content=content, timeout=15,
                      headers={"content-type": "application/json", **headers})


def message(model: str, **fields: Any) -> dict[str, Any]:
    return {"model": model, "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}], **fields}


def assert_error(response: httpx.Response, status: int, error_type: str, starts: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()
    assert error["type"] == "error" and error["error"]["type"] == error_type, error
    assert error["error"]["message"].startswith(starts), error


# -- model names in URL paths ----------------------------------------------------------

@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("kind", ["gem", "az"])
@pytest.mark.parametrize("name", ["../../admin/secret?x=", "my deploy", "models/x#y"])
def test_a_model_name_goes_into_a_url_path_only_as_one_safe_segment(gateway, server, kind, path, name):
    response = post(gateway, message(f"{kind}-{path},{name}"))
    assert_error(response, 400, "invalid_request_error", f"model: '{kind}-{path},{name}' is sent as '{name}'")
    assert "may only hold letters, digits, '.', '_' and '-'" in response.json()["error"]["message"]
    assert server.received == []  # not a byte, not the key
    assert post(gateway, message(f"{kind}-{path},gemini-2.5-flash")).status_code == 200
    expected = ("/v1beta/models/gemini-2.5-flash:generateContent" if kind == "gem"
                else "/openai/deployments/gemini-2.5-flash/chat/completions")
    assert [r.path for r in server.received] == [expected]


# -- a failing addon -------------------------------------------------------------------

@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("where", ["first", "last"])  # before modelmux routed the flow, and after
def test_a_failing_addon_answers_500_and_nothing_leaves(gateway, server, where, path):
    response = post(gateway, message(f"gem-{path}"), **{"x-test-raise": where})
    assert_error(response, 500, "api_error", "modelmux failed on this request (RuntimeError in one of its addons")
    assert "Traceback" not in response.text
    assert server.received == []  # neither the reverse target nor the provider
    log = gateway.log.read_text()
    assert f"the test addon raised ({where})" in log and "Traceback" in log
    assert post(gateway, message(f"gem-{path}")).status_code == 200  # its credential was not blamed


# -- the client's malformed requests -----------------------------------------------------

DEEP = b'{"model": "MODEL", "messages": [{"role": "user", "content": ' + b"[" * 20_000 + b"]" * 20_000 + b"}]}"
MISTAKES = {
    "messages a string": ({"messages": "hi"}, "messages: Input should be a valid list"),
    "messages numbers": ({"messages": [1, 2]}, "messages.0: Input should be an object"),
    "content a number": ({"messages": [{"role": "user", "content": 5}]}, "messages.0.content: Input should be a string"),
    "system a number": ({"system": 5}, "system: Input should be a string or a list of content blocks"),
    "tools no list": ({"tools": {"name": "t"}}, "tools: Input should be a valid list"),
    "tool name no string": ({"tools": [{"name": 7, "input_schema": {"type": "object"}}]},
                            "tools.0.name: Input should be a valid string"),
    "image source no object": ({"messages": [{"role": "user", "content": [{"type": "image", "source": "x.png"}]}]},
                               "messages.0.content.0.source: Input should be an object"),
}


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("kind", ["gem", "az", "vend"])
@pytest.mark.parametrize("case", list(MISTAKES) + ["deeply nested"])
def test_a_malformed_request_is_a_400_naming_the_field(gateway, server, case, kind, path):
    model = f"{kind}-{path}"
    if case == "deeply nested":
        response, starts = post(gateway, DEEP.replace(b"MODEL", model.encode())), "request body is nested too deeply"
    else:
        change, starts = MISTAKES[case]
        response = post(gateway, {**message(model), **change})
    assert_error(response, 400, "invalid_request_error", starts)
    assert server.received == []
    assert "Traceback" not in gateway.log.read_text().rpartition("the test addon raised")[2]


def test_a_deeply_nested_reset_is_a_400(gateway, server):
    assert_error(post(gateway, b"[" * 20_000 + b"]" * 20_000, "/modelmux/credentials/reset"), 400,
                 "invalid_request_error", "send {")  # was a RecursionError, forwarded to the reverse target
    assert server.received == []


def test_options_star_is_a_400_with_or_without_a_passthrough_default(gateway, server, tmp_path):
    answer, _ = exchange(gateway, b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    head, _, content = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert json.loads(content)["error"]["message"].startswith("request target '*' is not a path; modelmux serves")
    routes = "providers:\n  a: {protocol: anthropic, base_url: 'http://127.0.0.1:9', auth: passthrough}\ndefault: {provider: a}\n"
    with router_in_process(tmp_path, routes) as router:  # the passthrough default's URL had no path: a 500
        flow = tflow.tflow(req=tutils.treq(method=b"OPTIONS", path=b"*", content=b""))
        asyncio.run(router.request(flow))
    assert flow.response.status_code == 400
    assert server.received == []


# -- protocol edges ------------------------------------------------------------------------

def exchange(gateway: Gateway, data: bytes, wait: float = 10) -> tuple[bytes, float]:
    """What the gateway answers to raw bytes, and how long until it closed the connection."""
    began = time.monotonic()
    answer = b""
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=wait) as s:
        s.sendall(data)
        while chunk := s.recv(65536):
            answer += chunk
    return answer, time.monotonic() - began


def test_content_length_with_transfer_encoding_is_a_400(gateway, server):
    body = json.dumps(message("gem-solo")).encode()
    answer, _ = exchange(gateway, b"POST /v1/messages HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n"
                                  b"Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n" % (len(body), len(body), body))
    head, _, content = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    error = json.loads(content)["error"]
    assert error["type"] == "invalid_request_error"
    assert "both transfer-encoding and content-length" in error["message"]
    assert "validate_inbound_headers" not in error["message"]  # mitmproxy's option is no business of the client's
    assert server.received == []


def test_connect_is_a_400_saying_the_gateway_is_no_proxy(gateway, server):
    answer, _ = exchange(gateway, b"CONNECT api.anthropic.com:443 HTTP/1.1\r\nHost: api.anthropic.com:443\r\n\r\n")
    head, _, content = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert json.loads(content)["error"] == {
        "type": "invalid_request_error",
        "message": "modelmux is an API gateway, not an HTTP proxy, and does not take CONNECT: set the client's "
                   "base URL to it (ANTHROPIC_BASE_URL) instead of HTTPS_PROXY or HTTP_PROXY"}


@pytest.mark.parametrize("start", [
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",  # the start of a TLS ClientHello, on the plain port
    b"POST /v1/messages HTTP/1.1\r\nHost: x\r\n",  # a request head that never ends
])
def test_a_connection_that_sends_no_whole_request_is_closed(gateway, start):
    answer, took = exchange(gateway, start, wait=HEADER_TIMEOUT + 10)
    assert answer == b""
    assert HEADER_TIMEOUT - 0.5 < took < HEADER_TIMEOUT + 3  # before: held for tcp_timeout, 600 s


def test_a_kept_alive_connection_outlives_the_header_timeout(gateway):
    with httpx.Client(base_url=gateway.url, timeout=10) as client:
        assert client.get("/healthz").status_code == 200
        time.sleep(HEADER_TIMEOUT + 1)
        assert client.get("/healthz").status_code == 200
