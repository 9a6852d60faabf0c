"""What a flow tells in mitmweb and in a saved flow: the one-line summary, the summary
in its metadata, and the bodies the "modelmux" content view shows (both sides of a
translation), with no secret anywhere. The gateway runs with `-w`, so flows are kept."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from gateway import Gateway, free_port
from mitmproxy import contentviews, io
from mitmproxy.test import taddons
import gemini_upstream as gem
from openai_upstream import GREETING, OAI_KEY, error_reply, openai_like, sse, text_chunks
from upstream import Hang, Reply, Stream, Upstream, anthropic_like, message_events

from modelmux.addons.contentview import ModelmuxContentview
from modelmux.addons.dashboard import line

V_A, V_B = "sk-vendor-aaaaaaaaaaaa1111", "sk-vendor-bbbbbbbbbbbb2222"
CLIENT_TOKEN = "sk-ant-oat01-dashboard-client-9999"
G_KEY = "AIzaSyDashboard-gggggggggggggggggggg7"
ENV = {"OAI_KEY": OAI_KEY, "V_A": V_A, "V_B": V_B, "G_KEY": G_KEY}
DEAD_PORT = free_port()  # nothing listens there
RATE_LIMITED = Reply(429, json.dumps({"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}).encode())


@pytest.fixture(scope="module")
def upstreams() -> Iterator[dict[str, Upstream]]:
    with Upstream() as anthropic, Upstream() as oai:
        yield {"anthropic": anthropic, "oai": oai}


@pytest.fixture(scope="module")
def gateway(upstreams: dict[str, Upstream], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    directory = tmp_path_factory.mktemp("dashboard")
    routes = f"""
providers:
  anthropic: {{protocol: anthropic, base_url: "{upstreams['anthropic'].url}", auth: passthrough}}
  vendor:
    protocol: anthropic
    base_url: "{upstreams['anthropic'].url}/vendor"
    strategy: fill-first
    credentials: [{{label: v-a, key: "${{V_A}}"}}, {{label: v-b, key: "${{V_B}}"}}]
  oai: {{protocol: openai-chat, base_url: "{upstreams['oai'].url}/v1", credentials: [{{label: oai-main, key: "${{OAI_KEY}}"}}]}}
  google: {{protocol: gemini, base_url: "{upstreams['oai'].url}/v1beta", credentials: [{{label: g-main, key: "${{G_KEY}}"}}]}}
  slow: {{protocol: openai-chat, base_url: "{upstreams['oai'].url}/slow/v1", response_timeout: 1, credentials: [{{label: slow-main, key: "${{OAI_KEY}}"}}]}}
  gone: {{protocol: openai-chat, base_url: "http://127.0.0.1:{DEAD_PORT}/v1", query: {{sig: "${{OAI_KEY}}"}}, credentials: [{{label: gone-main, key: "${{OAI_KEY}}"}}]}}
routes:
  - {{match: "gpt-*", provider: oai, model: gpt-test}}
  - {{match: "gemini-*", provider: google, model: "gemini-2.5-flash(2048)"}}
  - {{match: "vendor-*", provider: vendor, model: vendor-model}}
  - {{match: "echo-*", provider: anthropic, fallback: [{{provider: vendor, model: vendor-model}}]}}
  - {{match: "slow-*", provider: slow, model: gpt-slow}}
  - {{match: "gone-*", provider: gone, model: gpt-gone, fallback: [{{provider: vendor, model: vendor-model}}]}}
