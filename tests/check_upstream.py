"""What the `modelmux check` tests share: one local fake for every protocol (told apart
by path, answering model lists too), keys it tells apart, and routes.yaml texts that put
providers in front of it. Each test module imports the `fake` fixture by name."""

from __future__ import annotations

import io
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import gemini_upstream
import openai_upstream
import responses_upstream
from modelmux.cli import check, probe
from modelmux.oauth import tokens
from upstream import Received, Reply, Upstream

GOOD_KEY = "sk-good-aaaaaaaaaaaa1111"
BAD_KEY = "sk-bad-bbbbbbbbbbbbbb2222"
OAI_KEY = "sk-oai-cccccccccccc3333"
GEMINI_KEY = "AIzaSyFake-check-dddddddddddddd4"
ECHO_KEY = "sk-echo-eeeeeeeeeeee5555"
LOGIN_TOKEN = "at-codex-login-ffffffffffff6666"
ENV = {"GOOD_KEY": GOOD_KEY, "BAD_KEY": BAD_KEY, "OAI_KEY": OAI_KEY, "GEMINI_KEY": GEMINI_KEY, "ECHO_KEY": ECHO_KEY}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "routes.yaml"
    path.write_text(text)
    return path


def run(path: Path, offline: bool = False, as_json: bool = False) -> tuple[int, str]:
    out = io.StringIO()
    return check.run(path, offline, as_json, ENV, out), out.getvalue()


@pytest.fixture
def fake() -> Iterator[Upstream]:
    """One fake for every protocol, told apart by path: Anthropic's /v1/messages and
    /v1/models, OpenAI's /chat/completions and .../models, Responses' /responses, Gemini's
    /v1beta/models...; answers as each would, a 401 for BAD_KEY and an echo of ECHO_KEY
    in its 401."""

    def reply(request: Received) -> object:
        key = request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix("Bearer ")
        if key == BAD_KEY:
            return Reply(401, b'{"type":"error","error":{"type":"authentication_error","message":"invalid x-api-key"}}')
        if key == ECHO_KEY:
            return openai_upstream.error_reply(401, f"Incorrect API key provided: {ECHO_KEY}", code="invalid_api_key")
        if request.path.startswith(("/v1beta/", "/v1/messages", "/v1/models")):
            return gemini_upstream.gemini_like(request)  # Anthropic's answers for /v1/messages and /v1/models
        if request.path.endswith("/chat/completions") and request.json()["model"] == "no-such-model":
            return openai_upstream.error_reply(404, "The model `no-such-model` does not exist", code="model_not_found")
        return responses_upstream.responses_like(request)

    with Upstream() as server:
        server.reply = reply  # type: ignore[assignment]
        yield server


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def live_routes(url: str) -> str:
    return f"""
providers:
  claude:
    protocol: anthropic
    base_url: {url}
    credentials:
      - {{label: good, key: "${{GOOD_KEY}}"}}
      - {{label: bad, key: "${{BAD_KEY}}"}}
    models: [claude-haiku-4-5, claude-opus-4-1]
  oai:
    protocol: openai-chat
    base_url: {url}
    credentials: [{{label: main, key: "${{OAI_KEY}}"}}]
  echo:
    protocol: openai-chat
    base_url: {url}
    credentials: [{{label: leaky, key: "${{ECHO_KEY}}"}}]
    models: [gpt-test]
  codex:
    protocol: openai-responses
    base_url: {url}
    credentials: [{{label: main, key: "${{OAI_KEY}}"}}]
    models: [gpt-5.3-codex]
  gemini:
    protocol: gemini
    base_url: {url}/v1beta
    credentials: [{{label: main, key: "${{GEMINI_KEY}}"}}]
    models: [gemini-2.5-flash]
  down:
    protocol: anthropic
    base_url: http://127.0.0.1:{closed_port()}
    credentials: [{{label: main, key: "${{GOOD_KEY}}"}}]
    models: [glm-4.5-air]
  anthropic:
    protocol: anthropic
    base_url: {url}
    auth: passthrough
routes:
  - {{match: "gpt-*", provider: oai, model: no-such-model}}
  - {{match: "claude-*", provider: anthropic, fallback: [{{provider: down, model: glm-4.6}}]}}
  - {{match: "sonnet", provider: anthropic}}
"""


