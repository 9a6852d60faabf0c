"""The dashboard as a person sees it: the gateway under mitmweb (the launcher's `--web`
settings), loaded by headless Chromium. The flow list shows each flow's summary, a
streamed translated answer's response view shows the text the client assembled, and
no configured secret shows up anywhere mitmweb or a saved flow file can show it.

Screenshots go to tests/artifacts/ (the run's summary lists them)."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest
from browser import WAIT, Browser, find_chromium
from gateway import Gateway
from leaks import describe, find_leaks, finished_flows, mitmweb_surfaces
from claude_code_requests import claude_code_turn
from openai_upstream import (
    GREETING, ROUTES_ENV, client, error_reply, openai_like, routes_yaml, sse, text_chunks, usage,
)
from upstream import Behaviour, Hang, Received, Reply, Stream, Upstream, anthropic_like

CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="no Chromium: install it (Debian/Ubuntu: apt-get install chromium; ./dev.sh test does as root) "
    "or point MODELMUX_CHROMIUM at a Chromium or Chrome binary",
)
STREAMED = "Streamed through modelmux: naïve café, 3 × 4 = 12 ✓"
REASONING = "The user says hi; answer in one line."
ASSEMBLED = "── assembled ──"
# The "assembled" block of the stream's response view: what the client put together.
USAGE = {"input_tokens": 30, "output_tokens": 11, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
ANSWER = [f"[thinking] {REASONING}", STREAMED, f"[stop_reason end_turn] usage {json.dumps(USAGE)}"]
HEADING = re.compile(r"^── .* ──$", re.M)
TOOL_SCHEMAS = json.loads((Path(__file__).parent / "data" / "claude_code_tool_schemas.json").read_text())


@pytest.fixture
def server() -> Iterator[Upstream]:
    with Upstream() as fake:
        yield fake


# -- the browser ------------------------------------------------------------------

def streamed_translation(request: Received) -> Behaviour:
    """A reasoning model's streamed answer; anything else as OpenAI would answer it."""
    body = request.json()
    if body.get("stream"):
        return Stream(sse(text_chunks(STREAMED, model=body["model"], reasoning=REASONING, usage=usage(30, 11))))
    return openai_like(request)


