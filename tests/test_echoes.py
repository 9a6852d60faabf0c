"""No secret reaches a client, whatever an upstream echoes, on either send path, under
mitmdump and mitmweb alike; a provider with a key of its own (or an Anthropic-compatible
vendor, or a translated protocol) gets none of the client's tokens and only the headers
its protocol needs; Anthropic passthrough gets the client's headers as they were sent.
The fake echoes every header it gets (tests/echoing.py)."""

from __future__ import annotations

from collections.abc import Iterator
from io import BytesIO
from pathlib import Path

import pytest
from echoing import (
    CLIENT_TOKENS, ENV, KEYS, PATHS, SECRETS, TARGETS, client_headers, echo, leaked, post, routes_yaml,
)
from gateway import Gateway
from mitmproxy.io import FlowReader
from upstream import Behaviour, Received, Stream, Upstream, message, sse

from modelmux import __version__
from modelmux.replay.compare import Normaliser

MODES = ["mitmdump", "mitmweb"]
STATUSES = [200, 400]
# The hop's own headers; the relay's client (httpx) adds `accept: */*` when none is given.
FRAMING = {"host", "content-length", "transfer-encoding", "connection", "accept-encoding", "accept"}
# What a third party may get, by target: the framing, modelmux's user agent and the
# credential (Protocol.forwarded); the vendor also the Anthropic headers the body needs.
CREDENTIAL = {"chat": "authorization", "resp": "authorization", "gem": "x-goog-api-key", "vend": "x-api-key"}
VENDOR = {"content-type", "accept", "anthropic-version", "anthropic-beta"}


@pytest.fixture(scope="module")
def server() -> Iterator[Upstream]:
    with Upstream() as up:
        yield up


@pytest.fixture(scope="module")
def gateways(server: Upstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Gateway]]:
    dump = Gateway(tmp_path_factory.mktemp("echo-dump"), routes_yaml(server.url), ENV)
    web = Gateway(tmp_path_factory.mktemp("echo-web"), routes_yaml(server.url), ENV, web=True)
    with dump, web:
        yield {"mitmdump": dump, "mitmweb": web}


@pytest.fixture(autouse=True)
def fresh(server: Upstream, gateways: dict[str, Gateway]) -> None:
    for gateway in gateways.values():
        gateway.reset_credentials()
    server.received.clear()
    server.reply = echo(200)


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("mode", MODES)
def test_no_secret_an_upstream_echoes_reaches_the_client(gateways, server, mode, target, path, status):
    server.reply = echo(status)
    response = post(gateways[mode].url, target, path)
    assert response.status_code == status, response.text
    assert len(server.received) == 1
    sent = str(server.received[0].headers)
    assert any(secret in sent for secret in SECRETS)  # the fake had something to echo
    assert leaked(response) == []
    if status == 200:
        assert "…" in response.text  # the echo is there, redacted (label…last four)


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("target", TARGETS)
def test_mitmdump_and_mitmweb_answer_the_same_bytes(gateways, server, target, path, status):
    server.reply = echo(status)
    answers = [post(gateways[mode].url, target, path) for mode in MODES]
    bodies = [Normaliser().text(a.text) for a in answers]
    assert bodies[0] == bodies[1]
    headers = [[(n, Normaliser().text(v)) for n, v in a.headers.multi_items() if n != "date"] for a in answers]
    assert headers[0] == headers[1]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("target", ["chat", "resp", "gem", "vend"])
def test_a_third_party_gets_only_what_its_protocol_needs(gateways, server, target, path):
    """Nothing of Claude Code's (user agent, x-app, session id, x-stainless-*), no custom
    header, none of the client's tokens; the vendor's betas without the client login's."""
    assert post(gateways["mitmdump"].url, target, path).status_code == 200
    received = server.received[0].headers
    allowed = FRAMING | {"user-agent", "content-type", CREDENTIAL[target]} | (VENDOR if target == "vend" else set())
    assert set(received) <= allowed, set(received) - allowed
    assert received["user-agent"] == f"modelmux/{__version__}"
    assert received[CREDENTIAL[target]].removeprefix("Bearer ") in KEYS.values()
    assert not [token for token in CLIENT_TOKENS.values() if token in str(received)]
    assert received.get("accept", "*/*") == ("application/json" if target == "vend" else "*/*")
    if target == "vend":
        assert received["anthropic-version"] == "2023-06-01"
        assert received["anthropic-beta"] == "claude-code-20250219,interleaved-thinking-2025-05-14"


@pytest.mark.parametrize("path", PATHS)
def test_anthropic_passthrough_gets_the_clients_headers_as_sent(gateways, server, path):
    assert post(gateways["mitmdump"].url, "pass", path).status_code == 200
    received = server.received[0].headers
    for name, value in client_headers().items():
        assert received[name] == value


def test_kept_flows_show_no_client_token(gateways, server, tmp_path: Path):
    """mitmweb's flows, as its export holds them, after a request of each target on each
    path: every token the client sent (in four headers) and every key, redacted."""
    gateway = gateways["mitmweb"]
    for target in TARGETS:
        for path in PATHS:
            assert post(gateway.url, target, path).status_code == 200
    dump = gateway.web_api("/flows/dump").content
    flows = list(FlowReader(BytesIO(dump)).stream())
    assert len(flows) >= 2 * len(TARGETS)
    assert [secret for secret in SECRETS if secret.encode() in dump] == []


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("target", ["vend", "pass"])
def test_an_error_event_that_quotes_a_token_is_logged_without_it(gateways, server, target, path):
    """An Anthropic stream that fails before its first content, quoting what it was sent:
    the relay logs the failed attempt (mitmproxy's path streams it on as it came)."""
    def reply(request: Received) -> Behaviour:
        said = "; ".join(request.headers.get(name, "") for name in CLIENT_TOKENS)  # first: a log keeps the start
        start = {"type": "message_start", "message": {**message(request.json()["model"], ""), "content": []}}
        error = {"type": "error", "error": {"type": "overloaded_error", "message": f"you sent {said}"}}
        return Stream([sse("message_start", start), sse("error", error)])

    server.reply = reply
    gateway = gateways["mitmdump"]
    post(gateway.url, target, path, stream=True)
    assert len(server.received) >= 1
    log = gateway.log.read_text()
    assert [secret for secret in SECRETS if secret in log] == []