default: {{provider: anthropic}}
"""
    with Gateway(directory, routes, ENV, ["-w", str(directory / "flows.mitm")]) as gw:
        gw.flows = directory / "flows.mitm"  # type: ignore[attr-defined]
        yield gw


@pytest.fixture(autouse=True)
def fresh(upstreams: dict[str, Upstream], gateway: Gateway) -> None:
    gateway.reset_credentials()
    for name, upstream in upstreams.items():
        upstream.received.clear()
        upstream.reply = anthropic_like if name == "anthropic" else openai_like


def post(gateway: Gateway, model: str, stream: bool = False, text: str = "hi") -> httpx.Response:
    body = {"model": model, "max_tokens": 64, "stream": stream, "messages": [{"role": "user", "content": text}]}
    return httpx.post(f"{gateway.url}/v1/messages", json=body, headers={"authorization": f"Bearer {CLIENT_TOKEN}"},
                      timeout=10)


def saved(gateway: Gateway, match: Any) -> Any:
    """The saved flow `match(flow)` picks, once -w has written it."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with Path(gateway.flows).open("rb") as file:  # type: ignore[attr-defined]
            found = [f for f in io.FlowReader(file).stream() if match(f)]
        if found:
            return found[-1]
        time.sleep(0.05)
    raise AssertionError("the flow was never saved")


def by_model(model: str):
    return lambda f: (f.metadata.get("modelmux") or {}).get("requested_model") == model


def rendered(message: Any, flow: Any) -> str:
    contentviews.add(ModelmuxContentview())
    with taddons.context():  # the content views read mitmproxy's options
        result = contentviews.prettify_message(message, flow)
    assert result.view_name == "modelmux"
    return result.text


def test_a_translated_stream_keeps_both_sides(gateway, upstreams):
    upstream_stream = b"".join(sse(text_chunks()))
    upstreams["oai"].reply = lambda r: Reply(200, upstream_stream, {"content-type": "text/event-stream"})
    answer = post(gateway, "gpt-dash-stream", stream=True)
    assert answer.status_code == 200
    flow = saved(gateway, by_model("gpt-dash-stream"))
    notes = flow.metadata["modelmux"]
    summary = notes["summary"]
    assert {k: v for k, v in summary.items() if k not in ("time", "ttft_ms", "total_ms")} == {
        "kind": "routed", "method": "POST", "path": "/v1/messages", "requested_model": "gpt-dash-stream",
        "provider": "oai", "model": "gpt-test", "credential": "oai-main", "route": "routes[0]", "profile": None,
        "client_key": None,
        "status": 200, "error_type": None, "stop_reason": "end_turn", "stream": True, "input_tokens": 12,
        "cached_tokens": 0,
        "cache_write_tokens": 0, "output_tokens": 7, "tokens_estimated": False, "attempts": 1,
        "failover": ["oai/oai-main 200"],
        "quota": None,  # OpenAI Chat names no quota
        "login": None,  # the client's own login on passthrough, when its answer names a quota (test_quota_gateway.py)
    }
    assert 0 < summary["ttft_ms"] <= summary["total_ms"]
    assert abs(summary["time"] - time.time()) < 60
    assert re.fullmatch(r"200 · gpt-dash-stream → oai/gpt-test · in 12 out 7 · ttft \d+ ms · \d+ ms · "
                        r"oai-main \[routes\[0\]\]", flow.comment), flow.comment
    # The record: what went upstream, what came back, what the client got.
    assert flow.request.content == upstreams["oai"].received[0].body
    assert flow.request.pretty_url == f"{upstreams['oai'].url}/v1/chat/completions"
    assert flow.request.headers["authorization"] == "Bearer oai-main…3333"
    assert json.loads(notes["client_request"]["body"])["messages"] == [{"role": "user", "content": "hi"}]
    assert notes["client_request"]["path"] == "/v1/messages"
    assert dict(notes["client_request"]["headers"])["authorization"] == "Bearer client…9999"
    assert flow.response.content == answer.content
    assert notes["upstream_response"]["body"] == upstream_stream
    # ... and how the content view shows it.
    response_view = rendered(flow.response, flow)
    assert f"── assembled ──\n\n{GREETING}\n[stop_reason end_turn]" in response_view
    assert "── client received (Anthropic) ──\n\nevent: message_start\n" in response_view
    assert "── upstream answered (openai-chat) ──\n\nHTTP 200\n\n{\"id\":" in response_view
    request_view = rendered(flow.request, flow)
    # What went upstream comes first, right after what happened; the client's body last.
    assert request_view.startswith(
        "model: gpt-dash-stream → oai/gpt-test\nroute: routes[0]\ncredential: oai-main\nclient got: 200\n"
        f"overview: {gateway.url}/modelmux/overview\n\n"
        f"── sent upstream (openai-chat) ──\n\nPOST {upstreams['oai'].url}/v1/chat/completions\n\n{{\n  \"model\": \"gpt-test\""
    ), request_view[:600]
    assert '── client sent (Anthropic) ──\n\n{\n  "model": "gpt-dash-stream"' in request_view