@needs_chromium
def test_the_flow_list_shows_summaries_and_a_stream_shows_its_assembled_text(
    tmp_path: Path, server: Upstream, artifact: Callable[[str], Path]
) -> None:
    server.reply = streamed_translation
    with Gateway(tmp_path, routes_yaml(server.url), ROUTES_ENV, web=True) as gateway, Browser(CHROMIUM) as browser:
        sdk = client(gateway)
        with sdk.messages.stream(model="claude-sonnet-4-5", max_tokens=256,
                                 messages=[{"role": "user", "content": "hi"}]) as stream:
            assert stream.get_final_text() == STREAMED
        answer = sdk.messages.create(model="claude-sonnet-4-5", max_tokens=64, messages=[{"role": "user", "content": "hi"}])
        assert answer.content[0].text == GREETING
        assert httpx.get(f"{gateway.url}/healthz").status_code == 200
        with pytest.raises(anthropic.APIStatusError):  # no route: modelmux refuses it itself
            sdk.messages.create(model="unrouted-model", max_tokens=8, messages=[{"role": "user", "content": "hi"}])

        flows = finished_flows(gateway, 5)  # and the gateway's own /healthz polls while it started
        comments = [flow["comment"] for flow in flows]
        head, tail = r"200 · claude-sonnet-4-5 → oai/gpt-test", r"[\d.]+ m?s · oai-main \[routes\[0\]\]"
        streamed = [f for f in flows if re.fullmatch(rf"{head} · in 30 out 11 · ttft \d+ ms · {tail}", f["comment"])]
        whole = [f for f in flows if re.fullmatch(rf"{head} · in 12 out 7 · {tail}", f["comment"])]
        assert (len(streamed), len(whole)) == (1, 1), comments
        assert comments[-2:] == [
            "🏠 200 · GET /healthz",
            "⚠ 404 not_found_error · modelmux: model 'unrouted-model' matches no route in routes.yaml and there is "
            "no default; models that exist: claude-sonnet-4-5; routes match claude-*, reasoner-*, azure-*, textonly-*",
        ]

        browser.open(f"{gateway.web_url}#/flows")
        assert shown_comments(browser, gateway) == comments
        headers = browser.evaluate("[...document.querySelectorAll('.flow-table thead th')].map(th => th.innerText)")
        # The launcher's one column. mitmweb adds unlabelled ones of its own (quick
        # actions; 12.3 one more), which are not ours to pin.
        assert [header for header in headers if header] == ["Comment"], headers
        cut = browser.evaluate("[...document.querySelectorAll('td.col-comment')]"
                               ".filter(td => td.scrollWidth > td.clientWidth).map(td => td.innerText)")
        # A model call's summary fits its cell whole in a 1600 px window, not cut off with "…"
        # (a refusal's message may be longer; the flow's Comment tab has all of it).
        assert [flow["comment"] for flow in streamed + whole if flow["comment"] in cut] == []
        browser.screenshot(artifact("dashboard-flow-list.png"))

        # The hash route mitmweb itself keeps in the address bar for a flow's response tab.
        browser.open(f"{gateway.web_url}#/flows/{streamed[0]['id']}/response")
        view = browser.wait_for(
            "(h => h && h.innerText !== 'Loading...' && h.innerText)(document.querySelector('.contentview h5'))",
            "the response's content view",
        )
        assert view == "modelmux"  # picked by mitmweb's "auto" for a flow modelmux handled
        assert _assembled(_content_text(browser)) == ANSWER

        # Picked by hand, as a person would from the "View:" menu.
        browser.evaluate("[...document.querySelectorAll('.contentview .controls a')]"
                         ".find(a => a.innerText.includes('View:')).click()")
        browser.wait_for("[...document.querySelectorAll('.dropdown-menu a')].some(a => a.innerText === 'modelmux')",
                         "the content view menu")
        browser.evaluate("[...document.querySelectorAll('.dropdown-menu a')].find(a => a.innerText === 'modelmux').click()")
        browser.wait_for_text("View: modelmux")
        text = _content_text(browser)
        assert _assembled(text) == ANSWER
        api = gateway.web_api(f"/flows/{streamed[0]['id']}/response/content/modelmux.json").json()
        assert _lines(text) == _lines(api["text"])  # the page shows all of it, not a cut-off prefix
        browser.screenshot(artifact("dashboard-response.png"))


# -- failures, and a real-size request --------------------------------------------------

FAILING_ROUTES = """
providers:
  pool: {{protocol: openai-chat, base_url: "{url}/pool/v1", credentials: [{{label: pool-a, key: "${{POOL_A}}"}}, {{label: pool-b, key: "${{POOL_B}}"}}]}}
  slow: {{protocol: openai-chat, base_url: "{url}/slow/v1", response_timeout: 1, credentials: [{{label: s1, key: "${{POOL_B}}"}}]}}
  cut: {{protocol: openai-chat, base_url: "{url}/cut/v1", credentials: [{{label: c1, key: "${{POOL_B}}"}}]}}
  shut: {{protocol: openai-chat, base_url: "{url}/shut/v1", credentials: [{{label: k1, key: "${{POOL_B}}"}}]}}
  oai: {{protocol: openai-chat, base_url: "{url}/v1", credentials: [{{label: oai-main, key: "${{POOL_B}}"}}]}}
routes:
  - {{match: "pool-*", provider: pool, model: gpt-pool}}
  - {{match: "slow-*", provider: slow, model: gpt-slow}}
  - {{match: "cut-*", provider: cut, model: gpt-cut}}
  - {{match: "shut-*", provider: shut, model: gpt-shut}}
default: {{provider: oai, model: gpt-test}}
"""
FAILING_ENV = {"POOL_A": "sk-pool-aaaaaaaaaaaaaaaa-1111", "POOL_B": "sk-pool-bbbbbbbbbbbbbbbb-2222"}
# Each one whole in the list, with a flow open beside it (1600 px): what the client got first.
FAILURES = {
    "failover": r"🔄 200 · pool-x → pool/gpt-pool · in 12 out 7 · \d+ ms · pool/pool-a 429 → pool/pool-b 200 \[routes\[0\]\]",
    "timeout": r"❌ 504 timeout_error · slow-x → slow/gpt-slow · 1\.\d\d s · s1 timeout \[routes\[1\]\]",
    "broken": r"⚠ 200, then api_error · cut-x → cut/gpt-cut · in \d+ \(estimate\) out 0 · \d+ ms · c1 reset \[routes\[2\]\]",
    "error": r"❌ 401 authentication_error · shut-x → shut/gpt-shut · \d+ ms · k1 \[routes\[3\]\]",
}
UPSTREAM_HEADING = "── sent upstream (openai-chat) ──"


