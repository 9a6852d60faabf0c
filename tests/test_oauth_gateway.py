"""Oauth credentials in the running gateway: tokens refreshed before they expire and
once after a 401 (then the request sent again), one refresh for many requests, a
revoked login set aside while the pool carries on, the Codex backend's shape, and no
token anywhere a person reads."""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from gateway import Gateway
from oauth_server import OAuthServer, jwt
from responses_upstream import responses_like
from sse_checks import accumulated, events, validate
import gemini_upstream as gem
from upstream import Received, Reply, Stream, Upstream, anthropic_like

from modelmux.oauth import tokens
from modelmux.oauth.kinds import KINDS
from modelmux.oauth.tokens import Token

CLIENT = "modelmux-placeholder"
API_KEY = "sk-ant-api-spare-key-0000000000009999"


class TokenEndpoint:
    """A fake OAuth token endpoint: refresh grants with rotating refresh tokens."""

    def __init__(self) -> None:
        self.refresh_token = "rt-initial-aaaaaaaaaaaa"
        self.issued = 0
        self.revoked = False
        self.delay = 0.0
        self.expires_in = 3600
        self.lock = threading.Lock()
        self.calls: list[dict] = []

    def __call__(self, request: Received) -> Reply:
        body = request.json()
        self.calls.append(body)
        time.sleep(self.delay)
        with self.lock:
            if self.revoked or body.get("refresh_token") != self.refresh_token:
                return Reply(400, json.dumps({"error": "invalid_grant", "error_description": "Refresh token revoked"}).encode())
            self.issued += 1
            self.refresh_token = f"rt-rotated-{self.issued:04d}-bbbbbbbb"
            answer = {"access_token": self.access_token, "refresh_token": self.refresh_token,
                      "expires_in": self.expires_in, "token_type": "Bearer"}
            if body.get("client_id") == "app_EMoamEEZ73f0CkXaXp7hrann":
                answer["id_token"] = jwt({"https://api.openai.com/auth": {"chatgpt_account_id": "acct-rotated"}})
            return Reply(body=json.dumps(answer).encode())

    @property
    def access_token(self) -> str:
        return f"at-fresh-{self.issued:04d}-cccccccccccc"


@pytest.fixture
def oauth() -> Iterator[tuple[Upstream, TokenEndpoint]]:
    endpoint = TokenEndpoint()
    with Upstream() as server:
        server.reply = lambda r: endpoint(r) if r.path == "/token" else anthropic_like(r)
        yield server, endpoint


def token_file(directory: Path, name: str, kind: str, token_url: str, expires_in: float, **extra) -> Path:
    path = directory / f"{name}.json"
    tokens.write(path, Token(kind=kind, access_token=f"at-{name}-old-dddddddddddd", refresh_token="rt-initial-aaaaaaaaaaaa",
                             expires_at=time.time() + expires_in, email=f"{name}@example.com", token_url=token_url, **extra))
    return path


def routes(upstream_url: str, credentials: str, protocol: str = "anthropic") -> str:
    return f"""
providers:
  subscription:
    protocol: {protocol}
    base_url: "{upstream_url}"
    strategy: fill-first
    credentials:
{credentials}
default: {{provider: subscription}}
"""


def post(gateway: Gateway, stream: bool = False, **headers: str) -> httpx.Response:
    body = {"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": stream,
            "messages": [{"role": "user", "content": "hi"}]}
    return httpx.post(f"{gateway.url}/v1/messages", json=body, timeout=30,
                      headers={"authorization": f"Bearer {CLIENT}", **headers})


def messages(server: Upstream) -> list[Received]:
    return [r for r in server.received if r.path.startswith("/v1/messages")]