def test_a_gemini_stream_shows_its_effort_thoughts_and_tokens(gateway, upstreams):
    parts = (gem.thought("Greet back.", gem.SIGNATURE), gem.text("Hi there"))
    upstreams["oai"].reply = gem.streaming(*gem.chunks(*parts, usage=gem.usage(prompt=30, candidates=5, cached=10, thoughts=4)))
    assert post(gateway, "gemini-dash", stream=True).status_code == 200
    flow = saved(gateway, by_model("gemini-dash"))
    summary = flow.metadata["modelmux"]["summary"]
    assert (summary["provider"], summary["model"], summary["credential"]) == ("google", "gemini-2.5-flash(2048)", "g-main")
    assert (summary["input_tokens"], summary["cached_tokens"], summary["output_tokens"]) == (20, 10, 9)
    assert re.fullmatch(r"200 · gemini-dash → google/gemini-2\.5-flash\(2048\) · in 20 \+10 cached out 9 · "
                        r"ttft \d+ ms · \d+ ms · g-main \[routes\[1\]\]", flow.comment), flow.comment
    assert flow.request.pretty_url == (f"{upstreams['oai'].url}/v1beta/models/gemini-2.5-flash"
                                       ":streamGenerateContent?alt=sse")
    assert flow.request.headers["x-goog-api-key"] == "g-main…ggg7"
    assert json.loads(flow.request.content)["generationConfig"]["thinkingConfig"] == {
        "thinkingBudget": 2048, "includeThoughts": True}
    response_view = rendered(flow.response, flow)
    assert "── assembled ──\n\n[thinking] Greet back.\nHi there\n[stop_reason end_turn]" in response_view
    assert "── upstream answered (gemini) ──\n\nHTTP 200\n\n" in response_view


def test_a_passthrough_stream_is_kept_once(gateway, upstreams):
    answer = post(gateway, "claude-dash-pass", stream=True)
    flow = saved(gateway, by_model("claude-dash-pass"))
    notes = flow.metadata["modelmux"]
    assert (notes["summary"]["credential"], notes["summary"]["input_tokens"], notes["summary"]["output_tokens"]) == (
        "client token", 12, 7)
    assert flow.response.content == answer.content == b"".join(message_events("claude-dash-pass"))
    assert notes["client_request"]["body"] is None  # the upstream got the client's bytes: not kept twice
    assert "upstream_response" not in notes
    assert flow.request.headers["authorization"] == "Bearer client…9999"
    assert "(the same body)" in rendered(flow.request, flow)