def failing_upstream(request: Received) -> Behaviour:
    if request.path.startswith("/slow/"):
        return Hang()
    if request.path.startswith("/cut/"):
        return Stream(sse(text_chunks(), done=False)[:3], complete=False)
    if request.path.startswith("/shut/") or token_of(request) == FAILING_ENV["POOL_A"]:
        return error_reply(429 if request.path.startswith("/pool/") else 401, "no", code="no")
    return streamed_translation(request)


def claude_code_request() -> dict[str, Any]:
    """A turn as Claude Code sends it, with its real tools: some 900 lines as JSON."""
    body = claude_code_turn()
    body["tools"] = [{"name": name, "description": f"The {name} tool", "input_schema": schema}
                     for name, schema in TOOL_SCHEMAS.items()]
    return body


@needs_chromium
def test_failures_read_whole_beside_an_open_flow_which_leads_with_its_upstream_request(
    tmp_path: Path, server: Upstream, artifact: Callable[[str], Path]
) -> None:
    server.reply = failing_upstream
    with Gateway(tmp_path, FAILING_ROUTES.format(url=server.url), FAILING_ENV, web=True) as gateway, \
            Browser(CHROMIUM) as browser:
        sdk = anthropic.Anthropic(base_url=gateway.url, api_key="sk-ant-api03-client-web-7777", max_retries=0)
        hi = [{"role": "user", "content": "hi"}]
        assert sdk.messages.create(model="pool-x", max_tokens=16, messages=hi).content[0].text == GREETING
        with pytest.raises(anthropic.InternalServerError) as timed_out:
            sdk.messages.create(model="slow-x", max_tokens=16, messages=hi)
        assert (timed_out.value.status_code, timed_out.value.body["error"]["type"]) == (504, "timeout_error")
        with pytest.raises(anthropic.APIStatusError) as broke, sdk.messages.stream(model="cut-x", max_tokens=16, messages=hi) as stream:
            stream.get_final_text()
        assert broke.value.status_code == 200  # the error came as an event, after the answer began
        with pytest.raises(anthropic.AuthenticationError):
            sdk.messages.create(model="shut-x", max_tokens=16, messages=hi)
        claude_code = claude_code_request()
        answer = httpx.post(f"{gateway.url}/v1/messages", json=claude_code, timeout=30,
                            headers={"x-api-key": "sk-ant-api03-client-web-7777", "anthropic-version": "2023-06-01"})
        assert answer.status_code == 200 and "event: message_stop" in answer.text and "event: error" not in answer.text

        flows = finished_flows(gateway, 6)
        by_kind = {kind: [f for f in flows if re.fullmatch(pattern, f["comment"])] for kind, pattern in FAILURES.items()}
        assert {kind: len(found) for kind, found in by_kind.items()} == dict.fromkeys(FAILURES, 1), \
            [f["comment"] for f in flows]
        timeout = by_kind["timeout"][0]
        # The timeout is a finished flow: it has the answer the client got (the relay's, a
        # JSON answer's attempt being the relay's: no mitmproxy error beside it).
        assert (timeout["response"]["status_code"], timeout.get("error")) == (504, None)
        [claude] = [f for f in flows if f["comment"].startswith("200 · claude-sonnet-4-5 → oai/gpt-test")]

        browser.open(f"{gateway.web_url}#/flows")
        assert shown_comments(browser, gateway) == [flow["comment"] for flow in flows]
        assert f"127.0.0.1:{gateway.port}" in browser.wait_for_text("mitmproxy")  # the footer: where the gateway is
        assert "*:8080" not in browser.text()
        browser.screenshot(artifact("dashboard-failures-list.png"))

        # A flow open beside the list: each failure's summary still shows whole.
        browser.open(f"{gateway.web_url}#/flows/{claude['id']}/request")
        text = browser.wait_for("(p => p && p.innerText.includes('Show more') && p.innerText)"
                                "(document.querySelector('.contentview pre'))", "the request's content view")
        cut = browser.evaluate("[...document.querySelectorAll('td.col-comment')]"
                               ".filter(td => td.scrollWidth > td.clientWidth).map(td => td.innerText)")
        assert [found[0]["comment"] for found in by_kind.values() if found[0]["comment"] in cut] == []
        # A real Claude Code request is past mitmweb's 512-line cut; what went upstream is before it.
        shown = text.split("Show more")[0]
        assert UPSTREAM_HEADING in shown and f"POST {server.url}/v1/chat/completions" in shown
        assert '"model": "gpt-test"' in shown.split(UPSTREAM_HEADING, 1)[1]
        assert f"overview: {gateway.url}/modelmux/overview" in shown
        api = gateway.web_api(f"/flows/{claude['id']}/request/content/modelmux.json").json()
        assert len(_lines(api["text"])) > 512 and "── client sent (Anthropic) ──" not in shown
        browser.screenshot(artifact("dashboard-translated-request.png"))


