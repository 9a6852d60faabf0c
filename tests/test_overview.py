"""The Overview addon in process: the recent errors it keeps from the Dashboard's
summaries (bounded, newest first, once per flow, without secrets), their links into
mitmweb when it runs, and the page's files as the gateway serves them."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from mitmproxy.test import taddons, tflow
from mitmproxy.tools.web.webaddons import WebAddon

from modelmux.addons import overview as overview_addon
from modelmux.addons.inbound import OPEN_PATHS
from modelmux.addons.overview import PAGE_HEADERS, PAGES, RECENT, Overview
from modelmux.addons.settings import Settings
from modelmux.cli.procs import OVERVIEW_PATH
from modelmux.credentials.cooldowns import iso

KEY = "sk-solo-ssssssssssssssss-3333"
GATEWAY_KEY = "mm-gateway-gggggggggggggg-5555"
ROUTES = f"""
server: {{api_key: {GATEWAY_KEY}}}
providers:
  solo: {{protocol: openai-chat, base_url: 'http://127.0.0.1:9/v1', credentials: [{{label: solo-main, key: {KEY}}}]}}
default: null
"""
NOW = time.time()


@pytest.fixture(autouse=True)
def state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MODELMUX_STATE_DIR", str(tmp_path / "state"))


def summary(**changes: Any) -> dict[str, Any]:
    return {
        "kind": "routed", "time": NOW, "method": "POST", "path": "/v1/messages", "requested_model": "solo-x",
        "provider": "solo", "model": "gpt-solo", "credential": "solo-main", "route": "routes[0]", "profile": None,
        "client_key": "default", "status": 200, "error_type": None, "stream": False, "input_tokens": 0,
        "cached_tokens": 0, "cache_write_tokens": 0, "output_tokens": 0, "ttft_ms": None, "total_ms": 12.0,
        "attempts": 1, "failover": ["solo/solo-main 200"], "quota": None,
    } | changes  # fmt: skip


def flow_with(summary_: dict[str, Any], error: str | None = None, body: dict[str, Any] | None = None) -> Any:
    flow = tflow.tflow(resp=True)
    flow.response.status_code = summary_["status"]
    flow.response.content = json.dumps(body).encode() if body is not None else b""
    flow.metadata["modelmux"] = {"summary": summary_, **({"error": error} if error else {})}
    return flow


@contextmanager
def running(tmp_path: Path, web: bool = False, **web_options: Any) -> Iterator[Overview]:
    config = tmp_path / "routes.yaml"
    config.write_text(ROUTES)
    settings = Settings()
    addon = Overview(settings)
    with taddons.context(settings, addon, *([WebAddon()] if web else [])) as context:
        context.configure(settings, modelmux_config=str(config))
        if web_options:
            context.options.update(**web_options)
        yield addon


def test_errors_are_kept_newest_first_once_each_and_without_secrets(tmp_path: Path) -> None:
    with running(tmp_path) as overview:
        rejected = flow_with(
            summary(status=401, error_type="authentication_error", failover=["solo/solo-main 401"]),
            body={"type": "error", "error": {"type": "authentication_error",
                                             "message": f"Incorrect API key provided: {KEY}; also sk-proj-abcdefghijklmnop"}})
        refused = flow_with(
            summary(kind="refused", path="/v1/messages", requested_model=None, provider=None, model=None,
                    credential=None, status=404, error_type="not_found_error", failover=[]),
            error="model 'x' matches no route in routes.yaml and there is no default")
        for flow in (flow_with(summary()), rejected, refused):
            overview.response(flow)
        overview.error(refused)  # a flow that ends in response and error is one error
        overview.response(tflow.tflow(resp=True))  # not modelmux's: no notes
        overview.response(flow_with(summary(kind="local", path="/healthz", status=200)))
        assert overview.document() == {"kept": RECENT, "web_ui": None, "errors": [
            {"flow": refused.id, "time": iso(NOW), "kind": "refused", "method": "POST", "status": 404,
             "error_type": "not_found_error", "requested_model": None, "provider": None, "model": None,
             "credential": None, "client_key": "default", "failover": [], "path": "/v1/messages",
             "message": "model 'x' matches no route in routes.yaml and there is no default", "link": None},
            {"flow": rejected.id, "time": iso(NOW), "kind": "routed", "method": "POST", "status": 401,
             "error_type": "authentication_error", "requested_model": "solo-x", "provider": "solo",
             "model": "gpt-solo", "credential": "solo-main", "client_key": "default",
             "failover": ["solo/solo-main 401"], "path": "/v1/messages",
             "message": "Incorrect API key provided: solo-main…3333; also sk-REDACTED", "link": None},
        ]}  # fmt: skip


def test_a_stream_that_broke_off_counts_and_only_the_newest_RECENT_are_kept(tmp_path: Path) -> None:
    with running(tmp_path) as overview:
        flows = [flow_with(summary(status=200, error_type="overloaded_error", time=NOW + i)) for i in range(RECENT + 5)]
        for flow in flows:
            overview.response(flow)
        errors = overview.document()["errors"]
    assert [e["flow"] for e in errors] == [f.id for f in reversed(flows[5:])]
    assert errors[0]["message"] is None  # nothing said in words: an error event mid-stream


def test_with_mitmweb_each_error_links_to_its_flow(tmp_path: Path) -> None:
    flow = flow_with(summary(status=529, error_type="overloaded_error"))
    with running(tmp_path, web=True, web_port=9091) as overview:
        overview.response(flow)
        document = overview.document()
        assert (document["web_ui"], document["errors"][0]["link"]) == (
            "http://127.0.0.1:9091/", f"http://127.0.0.1:9091/#/flows/{flow.id}")
    with running(tmp_path, web=True, web_host="::1") as overview:
        assert overview.document()["web_ui"] == "http://[::1]:8081/"


def test_the_page_is_open_holds_no_data_and_allows_only_its_own_files() -> None:
    assert OVERVIEW_PATH in PAGES  # the address `modelmux serve` prints
    assert set(PAGES) <= OPEN_PATHS and "/modelmux/errors" not in OPEN_PATHS
    assert PAGE_HEADERS["content-security-policy"] == (
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
        "base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
    html = overview_addon._file("overview.html").decode()
    # Its script and style are files of its own (the policy refuses inline ones), by the paths it is served at.
    assert "<script>" not in html and "<style" not in html and " style=" not in html
    assert re.search(r"\son[a-z]+=", html) is None  # no inline event handlers
    assert '<script src="/modelmux/overview.js" defer></script>' in html
    assert '<link rel="stylesheet" href="/modelmux/overview.css">' in html
    script = overview_addon._file("overview.js").decode()
    assert "innerHTML" not in script and "eval(" not in script and "localStorage" not in script
    assert [p for p in ("http://", "https://") if p in script.replace("http://www.w3.org/2000/svg", "")] == []