def test_a_failover_shows_the_path_and_the_winning_request(gateway, upstreams):
    upstreams["anthropic"].gate = lambda r: RATE_LIMITED if r.headers.get("x-api-key") == V_A else None
    try:
        assert post(gateway, "vendor-dash").status_code == 200
    finally:
        upstreams["anthropic"].gate = None
    flow = saved(gateway, by_model("vendor-dash"))
    notes, summary = flow.metadata["modelmux"], flow.metadata["modelmux"]["summary"]
    assert (summary["attempts"], summary["failover"], summary["credential"]) == (
        2, ["vendor/v-a 429", "vendor/v-b 200"], "v-b")
    assert flow.marked == ":arrows_counterclockwise:"
    assert re.fullmatch(r"🔄 200 · vendor-dash → vendor/vendor-model · in 12 out 7 · \d+ ms · "
                        r"vendor/v-a 429 → vendor/v-b 200 \[routes\[2\]\]", flow.comment), flow.comment
    # The relay is not what the record shows: the last attempt's request is.
    assert flow.request.pretty_url == f"{upstreams['anthropic'].url}/vendor/v1/messages"
    assert flow.request.headers["x-api-key"] == "v-b…2222"
    assert json.loads(flow.request.content)["model"] == "vendor-model"
    failed = notes["attempts"][0]
    assert (failed["request_body"], json.loads(failed["response_body"])["error"]["type"]) == (None, "rate_limit_error")
    assert "── vendor/v-a answered 429 (failed attempt) ──" in rendered(flow.response, flow)
    request_view = rendered(flow.request, flow)
    vendor = f"{upstreams['anthropic'].url}/vendor/v1/messages"
    assert (f"attempts:\n  1. vendor/v-a 429 at {vendor}: slow down\n  2. vendor/v-b 200 at {vendor}\n"
            f"overview: {gateway.url}/modelmux/overview\n\n── sent upstream (anthropic) ──\n\nPOST {vendor}\n") in request_view
    assert "── sent to vendor/v-a (failed attempt: 429) ──\n\nPOST " + vendor + "\n\n(the same body as sent upstream above)" in request_view


def test_an_upstream_error_is_marked_and_its_echoed_key_scrubbed(gateway, upstreams):
    upstreams["oai"].reply = lambda r: error_reply(401, f"Incorrect API key provided: {OAI_KEY}", code="invalid_api_key")
    assert post(gateway, "gpt-dash-401").status_code == 401
    flow = saved(gateway, by_model("gpt-dash-401"))
    summary = flow.metadata["modelmux"]["summary"]
    assert (summary["status"], summary["error_type"], summary["ttft_ms"]) == (401, "authentication_error", None)
    assert flow.marked == ":x:"
    assert OAI_KEY.encode() not in Path(gateway.flows).read_bytes()  # type: ignore[attr-defined]
    assert b"oai-main\xe2\x80\xa63333" in flow.metadata["modelmux"]["upstream_response"]["body"]


def test_local_and_refused_answers_are_told_apart(gateway):
    httpx.get(f"{gateway.url}/healthz")
    local = saved(gateway, lambda f: f.request.path == "/healthz")
    assert (local.comment, local.marked, local.metadata["modelmux"]["summary"]["kind"]) == (
        "🏠 200 · GET /healthz", ":house:", "local")
    httpx.post(f"{gateway.url}/v1/messages/count_tokens", json={"model": "gpt-dash-count", "messages": []})
    counted = saved(gateway, by_model("gpt-dash-count"))
    assert counted.comment == "🏠 200 · gpt-dash-count → oai/gpt-test [routes[0]] · count_tokens answered locally (estimate)"
    httpx.post(f"{gateway.url}/v1/messages", content=b"{not json", headers={"x-dash": "refused"})
    refused = saved(gateway, lambda f: f.request.headers.get("x-dash") == "refused")
    assert refused.metadata["modelmux"]["summary"]["kind"] == "refused"
    assert refused.comment.startswith("⚠ 400 invalid_request_error · modelmux: request body is not valid JSON")
    assert refused.marked == ":warning:"


SUMMARY = {"kind": "routed", "method": "POST", "path": "/v1/messages", "requested_model": "m", "provider": "p",
           "model": "u", "route": "routes[0]", "credential": "k", "status": 200, "error_type": None,
           "input_tokens": 5, "cached_tokens": 3000, "output_tokens": 40, "tokens_estimated": False,
           "ttft_ms": 812.4, "total_ms": 2345.6, "stream": True, "attempts": 1, "failover": ["p/k 200"], "quota": None}