def shown_comments(browser: Browser, gateway: Gateway) -> list[str]:
    """The comment column, row by row, once it shows what mitmweb's API lists (the page
    fetches the flows and then follows their updates; until it has fetched the options,
    it shows mitmweb's default columns, without the comment)."""
    deadline = time.monotonic() + WAIT
    while True:
        listed = [flow["comment"] for flow in gateway.web_api("/flows").json()]
        shown = browser.evaluate(
            "[...document.querySelectorAll('.flow-table tbody tr')]"
            ".filter(row => row.querySelector('td')).map(row => row.querySelector('td.col-comment')?.innerText)"
        )
        if shown == listed or time.monotonic() > deadline:
            assert shown == listed
            return shown
        time.sleep(0.1)


def _header(message: dict[str, Any] | None, name: str) -> str:
    return next((value for key, value in (message or {}).get("headers", []) if key.lower() == name), "")


def _content_text(browser: Browser) -> str:
    return browser.wait_for(f"(p => p && p.innerText.includes({json.dumps(ASSEMBLED)}) && p.innerText)"
                            "(document.querySelector('.contentview pre'))", "the assembled answer")


def _assembled(text: str) -> list[str]:
    """The lines of the "assembled" block of the modelmux content view (blank lines
    around it are drawn as empty or, since mitmweb 12.3, as a no-break space)."""
    after = text.split(ASSEMBLED, 1)[1]
    return _lines(HEADING.split(after, 1)[0])


def _lines(text: str) -> list[str]:
    """Non-blank lines: mitmweb draws each line as a <div>, and an empty one adds no line break."""
    return [line for line in text.split("\n") if line.strip()]


# -- secrets ------------------------------------------------------------------------

SECRETS = {
    "pool-a": "sk-pool-aaaaaaaaaaaaaaaa-1111",  # rejected by the upstream, which echoes it
    "pool-b": "sk-pool-bbbbbbbbbbbbbbbb-2222",
    "solo-main": "sk-solo-ssssssssssssssss-3333",  # rejected, echoed, on a route with no failover
    "vendor-main": "vendor-key-vvvvvvvvvvvvv-4444",
    "gateway key": "mm-gateway-gggggggggggggg-5555",
    "client token": "sk-ant-api03-client-cccccccccc-6666",  # the client's own, passed through to `mine`
}
REJECTED = {SECRETS["pool-a"], SECRETS["solo-main"]}
SECRET_ENV = {"POOL_A": SECRETS["pool-a"], "POOL_B": SECRETS["pool-b"], "SOLO": SECRETS["solo-main"],
              "VENDOR": SECRETS["vendor-main"], "GATEWAY_KEY": SECRETS["gateway key"]}


def secret_routes(url: str) -> str:
    return f"""
server:
  api_key: "${{GATEWAY_KEY}}"
providers:
  pool:
    protocol: openai-chat
    base_url: "{url}/pool/v1"
    credentials: [{{label: pool-a, key: "${{POOL_A}}"}}, {{label: pool-b, key: "${{POOL_B}}"}}]
  solo:
    protocol: openai-chat
    base_url: "{url}/solo/v1"
    credentials: [{{label: solo-main, key: "${{SOLO}}"}}]
  vendor:
    protocol: anthropic
    base_url: "{url}/vendor"
    credentials: [{{label: vendor-main, key: "${{VENDOR}}"}}]
  mine:
    protocol: anthropic
    base_url: "{url}/mine"
    auth: passthrough
routes:
  - {{match: "pool-*", provider: pool, model: gpt-pool}}
  - {{match: "solo-*", provider: solo, model: gpt-solo}}
  - {{match: "vendor-*", provider: vendor}}
  - {{match: "mine-*", provider: mine}}
default: null
"""


