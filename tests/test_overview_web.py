"""The overview page as a person sees it: the gateway under mitmweb with a gateway key,
traffic through local fakes (one credential of a pool answers 429 with Retry-After, one
provider rejects its key), then /modelmux/overview in headless Chromium. Without the key
the page shows no data and the JSON answers 401; with it, the page shows the cooling
credential, today's usage and the errors with links to mitmweb's flows, and no secret
shows in its files, its JSON or its text. And the filter recipe for one Claude Code
session's requests, checked with mitmweb's own filter.

The screenshot goes to tests/artifacts/overview.png."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import date
from io import BytesIO
from pathlib import Path
from urllib.parse import quote

import anthropic
import httpx
import pytest
from browser import Browser, find_chromium
from gateway import Gateway
from leaks import describe, find_leaks
from mitmproxy import http
from mitmproxy.io import FlowReader
from modelmux.addons.overview import PAGES
from modelmux.secrets import fingerprint
from openai_upstream import error_reply, openai_like
from test_dashboard_web import token_of
from upstream import Behaviour, Received, Reply, Upstream, anthropic_like

CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium (see tests/test_dashboard_web.py)")
SECRETS = {
    "pool-a": "sk-pool-aaaaaaaaaaaaaaaa-1111",  # answers 429 with Retry-After
    "pool-b": "sk-pool-bbbbbbbbbbbbbbbb-2222",
    "solo-main": "sk-solo-ssssssssssssssss-3333",  # rejected, and echoed by the upstream
    "gateway key": "mm-gateway-gggggggggggggg-5555",
    "client token": "sk-ant-api03-client-cccccccccc-6666",  # the client's own, passed through to `mine`
}
ENV = {"POOL_A": SECRETS["pool-a"], "POOL_B": SECRETS["pool-b"], "SOLO": SECRETS["solo-main"],
       "GATEWAY_KEY": SECRETS["gateway key"]}
KEYED = {"x-modelmux-key": SECRETS["gateway key"]}
RETRY_AFTER = 600
SESSION = "0f4c6d5e-7a1b-4c2d-9e3f-5a6b7c8d9e0f"  # Claude Code's session ids are UUIDs
OTHER_SESSION = "9b8a7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d"
DATA_PATHS = ("/modelmux/credentials", "/modelmux/usage", "/modelmux/errors")


def routes(url: str) -> str:
    return f"""
server:
  api_key: "${{GATEWAY_KEY}}"
providers:
  pool:
    protocol: anthropic
    base_url: "{url}/pool"
    credentials: [{{label: pool-a, key: "${{POOL_A}}"}}, {{label: pool-b, key: "${{POOL_B}}"}}]
  solo:
    protocol: openai-chat
    base_url: "{url}/solo/v1"
    credentials: [{{label: solo-main, key: "${{SOLO}}"}}]
  mine:
    protocol: anthropic
    base_url: "{url}/mine"
    auth: passthrough
routes:
  - {{match: "pool-*", provider: pool}}
  - {{match: "solo-*", provider: solo, model: gpt-solo}}
  - {{match: "mine-*", provider: mine}}