@pytest.mark.parametrize("change, expected", [
    ({}, "200 · m → p/u · in 5 +3000 cached out 40 · ttft 812 ms · 2.35 s · k [routes[0]]"),
    ({"attempts": 2, "failover": ["p/j 429", "p/k 200"], "stream": False, "total_ms": 48.2},
     "🔄 200 · m → p/u · in 5 +3000 cached out 40 · 48 ms · p/j 429 → p/k 200 [routes[0]]"),
    ({"status": 401, "error_type": "authentication_error", "input_tokens": 0, "cached_tokens": 0, "output_tokens": 0,
      "ttft_ms": None, "stream": False, "failover": ["p/k 401"]},
     "❌ 401 authentication_error · m → p/u · 2.35 s · k [routes[0]]"),
    ({"status": 504, "error_type": "timeout_error", "input_tokens": 0, "cached_tokens": 0, "output_tokens": 0,
      "ttft_ms": None, "stream": False, "failover": ["p/k timeout"], "total_ms": 1004.0},
     "❌ 504 timeout_error · m → p/u · 1.00 s · k timeout [routes[0]]"),
    ({"error_type": "api_error", "input_tokens": 9, "cached_tokens": 0, "output_tokens": 0, "tokens_estimated": True,
      "failover": ["p/k reset"], "total_ms": 7.0},
     "⚠ 200, then api_error · m → p/u · in 9 (estimate) out 0 · 7 ms · k reset [routes[0]]"),
    ({"status": 502, "error_type": "api_error", "input_tokens": 0, "cached_tokens": 0, "output_tokens": 0,
      "ttft_ms": None, "attempts": 2, "failover": ["p/k connect", "q/j 429"], "route": None},
     "❌🔄 502 api_error · m → p/u · 2.35 s · p/k connect → q/j 429"),
    ({"status": 0, "input_tokens": 0, "cached_tokens": 0, "output_tokens": 0, "ttft_ms": None, "attempts": 2,
      "failover": ["p/k reset", "q/j timeout"]},
     "❌🔄 no answer · m → p/u · 2.35 s · p/k reset → q/j timeout [routes[0]]"),
    ({"quota": {"windows": [{"name": "5h", "used": 0.42}, {"name": "7d", "used": None}]}},
     "200 · m → p/u · in 5 +3000 cached out 40 · ttft 812 ms · 2.35 s · k [routes[0]] · quota 5h 42%"),
    ({"kind": "forwarded", "path": "/v1/files", "method": "GET", "provider": "anthropic", "total_ms": 85.0},
     "200 · passthrough GET /v1/files → anthropic · 85 ms"),
])
def test_the_line_puts_what_the_client_got_first(change: dict, expected: str) -> None:
    assert line({**SUMMARY, **change}) == expected


def test_a_stream_that_breaks_off_counts_as_an_error(gateway, upstreams):
    pieces = sse(text_chunks(), done=False)[:3]
    upstreams["oai"].reply = lambda r: Stream(pieces, complete=False)
    answer = post(gateway, "gpt-dash-broken", stream=True)
    assert answer.content.count(b"event: error\n") == 1 and b"broke off its answer mid-stream" in answer.content
    flow = saved(gateway, by_model("gpt-dash-broken"))
    summary = flow.metadata["modelmux"]["summary"]
    assert (summary["status"], summary["error_type"], flow.marked) == (200, "api_error", ":warning:")
    # The client got a 200 and then an error event; the input count is modelmux's own
    # estimate, which message_start carried: the upstream's usage never came.
    assert (summary["input_tokens"], summary["tokens_estimated"]) == (9, True)
    assert re.fullmatch(r"⚠ 200, then api_error · gpt-dash-broken → oai/gpt-test · in 9 \(estimate\) out 0 · "
                        r"\d+ ms · oai-main reset \[routes\[0\]\]", flow.comment), flow.comment
    assert summary["ttft_ms"] is not None
    # The flow is finished, and says why it broke off where mitmproxy said only "peer closed".
    assert flow.response.timestamp_end is not None
    assert re.fullmatch(r"provider 'oai' \(http://127\.0\.0\.1:\d+\) closed the connection without a complete "
                        r"answer: HTTP/1 protocol error: .*", flow.error.msg), flow.error.msg