def assert_no_token_in(text: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in text, f"a token appears: {secret[:12]}…"


def test_a_token_about_to_expire_is_refreshed_before_the_request(oauth, tmp_path):
    server, endpoint = oauth
    path = token_file(tmp_path, "max", "claude", f"{server.url}/token", expires_in=60)
    with Gateway(tmp_path, routes(server.url, f"      - {{label: max, oauth: {path}}}"), {},
                 ["-w", str(tmp_path / "flows.mitm"), "--set", f"modelmux_record={tmp_path / 'recorded.mitm'}"]) as gateway:
        answer = post(gateway, **{"anthropic-beta": "interleaved-thinking-2025-05-14"})
        assert answer.status_code == 200, answer.text
        assert endpoint.calls == [{"grant_type": "refresh_token", "refresh_token": "rt-initial-aaaaaaaaaaaa",
                                   "client_id": "9d1c250a-e61b-44d9-88ed-5944d1962f5e"}]
        (sent,) = messages(server)
        assert sent.headers["authorization"] == "Bearer at-fresh-0001-cccccccccccc"
        assert sent.headers["anthropic-beta"] == "interleaved-thinking-2025-05-14,oauth-2025-04-20"
        assert "x-api-key" not in sent.headers and CLIENT not in json.dumps(sent.headers)
        stored = tokens.read(path)
        assert (stored.access_token, stored.refresh_token) == ("at-fresh-0001-cccccccccccc", "rt-rotated-0001-bbbbbbbb")
        assert abs(stored.expires_at - (time.time() + 3600)) < 30
        assert (stored.email, stored.kind, stored.token_url) == ("max@example.com", "claude", f"{server.url}/token")
        assert os.stat(path).st_mode & 0o777 == 0o600
        assert post(gateway).status_code == 200  # fresh now: no second refresh
        assert len(endpoint.calls) == 1
        status = gateway.credentials()["providers"]["subscription"]["credentials"][0]
        assert status["login"]["email"] == "max@example.com" and status["login"]["needs_login"] is None
        log = gateway.log.read_text()
    flows = (tmp_path / "flows.mitm").read_bytes().decode("utf-8", "replace")
    recorded = (tmp_path / "recorded.mitm").read_bytes().decode("utf-8", "replace")
    assert "max\u2026cccc" in flows and recorded  # the flow keeps its header, redacted
    for text in (log, flows, recorded, json.dumps(status)):
        assert_no_token_in(text, "at-max-old-dddddddddddd", "at-fresh-0001-cccccccccccc", "rt-initial-aaaaaaaaaaaa",
                           "rt-rotated-0001-bbbbbbbb")


def test_a_401_refreshes_once_and_sends_the_request_again(oauth, tmp_path):
    server, endpoint = oauth
    path = token_file(tmp_path, "max", "claude", f"{server.url}/token", expires_in=3600)
    server.gate = lambda r: (Reply(401, b'{"type":"error","error":{"type":"authentication_error","message":"expired"}}')
                             if r.headers.get("authorization") == "Bearer at-max-old-dddddddddddd" else None)
    with Gateway(tmp_path, routes(server.url, f"      - {{label: max, oauth: {path}}}"), {}) as gateway:
        answer = post(gateway, stream=True)
        assert answer.status_code == 200 and "message_stop" in answer.text
        assert [r.headers["authorization"] for r in messages(server)] == [
            "Bearer at-max-old-dddddddddddd", "Bearer at-fresh-0001-cccccccccccc"]
        assert len(endpoint.calls) == 1
        assert gateway.credentials()["providers"]["subscription"]["credentials"][0]["state"] == "healthy"


def test_concurrent_requests_share_one_refresh(oauth, tmp_path):
    server, endpoint = oauth
    endpoint.delay = 0.5
    path = token_file(tmp_path, "max", "claude", f"{server.url}/token", expires_in=10)
    with Gateway(tmp_path, routes(server.url, f"      - {{label: max, oauth: {path}}}"), {}) as gateway:
        answers: list[int] = []
        threads = [threading.Thread(target=lambda: answers.append(post(gateway).status_code)) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert answers == [200] * 8
        assert len(endpoint.calls) == 1  # a second refresh would have used a rotated-away token
        assert {r.headers["authorization"] for r in messages(server)} == {"Bearer at-fresh-0001-cccccccccccc"}


def test_a_revoked_login_is_set_aside_and_the_pool_carries_on_until_a_new_login(oauth, tmp_path):
    server, endpoint = oauth
    endpoint.revoked = True
    path = token_file(tmp_path, "max", "claude", f"{server.url}/token", expires_in=10)
    credentials = f"      - {{label: max, oauth: {path}}}\n      - {{label: spare, key: '{API_KEY}'}}"
    with Gateway(tmp_path, routes(server.url, credentials), {}) as gateway:
        assert post(gateway).status_code == 200
        assert [r.headers.get("x-api-key") for r in messages(server)] == [API_KEY]  # the spare served
        status = {c["label"]: c for c in gateway.credentials()["providers"]["subscription"]["credentials"]}
        assert status["max"]["state"] == "needs login"
        assert status["max"]["login"]["needs_login"] == (
            "the token endpoint refused the refresh (invalid_grant: Refresh token revoked); "
            "run `modelmux login claude --label max`")
        assert status["spare"]["state"] == "healthy"
        assert post(gateway).status_code == 200 and len(endpoint.calls) == 1  # not asked again
        # A new login (as `modelmux login` writes it) puts the credential back in service.
        endpoint.revoked = False
        tokens.write(path, Token(kind="claude", access_token="at-relogged-eeeeeeeeeeee", refresh_token="rt-new",
                                 expires_at=time.time() + 3600, token_url=f"{server.url}/token"))
        server.received.clear()
        assert post(gateway).status_code == 200
        assert [r.headers.get("authorization") for r in messages(server)] == ["Bearer at-relogged-eeeeeeeeeeee"]
        assert gateway.credentials()["providers"]["subscription"]["credentials"][0]["state"] == "healthy"


def test_a_codex_login_goes_to_the_codex_backend_streamed_even_for_a_whole_answer(oauth, tmp_path):
    server, endpoint = oauth
    server.reply = lambda r: endpoint(r) if r.path == "/token" else responses_like(r)
    path = token_file(tmp_path, "chatgpt", "codex", f"{server.url}/token", expires_in=3600,
                      account_id="acct-1234", base_url=f"{server.url}/backend-api/codex")
    routes_text = routes("https://api.openai.com/v1", f"      - {{label: chatgpt, oauth: {path}}}", "openai-responses")
    with Gateway(tmp_path, routes_text, {}) as gateway:
        answer = post(gateway)  # the client wants one JSON answer
        assert answer.status_code == 200, answer.text
        assert answer.headers["content-type"] == "application/json"
        message = answer.json()
        assert (message["type"], message["stop_reason"], message["content"]) == (
            "message", "end_turn", [{"type": "text", "text": "Hello from the fake Responses upstream.", "citations": None}])
        (sent,) = server.received
        assert sent.path == "/backend-api/codex/responses"
        assert (sent.headers["authorization"], sent.headers["chatgpt-account-id"], sent.headers["originator"]) == (
            "Bearer at-chatgpt-old-dddddddddddd", "acct-1234", "codex_cli_rs")
        body = sent.json()
        assert (body["stream"], body["store"], body["instructions"]) == (True, False, "")
        assert "max_output_tokens" not in body
        streamed = post(gateway, stream=True)
        assert streamed.status_code == 200 and streamed.headers["content-type"].startswith("text/event-stream")
        sequence = events([streamed.content])
        validate(sequence)
        assert accumulated(sequence)["content"] == message["content"]
        assert [json.loads(r.body)["stream"] for r in server.received] == [True, True]


def test_a_codex_stream_put_together_is_exact_or_an_error(oauth, tmp_path):
    """The whole answer put together from the Codex backend's stream obeys a stream's
    rules: an unreadable event, or a call cut off mid-arguments (which a whole
    message cannot hold), is an error, never a message."""
    server, endpoint = oauth
    path = token_file(tmp_path, "chatgpt", "codex", f"{server.url}/token", expires_in=3600,
                      account_id="acct-1234", base_url=f"{server.url}/backend-api/codex")
    call = {"id": "fc_1", "type": "function_call", "call_id": "call_1", "name": "Bash", "arguments": ""}
    cut = [{"type": "response.output_item.added", "output_index": 0, "item": call},
           {"type": "response.function_call_arguments.delta", "item_id": "fc_1", "delta": '{"command": "rm'},
           {"type": "response.incomplete", "response": {"status": "incomplete", "output": [],
                                                         "incomplete_details": {"reason": "max_output_tokens"}}}]
    answers = {"unreadable": [b"data: {not json\n\n"],
               "cut off": [f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in cut]}
    routes_text = routes("https://api.openai.com/v1", f"      - {{label: chatgpt, oauth: {path}}}", "openai-responses")
    with Gateway(tmp_path, routes_text, {}) as gateway:
        for case, pieces in answers.items():
            server.reply = lambda r, pieces=pieces: endpoint(r) if r.path == "/token" else Stream(pieces)
            answer = post(gateway)
            message = ("the upstream's stream held an event that is not JSON: 'data: {not json'" if case == "unreadable"
                       else "provider 'subscription' answered: the answer cannot be whole: the arguments of its call "
                            "to 'Bash' are not a JSON object: '{\"command\": \"rm'")
            assert (answer.status_code, answer.json()) == (502, {"type": "error", "error": {
                "type": "api_error", "message": message}}), case
            gateway.reset_credentials()


def test_a_token_file_others_can_read_is_refused(tmp_path):
    from modelmux.config import loader

    path = token_file(tmp_path, "max", "claude", "https://example.invalid/token", expires_in=3600)
    os.chmod(path, 0o644)
    (tmp_path / "routes.yaml").write_text(routes("https://api.anthropic.com", f"      - {{label: max, oauth: {path.name}}}"))
    with pytest.raises(loader.ConfigError) as raised:
        loader.load(tmp_path / "routes.yaml")
    assert raised.value.problems == [
        f"providers.subscription.credentials[0].oauth: {path} may be read by other users (mode -rw-r--r--); it holds "
        f"a login, so modelmux will not use it: run `chmod 600 {path}`"]


def test_a_gemini_cli_login_speaks_code_assist_wrapped(oauth, tmp_path):
    server, endpoint = oauth

    def code_assist(request: Received):
        if request.path == "/token":
            return endpoint(request)
        if request.path.endswith(":streamGenerateContent?alt=sse"):
            return Stream(gem.sse([{"response": chunk, "traceId": "t"} for chunk in gem.chunks(gem.text("Hi from Code Assist"))]))
        return gem.json_reply({"response": gem.response(gem.text("Hi from Code Assist")), "traceId": "t"})

    server.reply = code_assist
    path = token_file(tmp_path, "google", "gemini-cli", f"{server.url}/token", expires_in=3600,
                      project_id="proj-42", base_url=server.url)
    routes_text = routes("https://generativelanguage.googleapis.com/v1beta", f"      - {{label: google, oauth: {path}}}",
                         "gemini")
    with Gateway(tmp_path, routes_text, {}) as gateway:
        whole = post(gateway)
        assert whole.status_code == 200, whole.text
        assert whole.json()["content"] == [{"type": "text", "text": "Hi from Code Assist", "citations": None}]
        streamed = post(gateway, stream=True)
        sequence = events([streamed.content])
        validate(sequence)
        assert accumulated(sequence)["content"] == [{"type": "text", "text": "Hi from Code Assist", "citations": None}]
    first, second = server.received
    assert (first.path, second.path) == ("/v1internal:generateContent", "/v1internal:streamGenerateContent?alt=sse")
    assert first.headers["authorization"] == "Bearer at-google-old-dddddddddddd" and "x-goog-api-key" not in first.headers
    body = first.json()
    assert (body["model"], body["project"], sorted(body)) == ("claude-sonnet-4-5", "proj-42", ["model", "project", "request"])
    assert body["request"]["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]


def test_a_login_serves_and_refreshes_through_its_own_endpoint(tmp_path):
    """modelmux login against the fake OAuth server, then the gateway with that token
    file: the login's token has expired (the login ran at test_login's fixed, past
    NOW), so the gateway refreshes it there, single use, and sends the new token."""
    from test_login import Browser, login_for, run

    with OAuthServer(KINDS["claude"], email="me@example.com") as authority, Upstream() as server:
        browser = Browser()
        assert run(login_for(authority, tmp_path, None), browser)[0] == 0
        browser.join()
        path = tmp_path / "tokens" / "claude-work.json"
        login_access, login_refresh = authority.issued
        assert tokens.read(path).token_url == authority.token_url
        with Gateway(tmp_path, routes(server.url, f"      - {{label: work, oauth: {path}}}"), {}) as gateway:
            assert post(gateway).status_code == 200
            log = gateway.log.read_text()
        refreshed_access, refreshed_refresh = authority.issued[2:]
        (refresh,) = [r for r in authority.token_requests() if r.fields["grant_type"] == "refresh_token"]
        assert refresh.fields["refresh_token"] == login_refresh
        assert [r.headers["authorization"] for r in messages(server)] == [f"Bearer {refreshed_access}"]
        stored = tokens.read(path)
        assert (stored.access_token, stored.refresh_token, stored.email) == (refreshed_access, refreshed_refresh,
                                                                             "me@example.com")
        assert_no_token_in(log, login_access, login_refresh, refreshed_access, refreshed_refresh)


def test_a_401_whose_refresh_cannot_reach_the_token_endpoint_is_a_passing_failure(oauth, tmp_path):
    server, _ = oauth
    from gateway import free_port

    path = token_file(tmp_path, "max", "claude", f"http://127.0.0.1:{free_port()}/token", expires_in=3600)
    server.gate = lambda r: Reply(401, b'{"type":"error","error":{"type":"authentication_error","message":"no"}}')
    with Gateway(tmp_path, routes(server.url, f"      - {{label: max, oauth: {path}}}"), {}) as gateway:
        answer = post(gateway)
        assert answer.status_code == 503, answer.text
        assert answer.json()["error"]["message"] == (
            "credential 'max' got a 401 and its token could not be refreshed (the token endpoint did not answer)")
        state = gateway.credentials()["providers"]["subscription"]["credentials"][0]
        assert state["state"] not in ("needs login", "needs attention") and state["login"]["needs_login"] is None