def token_of(request: Received) -> str:
    return request.headers.get("authorization", "").removeprefix("Bearer ") or request.headers.get("x-api-key", "")


def echoing_upstream(request: Received) -> Behaviour:
    """Rejects some keys (and any model named *-reject) with a 401 that quotes the key,
    as OpenAI does ("Incorrect API key provided: sk-..."); answers the rest."""
    token = token_of(request)
    openai = "/chat/completions" in request.path
    if token in REJECTED or "-reject" in request.json().get("model", ""):
        if openai:
            return error_reply(401, f"Incorrect API key provided: {token}.", code="invalid_api_key")
        body = {"type": "error", "error": {"type": "authentication_error", "message": f"invalid x-api-key: {token}"}}
        return Reply(401, json.dumps(body).encode())
    return openai_like(request) if openai else anthropic_like(request)


def test_no_configured_secret_is_visible_in_mitmweb_or_a_saved_flow(tmp_path: Path, server: Upstream) -> None:
    server.reply = echoing_upstream
    saved, usage_file = tmp_path / "flows.mitm", tmp_path / "usage.jsonl"
    gateway = Gateway(tmp_path, secret_routes(server.url), SECRET_ENV,
                      ["-w", str(saved), "--set", f"modelmux_usage_file={usage_file}"], web=True)
    with gateway:
        sdk = anthropic.Anthropic(base_url=gateway.url, api_key=SECRETS["client token"], max_retries=0,
                                  default_headers={"x-modelmux-key": SECRETS["gateway key"]})
        hi = [{"role": "user", "content": "hi"}]
        for _ in range(2):
            assert sdk.messages.create(model="pool-x", max_tokens=16, messages=hi).content[0].text == GREETING
        with sdk.messages.stream(model="pool-x", max_tokens=16, messages=hi) as stream:
            assert stream.get_final_text() == GREETING
        sdk.messages.count_tokens(model="pool-x", messages=hi)
        with sdk.messages.stream(model="vendor-x", max_tokens=16, messages=hi) as stream:
            stream.get_final_text()
        with sdk.messages.stream(model="mine-x", max_tokens=16, messages=hi) as stream:
            stream.get_final_text()
        for model in ("solo-x", "vendor-reject", "mine-reject"):
            with pytest.raises(anthropic.AuthenticationError):
                sdk.messages.create(model=model, max_tokens=16, messages=hi)
        with pytest.raises(anthropic.APIStatusError):
            sdk.messages.create(model="unrouted-x", max_tokens=16, messages=hi)
        keyless = anthropic.Anthropic(base_url=gateway.url, api_key=SECRETS["client token"], max_retries=0)
        with pytest.raises(anthropic.AuthenticationError):  # no gateway key: refused at the door
            keyless.messages.create(model="pool-x", max_tokens=16, messages=hi)
        for path in ("/healthz", "/v1/models", "/modelmux/credentials", "/modelmux/usage"):
            httpx.get(f"{gateway.url}{path}", headers={"x-modelmux-key": SECRETS["gateway key"]}).raise_for_status()

        # Every secret was in play: the upstream got each one, and rejected (and echoed) some.
        assert set(SECRETS.values()) - {SECRETS["gateway key"]} <= {token_of(r) for r in server.received}
        flows = finished_flows(gateway, 16)  # the 15 requests above and the gateway's first /healthz poll
        shown = dict(mitmweb_surfaces(gateway, flows))
    shown[f"saved flow file {saved.name} (-w)"] = saved.read_bytes()
    shown["the gateway's console log"] = gateway.log.read_bytes()
    shown[f"the usage file {usage_file.name}"] = usage_file.read_bytes()

    leaks = find_leaks(shown, SECRETS)
    assert not leaks, describe(leaks)
    # The upstream requests as mitmweb lists them carry the keys' redacted forms instead.
    listed = json.dumps(flows, ensure_ascii=False)
    for name, label in (("pool-b", "pool-b"), ("solo-main", "solo-main"), ("vendor-main", "vendor-main"),
                        ("client token", "client")):
        assert f"{label}…{SECRETS[name][-4:]}" in listed, name