def test_a_relayed_flow_keeps_no_client_token_even_where_an_upstream_echoed_it(gateway, upstreams):
    """Passthrough with a fallback goes through the relay; the first upstream rejects the
    client's token and quotes it, the fallback answers."""
    def echo(request):
        if request.headers.get("authorization") == f"Bearer {CLIENT_TOKEN}":
            return Reply(401, json.dumps({"type": "error", "error": {
                "type": "authentication_error", "message": f"invalid token {CLIENT_TOKEN}"}}).encode())
        return None

    upstreams["anthropic"].gate = echo
    try:
        assert post(gateway, "echo-dash").status_code == 200
    finally:
        upstreams["anthropic"].gate = None
    flow = saved(gateway, by_model("echo-dash"))
    failed = flow.metadata["modelmux"]["attempts"][0]
    assert (failed["provider"], failed["outcome"]) == ("anthropic", 401)
    assert b"invalid token client\xe2\x80\xa69999" in failed["response_body"]
    assert dict(flow.metadata["modelmux"]["client_request"]["headers"])["authorization"] == "Bearer client…9999"
    assert CLIENT_TOKEN.encode() not in Path(gateway.flows).read_bytes()  # type: ignore[attr-defined]


@pytest.mark.parametrize("stream", [False, True], ids=["json-relay", "stream-mitmproxy"])
def test_a_timeout_is_a_finished_flow_with_the_answer_the_client_got(gateway, upstreams, stream):
    upstreams["oai"].reply = lambda r: Hang()
    answer = post(gateway, "slow-dash", stream=stream)
    assert answer.status_code == 504
    flow = saved(gateway, lambda f: by_model("slow-dash")(f) and f.metadata["modelmux"].get("relay", False) != stream)
    # On mitmproxy's path, mitmproxy sent the page from outside the flow: the flow shows
    # it as its response. The relay answered the flow itself.
    assert (flow.response.status_code, flow.response.content) == (504, answer.content)
    assert flow.response.headers["content-type"] == "application/json"
    assert flow.response.timestamp_end is not None
    reason = f"provider 'slow' (http://127.0.0.1:{upstreams['oai'].port}) did not answer within 1 s (response_timeout)"
    assert json.loads(answer.content)["error"] == {"type": "timeout_error", "message": reason}
    if stream:
        assert flow.error.msg == reason  # not mitmproxy's "server closed connection"
    else:
        assert flow.error is None
    assert re.fullmatch(r"❌ 504 timeout_error · slow-dash → slow/gpt-slow · 1\.\d\d s · slow-main timeout "
                        r"\[routes\[4\]\]", flow.comment), flow.comment
    assert flow.marked == ":x:"
    assert f"client got: 504 timeout_error: {reason}\n" in rendered(flow.request, flow)


def test_a_failed_attempt_says_why_and_where_without_the_query(gateway, upstreams):
    """The trail said only `connect`; the reason and the address were in the log alone."""
    assert post(gateway, "gone-dash").status_code == 200
    flow = saved(gateway, by_model("gone-dash"))
    failed = flow.metadata["modelmux"]["attempts"][0]
    url = f"http://127.0.0.1:{DEAD_PORT}/v1/chat/completions"
    reason = f"provider 'gone' (http://127.0.0.1:{DEAD_PORT}) cannot be connected to: [Errno 111] Connect call failed ('127.0.0.1', {DEAD_PORT})"
    assert (failed["outcome"], failed["upstream"], failed["error"]) == ("connect", url, reason)
    assert re.fullmatch(r"🔄 200 · gone-dash → vendor/vendor-model · in 12 out 7 · \d+ ms · gone/gone-main connect → "
                        r"vendor/v-a 200 \[routes\[5\]\]", flow.comment), flow.comment
    request_view = rendered(flow.request, flow)
    assert f"attempts:\n  1. gone/gone-main connect at {url}: {reason}\n  2. vendor/v-a 200 at " in request_view
    assert f"── sent to gone/gone-main (failed attempt: connect) ──\n\nPOST {url}\n\n{{" in request_view
    assert OAI_KEY not in request_view and OAI_KEY not in flow.comment
