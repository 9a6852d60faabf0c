"""Token files, the refresh grant as data, id_token claims, oauth credentials in
routes.yaml, and a stream put together into a whole message."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
import yaml

from modelmux.config import loader
from modelmux.oauth import claims, refresh, tokens
from modelmux.oauth.kinds import KINDS
from modelmux.oauth.tokens import Token, TokenFileError
from modelmux.translate.assembly import Assembly
from modelmux.translate.messages import as_events

TOKEN = Token(kind="claude", access_token="at-secret-000011112222", refresh_token="rt-secret-333344445555",
              expires_at=1_800_000_000.0, email="a@example.com")


def test_a_token_file_round_trips_private_and_atomic(tmp_path):
    path = tmp_path / "tokens" / "claude-a.json"
    tokens.write(path, TOKEN)
    assert tokens.read(path) == TOKEN
    assert os.stat(path).st_mode & 0o777 == 0o600 and os.stat(path.parent).st_mode & 0o777 == 0o700
    assert json.loads(path.read_text())["modelmux_oauth"] == 1
    assert [p.name for p in path.parent.iterdir()] == ["claude-a.json"]  # no temporary file left behind
    assert "secret" not in repr(TOKEN)


@pytest.mark.parametrize("content, message", [
    ("{}", "is not a modelmux token file (no \"modelmux_oauth\": 1); create it with `modelmux login` or `modelmux import`"),
    ('{"modelmux_oauth": 1, "kind": "claude"}', "has no kind or access_token; log in again with `modelmux login`"),
    ("not json", "is not JSON"),
])  # fmt: skip
def test_unusable_token_files_say_why(tmp_path, content, message):
    path = tmp_path / "t.json"
    path.write_text(content)
    path.chmod(0o600)
    with pytest.raises(TokenFileError, match=message.replace("(", r"\(").replace(")", r"\)")):
        tokens.read(path)
    with pytest.raises(TokenFileError, match="does not exist"):
        tokens.read(tmp_path / "missing.json")


def test_the_refresh_request_per_kind():
    url, headers, body = refresh.request(KINDS["claude"], TOKEN)
    assert (url, headers["content-type"], json.loads(body)) == (
        "https://platform.claude.com/v1/oauth/token", "application/json",
        {"grant_type": "refresh_token", "refresh_token": "rt-secret-333344445555",
         "client_id": "9d1c250a-e61b-44d9-88ed-5944d1962f5e"})
    google = Token(kind="gemini-cli", access_token="a", refresh_token="r/1", token_url="http://127.0.0.1:9/token")
    url, headers, body = refresh.request(KINDS["gemini-cli"], google)
    assert (url, headers["content-type"]) == ("http://127.0.0.1:9/token", "application/x-www-form-urlencoded")
    assert body.startswith(b"grant_type=refresh_token&refresh_token=r%2F1&client_id=681255809395-") and b"client_secret=" in body
    with pytest.raises(refresh.RefreshFailed, match="no refresh token") as raised:
        refresh.request(KINDS["claude"], Token(kind="claude", access_token="a"))
    assert raised.value.login_gone


def test_a_refresh_answer_gives_the_new_token_keeping_what_it_does_not_replace():
    answer = json.dumps({"access_token": "at-new", "expires_in": 28800}).encode()
    new = refresh.refreshed(TOKEN, 200, answer, now=1000.0)
    assert (new.access_token, new.refresh_token, new.expires_at, new.email) == (
        "at-new", "rt-secret-333344445555", 29800.0, "a@example.com")  # Google keeps the refresh token
    codex = Token(kind="codex", access_token="a", refresh_token="r", account_id="old")
    id_token = "e30." + base64.urlsafe_b64encode(json.dumps({
        "email": "b@example.com", claims.OPENAI_AUTH_CLAIM: {"chatgpt_account_id": "acct-9"}}).encode()).decode().rstrip("=") + ".c2ln"
    new = refresh.refreshed(codex, 200, json.dumps({"access_token": "x", "refresh_token": "r2", "id_token": id_token}).encode(), 0)
    assert (new.refresh_token, new.account_id, new.email, new.expires_at) == ("r2", "acct-9", "b@example.com", None)


@pytest.mark.parametrize("status, body, message, gone", [
    (400, {"error": "invalid_grant", "error_description": "revoked"}, "(invalid_grant: revoked)", True),
    (401, {"error": {"type": "authentication_error"}}, "(authentication_error)", False),
    (403, None, "(HTTP 403)", True),
    (503, None, "(HTTP 503)", False),
])  # fmt: skip
def test_a_refused_refresh_says_whether_only_a_new_login_helps(status, body, message, gone):
    with pytest.raises(refresh.RefreshFailed) as raised:
        refresh.refreshed(TOKEN, status, json.dumps(body).encode() if body else b"<html>", 0)
    assert raised.value.message == f"the token endpoint refused the refresh {message}"
    assert raised.value.login_gone is gone


def test_claims_of_anything_that_is_not_a_jwt_are_empty():
    assert claims.openai_account("not.a.jwt") == (None, None)
    assert claims.openai_account(None) == (None, None)


def load(tmp_path: Path, credentials: str, protocol: str = "anthropic") -> list[str] | loader.Config:
    text = f"providers:\n  p:\n    protocol: {protocol}\n    base_url: https://x\n    credentials:\n{credentials}\n"
    try:
        return loader.parse(yaml.safe_load(text), tmp_path / "routes.yaml", {})
    except loader.ConfigError as e:
        return e.problems


def test_oauth_credentials_in_routes_yaml(tmp_path):
    tokens.write(tmp_path / "claude.json", TOKEN)
    tokens.write(tmp_path / "codex.json", Token(kind="codex", access_token="at-codex-0000000000"))
    tokens.write(tmp_path / "gemini.json", Token(kind="gemini-cli", access_token="ya29-000000"))
    loaded = load(tmp_path, "      - {label: max, oauth: claude.json}\n      - {label: k, key: sk-ant-key-000000}")
    assert isinstance(loaded, loader.Config)
    max_, key = loaded.providers["p"].credentials
    assert (max_.secret, max_.key, max_.identity) == ("at-secret-000011112222", "", f"oauth:{tmp_path / 'claude.json'}")
    assert max_.secrets() == ("at-secret-000011112222", "rt-secret-333344445555") and key.secrets() == ("sk-ant-key-000000",)
    assert "secret" not in repr(loaded)
    assert load(tmp_path, "      - {label: c, oauth: claude.json}", "openai-responses") == [
        f"providers.p.credentials[0].oauth: {tmp_path / 'claude.json'} holds a claude login (a Claude Pro/Max "
        "subscription (Claude Code's login)), which serves protocol anthropic; put it under a provider with that protocol"]
    assert load(tmp_path, "      - {label: c, oauth: codex.json}", "openai-responses") == [
        f"providers.p.credentials[0].oauth: {tmp_path / 'codex.json'} has no account_id, which codex requests need; "
        "log in again with `modelmux login codex`"]
    assert load(tmp_path, "      - {label: g, oauth: gemini.json}", "gemini") == [
        f"providers.p.credentials[0].oauth: {tmp_path / 'gemini.json'} has no project_id, which gemini-cli requests "
        'need; add "project_id": "YOUR-PROJECT" (the Google Cloud project your gemini-cli login uses) to it']
    assert load(tmp_path, "      - {label: b, key: k, oauth: claude.json}\n      - {label: n}") == [
        "providers.p.credentials[0]: give either key (an API key) or oauth (a token file), not both",
        "providers.p.credentials[1]: give either key (an API key) or oauth (a token file), not neither"]


def test_a_reload_keeps_the_token_a_refresh_wrote(tmp_path):
    path = tmp_path / "claude.json"
    tokens.write(path, TOKEN)
    first = load(tmp_path, "      - {label: max, oauth: claude.json}")
    holder = first.providers["p"].credentials[0].oauth
    holder.replace(Token(kind="claude", access_token="at-refreshed-99999999", refresh_token="rt-2"))
    again = load(tmp_path, "      - {label: max, oauth: claude.json}")
    assert again.providers["p"].credentials[0].oauth is holder
    assert again.providers["p"].credentials[0].secret == "at-refreshed-99999999"
    assert "at-secret-000011112222" in holder.secrets()  # the old token is still scrubbed


def test_a_stream_put_together_is_the_message_it_describes():
    usage = {"input_tokens": 3, "output_tokens": 5, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 2,
             "cache_creation": None, "server_tool_use": None, "service_tier": "standard", "inference_geo": None,
             "output_tokens_details": {"thinking_tokens": 1}}
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "m", "stop_reason": "tool_use",
               "stop_sequence": None, "stop_details": None, "container": None, "usage": usage,
               "content": [{"type": "thinking", "thinking": "hm", "signature": "sig"},
                           {"type": "text", "text": "Let me look.", "citations": None},
                           {"type": "tool_use", "id": "toolu_1", "name": "Bash", "input": {"command": "ls"},
                            "caller": {"type": "direct"}}]}
    data = as_events(message)
    for size in (1, 7, len(data)):
        assembly = Assembly()
        for i in range(0, len(data), size):
            assembly.feed(data[i:i + size])
        assert assembly.ended and assembly.message == message and assembly.error is None
    broken = Assembly()
    broken.feed(b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"busy"}}\n\n')
    assert (broken.error, broken.message, broken.content_started) == (
        {"type": "overloaded_error", "message": "busy"}, None, False)
    cut = as_events({**message, "stop_reason": "max_tokens"}).replace(b'{\\"command\\": \\"ls\\"}', b'{\\"comm')
    assert b'\\"ls\\"' not in cut  # the arguments end mid-way, as max_tokens cuts them
    partial = Assembly()
    partial.feed(cut)
    assert partial.ended and partial.error == {"type": "api_error", "message": "the answer cannot be whole: the "
                                               "arguments of its call to 'Bash' are not a JSON object: '{\"comm'"}


def test_status_shows_a_login_and_what_it_needs():
    from modelmux.cli.status_report import credential_lines

    base = {"label": "max", "key": "max…cccc", "in_flight": 0, "requests": 3, "errors": 1, "input_tokens": 10,
            "output_tokens": 4, "cooldowns": []}
    login = {"kind": "claude", "email": "a@example.com", "file": "/t/claude.json", "expires_at": "2026-11-22T05:00:00Z",
             "needs_login": None}
    document = {"providers": {"anthropic": {"credentials": [
        {**base, "state": "healthy", "login": login},
        {**base, "label": "old", "state": "needs login", "login": {**login, "needs_login": "refused; run `modelmux login claude --label old`"}},
    ]}}}  # fmt: skip
    assert credential_lines(document) == [
        "  anthropic  max (max…cccc)  healthy      in flight 0  requests 3 (1 error)  tokens 10 in / 4 out",
        "    claude login a@example.com (/t/claude.json, token expires 2026-11-22T05:00:00Z)",
        "  anthropic  old (max…cccc)  needs login  in flight 0  requests 3 (1 error)  tokens 10 in / 4 out",
        "    claude login a@example.com: needs a new login: refused; run `modelmux login claude --label old`",
    ]