default: null
"""


def upstream(request: Received) -> Behaviour:
    token = token_of(request)
    if token == SECRETS["pool-a"]:
        body = {"type": "error", "error": {"type": "rate_limit_error", "message": "slow down"}}
        return Reply(429, json.dumps(body).encode(), {"content-type": "application/json",
                                                      "retry-after": str(RETRY_AFTER)})
    if token == SECRETS["solo-main"]:
        return error_reply(401, f"Incorrect API key provided: {token}.", code="invalid_api_key")
    if request.path.startswith("/mine/"):  # the client's own login: Anthropic says what is left of it
        reply = anthropic_like(request)
        assert isinstance(reply, Reply)
        return Reply(reply.status, reply.body, {**reply.headers, **QUOTA_HEADERS})
    return openai_like(request) if "/chat/completions" in request.path else anthropic_like(request)


QUOTA_HEADERS = {"anthropic-ratelimit-unified-status": "allowed",
                 "anthropic-ratelimit-unified-5h-utilization": "0.42",
                 "anthropic-ratelimit-unified-5h-reset": str(int(time.time()) + 7200)}


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Gateway]:
    with Upstream() as server:
        server.reply = upstream
        with Gateway(tmp_path, routes(server.url), ENV, web=True) as running:
            yield running


def traffic(gateway: Gateway) -> None:
    """Three answers from the pool (pool-a's 429 fails over to pool-b), one from the
    passthrough provider, a rejected key and a model with no route."""
    sdk = anthropic.Anthropic(base_url=gateway.url, api_key=SECRETS["client token"], max_retries=0,
                              default_headers=KEYED)
    hi = [{"role": "user", "content": "hi"}]
    for session in (SESSION, SESSION, OTHER_SESSION):
        sdk.messages.create(model="pool-x", max_tokens=16, messages=hi,
                            extra_headers={"X-Claude-Code-Session-Id": session})
    sdk.messages.create(model="mine-x", max_tokens=16, messages=hi, extra_headers={"X-Claude-Code-Session-Id": SESSION})
    with pytest.raises(anthropic.AuthenticationError):
        sdk.messages.create(model="solo-x", max_tokens=16, messages=hi, extra_headers={"X-Claude-Code-Session-Id": SESSION})
    with pytest.raises(anthropic.NotFoundError):
        sdk.messages.create(model="unrouted-x", max_tokens=16, messages=hi)


def get(gateway: Gateway, path: str, **headers: str) -> httpx.Response:
    return httpx.get(f"{gateway.url}{path}", headers=headers, timeout=5)


@needs_chromium
def test_the_overview_shows_a_cooling_credential_todays_usage_and_errors_and_no_secret(
    gateway: Gateway, artifact: Callable[[str], Path]
) -> None:
    traffic(gateway)
    today = date.today().isoformat()
    web = f"http://127.0.0.1:{gateway.web_port}/"

    # Without the key: every data path refuses, the page's own files are served.
    refusal = {"type": "error", "error": {"type": "authentication_error", "message": (
        "this modelmux gateway requires its API key (server.api_key): send it in x-modelmux-key, x-api-key or "
        "Authorization: Bearer")}}
    for path in DATA_PATHS:
        response = get(gateway, path)
        assert (response.status_code, response.json()) == (401, refusal), path
    files = {path: get(gateway, path) for path in PAGES}
    for path, response in files.items():
        assert response.status_code == 200, path
        assert response.headers["content-security-policy"].startswith("default-src 'none'; script-src 'self';")
    assert files["/modelmux/overview"].headers["content-type"] == "text/html; charset=utf-8"
    assert "pool-a" not in files["/modelmux/overview"].text  # no data in the page itself
    bad = get(gateway, "/modelmux/usage?daily=yes", **KEYED)
    assert (bad.status_code, bad.json()) == (400, {"type": "error", "error": {
        "type": "invalid_request_error", "message": "daily: true or false"}})

    documents = {path: get(gateway, path, **KEYED) for path in DATA_PATHS}
    pool = {c["label"]: c for c in documents["/modelmux/credentials"].json()["providers"]["pool"]["credentials"]}
    assert (pool["pool-a"]["state"], pool["pool-b"]["state"]) == ("cooling", "healthy")
    [cooldown] = pool["pool-a"]["cooldowns"]
    assert (cooldown["status"], RETRY_AFTER - 60 < cooldown["seconds_left"] <= RETRY_AFTER) == (429, True)
    daily = get(gateway, "/modelmux/usage?days=14&by=provider&daily=true", **KEYED).json()
    assert [(d["day"], [(r["provider"], r["requests"], r["errors"]) for r in d["rows"]]) for d in daily["daily"][-1:]] == [
        (today, [("pool", 3, 0), ("mine", 1, 0), ("solo", 1, 1)])]
    errors = documents["/modelmux/errors"].json()
    assert errors["web_ui"] == web
    # Newest first: the refusals above (the gateway's own paths too), then the traffic's two.
    assert [(e["status"], e["error_type"], e["path"], e["requested_model"], e["credential"], e["message"])
            for e in errors["errors"]] == [
        (400, "invalid_request_error", "/modelmux/usage", None, None, "daily: true or false"),
        *[(401, "authentication_error", path, None, None, refusal["error"]["message"]) for path in reversed(DATA_PATHS)],
        (404, "not_found_error", "/v1/messages", None, None,
         "model 'unrouted-x' matches no route in routes.yaml and there is no default; no model is named in it; "
         "routes match pool-*, solo-*, mine-*"),
        (401, "authentication_error", "/v1/messages", "solo-x", "solo-main",
         "provider 'solo' answered HTTP 401 Unauthorized: Incorrect API key provided: solo-main…3333."),
    ]  # fmt: skip
    listed = {flow["id"]: flow for flow in gateway.web_api("/flows").json()}
    for error in errors["errors"]:
        assert error["link"] == f"{web}#/flows/{error['flow']}" and error["flow"] in listed

    with Browser(CHROMIUM, height=1700) as browser:  # tall enough for the whole page in the screenshot
        browser.open(f"{gateway.url}/modelmux/overview")
        text = browser.wait_for_text("needs its admin key")
        assert browser.evaluate("document.getElementById('data').hidden") is True
        assert "pool" not in text and "cooling" not in text
        seen = {"the page without the key (text)": text.encode(),
                "the page without the key (HTML)": browser.evaluate("document.documentElement.outerHTML").encode()}

        browser.evaluate(f"document.getElementById('key').value = {json.dumps(SECRETS['gateway key'])};"
                         "document.getElementById('key-form').requestSubmit()")
        text = browser.wait_for_text("pool-a", "cooling", "solo-x → solo/gpt-solo", "Incorrect API key provided")
        rows = browser.evaluate("[...document.querySelectorAll('#credentials tbody tr')]"
                                ".map(tr => [...tr.cells].slice(0, 3).map(td => td.innerText))")
        assert rows == [
            ["pool-a", "cooling", "rate_limit, 10 min left (429: rate limited; the upstream said retry in 10 min)"],
            ["pool-b", "healthy", ""],
            ["solo-main", "needs attention", "auth, 6.0 h left (401: the key was refused (revoked, mistyped or out of credit?))"],
            ["mine", fingerprint(SECRETS["client token"]), "api-key"],  # the client's own login, by its fingerprint
            ["default", "requests and this page", "any"],  # server.api_key
        ]  # fmt: skip
        login = browser.evaluate("[...document.querySelectorAll('#credentials tbody tr')].at(-2).cells[3].innerText")
        assert login.startswith("58% left · 5h 42%, resets in ")
        bars = browser.evaluate("[...document.querySelectorAll('svg.chart rect title')].map(t => t.textContent)")
        assert [bar for bar in bars if bar.startswith(today)] == [
            f"{today} pool: 3", f"{today} mine: 1", f"{today} solo: 1",
            f"{today} input: 48", f"{today} output: 28"]  # 4 answers of 12 in, 7 out; nothing cached  # fmt: skip
        by_provider = browser.evaluate("[...document.querySelectorAll('#usage table')][0].innerText")
        assert [line.split("\t")[:3] for line in by_provider.splitlines()] == [
            ["provider", "requests", "errors"], ["pool", "3", "0"], ["mine", "1", "0"], ["solo", "1", "1"],
            ["total", "5", "1"]]  # fmt: skip
        by_key = browser.evaluate("[...document.querySelectorAll('#usage table')][3].innerText")
        assert [line.split("\t")[:3] for line in by_key.splitlines()] == [
            ["client_key", "requests", "errors"], ["default", "5", "1"], ["total", "5", "1"]]  # server.api_key's
        links = browser.evaluate("[...document.querySelectorAll('#errors a')].map(a => [a.href, a.rel, a.target])")
        assert links == [[e["link"], "noopener noreferrer", "_blank"] for e in errors["errors"]]
        browser.screenshot(artifact("overview.png"))
        seen["the page with the key (text)"] = text.encode()
        seen["the page with the key (HTML)"] = browser.evaluate("document.documentElement.outerHTML").encode()
        assert browser.evaluate("location.href") == f"{gateway.url}/modelmux/overview"  # the key is in no URL

        browser.evaluate("document.getElementById('forget').click()")
        browser.wait_for("document.getElementById('data').hidden", "the data hidden once the key is forgotten")
        assert "pool-a" not in browser.text()

    seen |= {f"GET {path}": response.content for path, response in files.items()}
    seen |= {f"GET {path}": response.content for path, response in documents.items()}
    seen["GET /modelmux/usage?daily=true"] = json.dumps(daily).encode()
    leaks = find_leaks(seen, SECRETS)
    assert not leaks, describe(leaks)


def test_one_claude_code_sessions_requests_are_selected_by_mitmweb_filters(gateway: Gateway) -> None:
    """docs/dashboard.md's recipe, through mitmweb's own filter (GET /flows/dump?filter=,
    the same flowfilter as its search box): `~meta ID` selects the session's requests on
    every route, `~hq` only those sent to Anthropic's API itself, as third parties never
    get the header."""
    traffic(gateway)
    time.sleep(0.5)  # the last flows' response hooks

    def selected(expression: str) -> list[str]:
        dump = gateway.web_api(f"/flows/dump?filter={quote(expression)}").content
        flows = [f for f in FlowReader(BytesIO(dump)).stream() if isinstance(f, http.HTTPFlow)]
        return [f.metadata["modelmux"]["summary"]["requested_model"] for f in flows]

    assert selected(f"~meta {SESSION}") == ["pool-x", "pool-x", "mine-x", "solo-x"]
    assert selected(f"~meta {OTHER_SESSION}") == ["pool-x"]
    assert selected(f"~hq x-claude-code-session-id:\\s*{SESSION}") == ["mine-x"]
