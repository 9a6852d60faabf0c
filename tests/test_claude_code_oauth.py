"""The real Claude Code CLI, started with the launcher's environment, through the real
gateway to a fake Anthropic upstream whose only credential is a subscription login
(`oauth:` token file) that is about to expire: the gateway refreshes it once, at the
first of the turn's requests (a tool call, then its result), and sends every one with
the new token and the OAuth beta added to Claude Code's own."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from gateway import Gateway
from oauth_server import OAuthServer
from test_claude_code import (FINAL_TEXT, TOOL_FILE, TOOL_FILE_TEXT, TOOL_USE_ID, ClaudeCode, claude_binary,
                              claude_code, mentions, report, routes_yaml, tool_results, tool_use_events)
from test_login import Browser, login_for, run
from upstream import Behaviour, Received, Stream, Upstream, anthropic_like, message_events

from modelmux.cli.launcher import PLACEHOLDER_TOKEN
from modelmux.oauth import tokens
from modelmux.oauth.kinds import KINDS
from modelmux.oauth.tokens import Token

pytestmark = pytest.mark.claude_code

PROFILE = "e2e-oauth"
UPSTREAM_MODELS = {"opus": "claude-e2e-large", "sonnet": "claude-e2e-medium", "haiku": "claude-e2e-small"}
PROMPT = f"Read {TOOL_FILE} and tell me what it says"
OAUTH_BETA = KINDS["claude"].beta


def subscription(upstream_url: str, token_path: Path) -> str:
    return f"""    protocol: anthropic
    base_url: {upstream_url}
    credentials:
      - {{label: max, oauth: {token_path}}}"""


def logged_in(authority: OAuthServer, tmp_path: Path) -> Path:
    """`modelmux login claude` against the fake authority (so it issued the refresh token),
    then the file rewritten to expire in 10 s: the gateway must refresh before the first
    request, not because the login ran at test_login's past clock."""
    browser = Browser()
    status, out, err = run(login_for(authority, tmp_path, None), browser)
    browser.join()
    assert status == 0, f"{out}\n{err}"
    path = tmp_path / "tokens" / "claude-work.json"
    login = tokens.read(path)
    tokens.write(path, Token(kind="claude", access_token=login.access_token, refresh_token=login.refresh_token,
                             expires_at=time.time() + 10, email=login.email, token_url=authority.token_url))
    return path


@pytest.fixture
def authority() -> Iterator[OAuthServer]:
    with OAuthServer(KINDS["claude"], email="me@example.com") as server:
        yield server


@pytest.fixture
def gateway(upstream: Upstream, authority: OAuthServer, tmp_path: Path) -> Iterator[Gateway]:
    gateway = Gateway(tmp_path, "", env={})
    # Its port is known only now, and server.port is where the launcher points Claude Code.
    provider = subscription(upstream.url, logged_in(authority, tmp_path))
    gateway.config.write_text(routes_yaml(gateway.port, provider, PROFILE, UPSTREAM_MODELS))
    with gateway:
        yield gateway


@pytest.fixture
def claude(gateway: Gateway, tmp_path: Path) -> ClaudeCode:
    """Claude Code as `modelmux run e2e-oauth` starts it, in a throwaway HOME."""
    return claude_code(claude_binary(), gateway, PROFILE, {}, tmp_path)


def reader(target: Path) -> Callable[[Received], Behaviour]:
    """The fake model: the prompt's request gets a Read call, the one carrying its result
    the final text; so one turn is several requests, the later ones after the refresh."""

    def reply(request: Received) -> Behaviour:
        body = request.json() if request.method == "POST" else {}
        if request.path.split("?")[0] != "/v1/messages" or not mentions(request, PROMPT) or not body.get("stream"):
            return anthropic_like(request)
        if any(block.get("tool_use_id") == TOOL_USE_ID for block in tool_results(request)):
            return Stream(message_events(body["model"], FINAL_TEXT))
        return Stream(tool_use_events(body["model"], "Read", {"file_path": str(target)}))

    return reply


def betas(request: Received) -> list[str]:
    return [b.strip() for b in request.headers.get("anthropic-beta", "").split(",") if b.strip()]


def test_a_subscription_login_is_refreshed_once_and_serves_claude_code(
    claude: ClaudeCode, gateway: Gateway, upstream: Upstream, authority: OAuthServer, tmp_path: Path
):
    login_access, login_refresh = authority.issued
    target = claude.cwd / TOOL_FILE
    target.write_text(TOOL_FILE_TEXT + "\n")
    upstream.reply = reader(target)
    result = claude.run(PROMPT, "--allowedTools", "Read")
    details = report(result, upstream)
    assert result.returncode == 0, details
    assert FINAL_TEXT in result.stdout, details
    assert [r for r in upstream.received if tool_results(r)], f"no request carried the tool result\n{details}"
    assert len(upstream.received) >= 2, details

    refreshes = [r for r in authority.token_requests() if r.fields.get("grant_type") == "refresh_token"]
    assert len(refreshes) == 1, f"{len(refreshes)} refresh grants for {len(upstream.received)} requests"
    assert refreshes[0].fields["refresh_token"] == login_refresh
    refreshed_access, refreshed_refresh = authority.issued[2:]

    own_betas: set[str] = set()
    for request in upstream.received:
        where = f"{request.method} {request.path}"
        headers = request.headers
        assert headers.get("authorization") == f"Bearer {refreshed_access}", f"{where}: not the refreshed token"
        assert "x-api-key" not in headers, f"{where}: x-api-key reached the upstream"
        assert not [n for n, v in headers.items() if PLACEHOLDER_TOKEN in v], f"{where}: the placeholder leaked"
        assert not [n for n in headers if n.startswith("x-modelmux-")], f"{where}: modelmux headers leaked"
        assert OAUTH_BETA in betas(request), f"{where}: anthropic-beta {headers.get('anthropic-beta')!r}"
        own_betas |= set(betas(request)) - {OAUTH_BETA}
    assert own_betas, "Claude Code's own betas did not reach the upstream beside the OAuth beta"

    stored = tokens.read(tmp_path / "tokens" / "claude-work.json")
    assert (stored.access_token, stored.refresh_token) == (refreshed_access, refreshed_refresh)
    assert stored.expires_at is not None and stored.expires_at > time.time() + 600
    log = gateway.log.read_text(errors="replace")
    for secret in (login_access, login_refresh, refreshed_access, refreshed_refresh):
        assert secret not in log, f"a token appears in the gateway log: {secret[:6]}…"