def masked(results: list[probe.Result]) -> list[str]:
    """The table with every latency the same, so its widths do not depend on timing."""
    for result in results:
        if result.latency_ms is not None:
            result.latency_ms = 7
    return check.table(results)


def auth_of(request: Received) -> str | None:
    """The credential header a request carried, as `name: value`; None without one."""
    found = [f"{n}: {request.headers[n]}" for n in ("x-api-key", "authorization", "x-goog-api-key") if n in request.headers]
    assert len(found) <= 1, found
    return found[0] if found else None


def glob_only(url: str, providers: list[tuple[str, str, str, str, str]]) -> str:
    """routes.yaml whose providers routes reach by glob only, in this order (first match
    wins), so that nothing names a model to probe with. Each is (name, protocol, path of
    base_url on the fake, the rest of its YAML, its glob)."""
    blocks = [f"  {name}:\n    protocol: {protocol}\n    base_url: {url}{path}\n    {rest}"
              for name, protocol, path, rest, _ in providers]
    routes = [f'  - {{match: "{glob}", provider: {name}}}' for name, *_, glob in providers]
    return "\n".join(["providers:", *blocks, "routes:", *routes, "default: null", ""])


def key(variable: str) -> str:
    return f'credentials: [{{label: main, key: "${{{variable}}}"}}]'


def glob_routes(url: str, claude_key: str = "GOOD_KEY") -> str:
    """A provider of each protocol; `gpt-5.3-codex` goes to codex, the other `gpt-*` to oai."""
    return glob_only(url, [
        ("claude", "anthropic", "", key(claude_key), "claude-*"),
        ("codex", "openai-responses", "/codex/v1", key("OAI_KEY"), "gpt-5*"),
        ("oai", "openai-chat", "/oai/v1", key("OAI_KEY"), "gpt-*"),
        ("gemini", "gemini", "/v1beta", key("GEMINI_KEY"), "gemini-*"),
    ])  # fmt: skip


def lines(out: str) -> list[str]:
    """The command's text output, its table's cells between ` | ` (column widths depend
    on the latencies) and every latency 7 ms."""
    return [" | ".join(re.split(r" {2,}", re.sub(r"\b\d+ ms\b", "7 ms", line))) for line in out.splitlines()]


def passthrough_routes(url: str) -> str:
    return glob_only(url, [("anthropic", "anthropic", "", "auth: passthrough", "claude-*")])


def codex_login(tmp_path: Path, base_url: str) -> Path:
    """A ChatGPT subscription's token file whose requests go to `base_url`."""
    path = tmp_path / "codex-login.json"
    tokens.write(path, tokens.Token(kind="codex", access_token=LOGIN_TOKEN, refresh_token="rt-codex-gggggggggggg7777",
                                    expires_at=time.time() + 3600, account_id="acct-1", base_url=base_url))
    return path


def unprobeable_routes(url: str, login: Path, sub_models: str = "") -> str:
    """`local`'s list is not there (404), `router`'s is public (OpenRouter's), `sub` is a
    subscription login; nothing names a model for any of them."""
    return glob_only(url, [
        ("claude", "anthropic", "", key("GOOD_KEY"), "claude-*"),
        ("local", "openai-chat", "/local/v1", key("OAI_KEY"), "local-*"),
        ("router", "openai-chat", "/router/v1", key("OAI_KEY"), "router-*"),
        ("sub", "openai-responses", "/unused", f'credentials: [{{label: login, oauth: "{login}"}}]{sub_models}', "sub-*"),
    ])  # fmt: skip


def lists_gate(request: Received) -> Reply | None:
    if request.path == "/local/v1/models":
        return openai_upstream.error_reply(404, f"Unknown request URL: GET {request.path}", code="unknown_url")
    if request.path == "/router/v1/models":  # with a key or without
        return openai_upstream.json_reply({"object": "list", "data": [{"id": m} for m in openai_upstream.MODELS]})
    return None
