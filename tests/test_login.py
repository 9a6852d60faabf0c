"""`modelmux login` against a local fake OAuth server (tests/oauth_server.py): the PKCE
flow end to end with a scripted browser, the paste flow, refusals, the token file and
routes.yaml; and the pure steps of modelmux.oauth.flow with plain data."""

from __future__ import annotations

import io
import json
import socket
import stat
import threading
import webbrowser
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from code_assist_server import CodeAssist, google_error, not_set_up
from gateway import free_port
from oauth_server import OAuthServer, jwt
from upstream import Upstream

from modelmux.cli import main as cli
from modelmux.config import edit, loader
from modelmux.oauth import code_assist, flow, login, tokens
from modelmux.oauth.kinds import KINDS
from modelmux.oauth.login import Login, LoginError

NOW = 1_790_000_000.0

ROUTES = """\
# my gateway
server:
  port: 7878

providers:
  anthropic:
    protocol: anthropic
    base_url: https://api.anthropic.com
    auth: passthrough   # Claude Code's own login

  # Claude subscriptions, pooled
  claude-max:
    protocol: anthropic
    base_url: https://api.anthropic.com
    auth: "Authorization: Bearer {key}"
    credentials:
      # the API key stays first
      - label: spare
        key: sk-spare-1234
        priority: 2
    strategy: fill-first

  # ChatGPT subscriptions
  chatgpt:
    protocol: openai-responses
    base_url: https://chatgpt.com/backend-api/codex
    auth: "Authorization: Bearer {key}"
    credentials: [{label: old, key: sk-old-5678}]

routes:
  - {match: "gpt-*", provider: chatgpt}

default:
  provider: anthropic
"""


# --- The pure steps -------------------------------------------------------------------


def test_the_pkce_challenge_is_rfc_7636s_s256() -> None:
    # RFC 7636 Appendix B.
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert flow.challenge_of(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    verifier, challenge = flow.pkce()
    assert len(verifier) == 43 and challenge == flow.challenge_of(verifier)
    assert flow.pkce()[0] != verifier and flow.new_state() != flow.new_state()


def test_the_authorize_url_carries_the_client_the_challenge_and_the_kinds_own_parameters() -> None:
    kind = KINDS["codex"]
    url = flow.authorize_url(kind, "http://localhost:1455/auth/callback", "st8", "chal")
    assert url.startswith("https://auth.openai.com/oauth/authorize?")
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert query == {
        "id_token_add_organizations": "true", "codex_cli_simplified_flow": "true", "originator": "codex_cli_rs",
        "response_type": "code", "client_id": kind.client_id, "redirect_uri": "http://localhost:1455/auth/callback",
        "scope": "openid profile email offline_access api.connectors.read api.connectors.invoke",
        "code_challenge": "chal", "code_challenge_method": "S256", "state": "st8",
    }  # fmt: skip
    assert "%20" in url and "+" not in url
    assert flow.authorize_url(kind, "r", "s", "c", "http://127.0.0.1:9/authorize?x=1").startswith(
        "http://127.0.0.1:9/authorize?x=1&"
    )
    assert flow.redirect_uri(KINDS["gemini-cli"], 4321) == "http://127.0.0.1:4321/oauth2callback"


def test_token_requests_take_each_kinds_body_format() -> None:
    url, headers, body = flow.token_request(KINDS["claude"], "c0de", "v3r", "http://localhost:5/callback", "st")
    assert url == KINDS["claude"].token_url and headers["content-type"] == "application/json"
    assert json.loads(body) == {"grant_type": "authorization_code", "code": "c0de", "redirect_uri":
                                "http://localhost:5/callback", "client_id": KINDS["claude"].client_id,
                                "code_verifier": "v3r", "state": "st"}  # fmt: skip
    _, headers, body = flow.token_request(KINDS["codex"], "c0de", "v3r", "r", "st", "http://x/token")
    assert headers["content-type"] == "application/x-www-form-urlencoded"
    assert parse_qs(body.decode()) == {"grant_type": ["authorization_code"], "code": ["c0de"], "redirect_uri": ["r"],
                                       "client_id": [KINDS["codex"].client_id], "code_verifier": ["v3r"]}  # fmt: skip
    _, _, body = flow.token_request(KINDS["gemini-cli"], "c0de", "v3r", "r", "st")
    assert parse_qs(body.decode())["client_secret"] == [KINDS["gemini-cli"].client_secret]


@pytest.mark.parametrize(
    ("pasted", "code", "state"),
    [
        ("http://localhost:1455/auth/callback?code=abc&state=xyz", "abc", "xyz"),
        ("  https://platform.claude.com/oauth/code/callback?code=abc&state=xyz\n", "abc", "xyz"),
        ("code=abc&state=xyz", "abc", "xyz"),
        ("?code=abc", "abc", None),
        ("abc#xyz", "abc", "xyz"),  # Claude's paste page
        ("abc", "abc", None),  # Google's authcode page
        ("http://localhost:5/callback?code=abc%23xyz", "abc", "xyz"),
        ("http://localhost:5/callback?code=abc#xyz", "abc", "xyz"),
    ],
)
def test_a_pasted_answer_gives_its_code_and_state(pasted: str, code: str, state: str | None) -> None:
    callback = flow.parse_callback(pasted)
    assert (callback.code, callback.state, callback.error) == (code, state, None)
    assert code not in repr(callback)


def test_a_pasted_error_or_a_url_without_a_code_is_named() -> None:
    denied = flow.parse_callback("http://localhost:5/cb?error=access_denied&error_description=no&state=s")
    assert (denied.code, denied.error, denied.error_description) == (None, "access_denied", "no")
    for text in ("", "http://localhost:5/cb", "http://localhost:5/cb?state=s"):
        with pytest.raises(flow.FlowError):
            flow.parse_callback(text)


def test_token_answers_become_token_files_with_each_kinds_identity() -> None:
    answer = {"access_token": "a", "refresh_token": "r", "expires_in": 28800, "account": {"email_address": "c@x"}}
    claude = flow.token_from_response(KINDS["claude"], answer, NOW)
    assert (claude.kind, claude.expires_at, claude.email, claude.account_id) == ("claude", NOW + 28800, "c@x", None)
    id_token = jwt({"email": "o@x", "https://api.openai.com/auth": {"chatgpt_account_id": "acct-1"}})
    codex = flow.token_from_response(KINDS["codex"], {"access_token": "a", "id_token": id_token}, NOW)
    assert (codex.account_id, codex.email, codex.expires_at, codex.refresh_token) == ("acct-1", "o@x", None, None)
    answer = {"access_token": "a", "id_token": jwt({"email": "g@x"})}
    google = flow.token_from_response(KINDS["antigravity"], answer, NOW)
    assert (google.email, google.project_id) == ("g@x", None)  # the project is a separate step
    with pytest.raises(flow.FlowError):
        flow.token_from_response(KINDS["claude"], {"error": "invalid_grant"}, NOW)


# --- routes.yaml text edits -------------------------------------------------------------


def test_a_credential_is_appended_to_a_block_list_with_comments_kept() -> None:
    edited = edit.with_credential(ROUTES, "claude-max", "{label: max, oauth: t.json}")
    added = edited.splitlines()
    at = added.index("      - {label: max, oauth: t.json}")
    assert added[at - 1] == "        priority: 2" and added[at + 1] == "    strategy: fill-first"
    assert [line for line in added if line != "      - {label: max, oauth: t.json}"] == ROUTES.splitlines()


def test_an_empty_missing_or_one_line_credentials_list_takes_the_credential_too() -> None:
    empty = "providers:\n  p:\n    protocol: anthropic\n    credentials: []  # none yet\n  q:\n    protocol: gemini\n"
    assert edit.with_credential(empty, "p", "{x: 1}") == (
        "providers:\n  p:\n    protocol: anthropic\n    credentials:  # none yet\n      - {x: 1}\n"
        "  q:\n    protocol: gemini\n"
    )
    added = edit.with_credential(empty, "q", "{x: 1}")
    assert added.endswith("    protocol: gemini\n    credentials:\n      - {x: 1}\n")
    one_line = edit.with_credential(ROUTES, "chatgpt", "{x: 1}")
    assert "    credentials: [{label: old, key: sk-old-5678}, {x: 1}]\n" in one_line
    commented = "providers:\n  p:\n    credentials: [{a: 1}]  # [sic]\n"
    assert edit.with_credential(commented, "p", "{x: 1}").endswith("credentials: [{a: 1}, {x: 1}]  # [sic]\n")
    with pytest.raises(edit.EditError, match="not a list"):
        edit.with_credential("providers:\n  p:\n    credentials: ${CREDS}\n", "p", "{x: 1}")
    with pytest.raises(edit.EditError, match="not written"):
        edit.with_credential(ROUTES, "nobody", "{x: 1}")
    assert edit.oauth_entry("a b", "/t/x.json") == '{label: "a b", oauth: /t/x.json}'


# --- End to end, with the fake server ---------------------------------------------------


class Browser:
    """A scripted browser: GETs the authorize URL and follows its redirect to the local
    callback, in a thread (as a real browser runs beside the login)."""

    def __init__(self) -> None:
        self.pages: list[httpx.Response] = []
        self.threads: list[threading.Thread] = []

    def __call__(self, url: str) -> bool:
        thread = threading.Thread(target=lambda: self.pages.append(httpx.get(url, follow_redirects=True, timeout=10)))
        thread.start()
        self.threads.append(thread)
        return True

    def join(self) -> None:
        for thread in self.threads:
            thread.join(10)


class PastingUser(io.StringIO):
    """stdin of the paste flow: reads the URL the login printed, "logs in" without following
    the redirect (nothing listens there), and pastes `answer(location)`."""

    def __init__(self, err: io.StringIO, answer: Any = lambda location: location) -> None:
        super().__init__()
        self.err, self.answer = err, answer

    def readline(self, *_: Any) -> str:
        url = next(word for word in self.err.getvalue().split() if "/authorize?" in word)
        location = httpx.get(url, timeout=10).headers["location"]
        return self.answer(location) + "\n"


@pytest.fixture
def routes(tmp_path: Path) -> Path:
    path = tmp_path / "routes.yaml"
    path.write_text(ROUTES)
    return path


def login_for(server: OAuthServer, tmp_path: Path, config_path: Path | None, **fields: Any) -> Login:
    return Login(kind=server.kind, label=fields.pop("label", "work"), directory=tmp_path / "tokens",
                 config_path=config_path, authorize_endpoint=server.authorize_url, token_endpoint=server.token_url,
                 port=fields.pop("port", free_port()), timeout=fields.pop("timeout", 10), **fields)  # fmt: skip


def run(login_: Login, browser: Browser | None = None, stdin: io.StringIO | None = None,
        err: io.StringIO | None = None) -> tuple[int, str, str]:  # fmt: skip
    out, err = io.StringIO(), err or io.StringIO()
    status = login.run(login_, stdin=stdin, out=out, err=err, browser=browser or Browser(), now=lambda: NOW)
    return status, out.getvalue(), err.getvalue()


def assert_no_secret(server: OAuthServer, *texts: str) -> None:
    codes = [r.fields.get("code", "") for r in server.token_requests()]
    for secret in [*server.issued, *codes]:
        for text in texts:
            assert secret not in text


def test_claude_login_end_to_end_adds_the_credential_to_the_provider(tmp_path: Path, routes: Path) -> None:
    browser = Browser()
    with OAuthServer(KINDS["claude"], email="me@example.com", expires_in=28800) as server:
        status, out, err = run(login_for(server, tmp_path, routes, provider="claude-max"), browser)
        browser.join()
    assert status == 0 and out == ""
    assert browser.pages[-1].status_code == 200 and "logged in" in browser.pages[-1].text
    exchange = server.token_requests()[0]
    assert exchange.form == "json" and exchange.fields["state"]
    assert exchange.fields["grant_type"] == "authorization_code"
    path = tmp_path / "tokens" / "claude-work.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    saved = json.loads(path.read_text())
    assert saved["access_token"] == server.issued[0] and saved["refresh_token"] == server.issued[1]
    assert (saved["kind"], saved["email"], saved["expires_at"], saved["source"]) == (
        "claude", "me@example.com", NOW + 28800, "modelmux login")
    text = routes.read_text()
    assert "      - {label: work, oauth: tokens/claude-work.json}\n    strategy: fill-first" in text
    assert "# the API key stays first" in text and "auth: passthrough   # Claude Code's own login" in text
    provider = loader.load(routes).providers["claude-max"]
    assert [c.label for c in provider.credentials] == ["spare", "work"]
    assert provider.credentials[1].oauth.path == path.resolve()
    assert f"added credential 'work' to provider claude-max in {routes}" in err
    assert "me@example.com" in err and "valid for 8 h" in err
    assert_no_secret(server, out, err)


def test_codex_login_exchanges_a_form_and_keeps_the_account_from_the_id_token(tmp_path: Path, routes: Path) -> None:
    with OAuthServer(KINDS["codex"], account_id="acct-42") as server:
        status, out, err = run(login_for(server, tmp_path, routes, provider="chatgpt", label="plus"))
    assert status == 0
    assert server.token_requests()[0].form == "form"
    token = tokens.read(tmp_path / "tokens" / "codex-plus.json")
    assert (token.account_id, token.email, token.access_token) == ("acct-42", "user@example.com", server.issued[0])
    assert "    credentials: [{label: old, key: sk-old-5678}, {label: plus, oauth: tokens/codex-plus.json}]\n" in (
        routes.read_text())
    assert [c.label for c in loader.load(routes).providers["chatgpt"].credentials] == ["old", "plus"]
    assert out == ""
    assert_no_secret(server, out, err)


def test_a_redirect_with_another_state_is_refused(tmp_path: Path, routes: Path) -> None:
    browser = Browser()
    with OAuthServer(KINDS["claude"], wrong_state=True) as server:
        with pytest.raises(LoginError, match="state does not match"):
            run(login_for(server, tmp_path, routes, provider="claude-max"), browser)
        browser.join()
    assert browser.pages[-1].status_code == 400
    assert server.token_requests() == [] and not (tmp_path / "tokens").exists()
    assert routes.read_text() == ROUTES


def test_a_refused_login_and_a_refused_code_are_named(tmp_path: Path) -> None:
    with OAuthServer(KINDS["claude"], deny=True) as server:
        with pytest.raises(LoginError, match="not granted: access_denied"):
            run(login_for(server, tmp_path, None))
    with OAuthServer(KINDS["claude"]) as server:
        server.fail_next(400, "invalid_grant")
        with pytest.raises(LoginError, match=r"refused the code \(400: invalid_grant: failure injected"):
            run(login_for(server, tmp_path, None))
    assert not (tmp_path / "tokens").exists()


def test_no_browser_answer_times_out(tmp_path: Path) -> None:
    with OAuthServer(KINDS["claude"]) as server:
        with pytest.raises(LoginError, match="no answer from the browser within 1 s.*--paste"):
            run(login_for(server, tmp_path, None, timeout=0.3, open_browser=False), browser=Browser())


def test_the_paste_flow_takes_claudes_code_hash_state(tmp_path: Path, routes: Path) -> None:
    err = io.StringIO()
    user = PastingUser(err, lambda location: "{code}#{state}".format(**{k: v[0] for k, v in
                                                                        parse_qs(urlsplit(location).query).items()}))
    with OAuthServer(KINDS["claude"]) as server:
        status, out, _ = run(login_for(server, tmp_path, routes, paste=True), stdin=user, err=err)
    assert status == 0
    assert server.token_requests()[0].fields["redirect_uri"] == KINDS["claude"].manual_redirect
    assert tokens.read(tmp_path / "tokens" / "claude-work.json").access_token == server.issued[0]
    assert routes.read_text() == ROUTES  # no --provider: the lines are printed
    assert out == "    credentials:\n      - {label: work, oauth: tokens/claude-work.json}\n"
    assert "one of its providers of protocol anthropic (claude-max)" in err.getvalue()
    assert_no_secret(server, out, err.getvalue())


def test_the_paste_flow_takes_the_loopback_url_the_browser_could_not_open(tmp_path: Path) -> None:
    err = io.StringIO()
    with OAuthServer(KINDS["codex"]) as server:
        status, _, _ = run(login_for(server, tmp_path, None, paste=True), stdin=PastingUser(err), err=err)
        assert status == 0
        assert server.token_requests()[0].fields["redirect_uri"].startswith("http://localhost:")
    with OAuthServer(KINDS["codex"], wrong_state=True) as server:
        with pytest.raises(LoginError, match="state does not match"):
            run(login_for(server, tmp_path, None, paste=True), stdin=PastingUser(err := io.StringIO()), err=err)
        assert server.token_requests() == []


def test_a_taken_port_is_named(tmp_path: Path) -> None:
    with socket.socket() as taken, socket.socket() as also:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        also.bind(("127.0.0.1", 0))
        also.listen()
        port, other = taken.getsockname()[1], also.getsockname()[1]
        with OAuthServer(KINDS["claude"]) as server:
            with pytest.raises(LoginError, match=f"port {port} on 127.0.0.1 is in use.*another --port"):
                run(login_for(server, tmp_path, None, port=port))
        codex = replace(KINDS["codex"], redirect_port=port, redirect_fallback_port=other)
        with OAuthServer(codex) as server:
            with pytest.raises(LoginError, match=f"port {port} and {other} .*registered for.*--paste"):
                run(login_for(server, tmp_path, None, port=None))


def test_a_provider_that_cannot_take_the_login_is_named_before_the_browser_opens(tmp_path: Path, routes: Path) -> None:
    browser = Browser()
    routes.write_text(ROUTES.replace("\nroutes:", "  local: {protocol: anthropic, base_url: 'http://127.0.0.1:8080', auth: none}\n"
                                                 "\nroutes:"))  # fmt: skip
    with OAuthServer(KINDS["claude"]) as server:
        for provider, why in [("anthropic", "passthrough"), ("local", r"takes no credential \(auth: none\)"),
                              ("chatgpt", "has protocol openai-responses"), ("nope", "is not a provider")]:  # fmt: skip
            with pytest.raises(LoginError, match=f"--provider {provider} .*{why}.*providers that fit: claude-max"):
                run(login_for(server, tmp_path, routes, provider=provider), browser)
        with pytest.raises(LoginError, match="already has a credential 'spare'"):
            run(login_for(server, tmp_path, routes, provider="claude-max", label="spare"), browser)
    assert browser.threads == [] and server.received == []


def test_when_no_provider_fits_the_lines_are_printed(tmp_path: Path) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text(ROUTES.replace("protocol: anthropic\n    base_url: https://api.anthropic.com\n    auth: \"A",
                                     "protocol: gemini\n    base_url: https://g.example\n    auth: \"A"))  # fmt: skip
    with OAuthServer(KINDS["claude"]) as server:
        status, out, err = run(login_for(server, tmp_path, routes))
    assert status == 0 and routes.read_text() != "" and "label: work" not in routes.read_text()
    assert out == "    credentials:\n      - {label: work, oauth: tokens/claude-work.json}\n"
    assert "a provider with protocol: anthropic (it has none yet)" in err


def test_logging_in_again_replaces_the_token_and_leaves_routes_yaml_as_it_is(tmp_path: Path, routes: Path) -> None:
    with OAuthServer(KINDS["claude"]) as server:
        run(login_for(server, tmp_path, routes, provider="claude-max"))
        once = routes.read_text()
        status, _, err = run(login_for(server, tmp_path, routes, provider="claude-max"))
    assert status == 0 and routes.read_text() == once
    assert "token replaced in" in err and "already names this token file" in err
    assert tokens.read(tmp_path / "tokens" / "claude-work.json").access_token == server.issued[2]


GEMINI_ROUTES = ROUTES.replace("routes:", """  # Google accounts
  gemini:
    protocol: gemini
    base_url: https://generativelanguage.googleapis.com/v1beta
    auth: "x-goog-api-key: {key}"
    credentials: [{label: key, key: gk-1234}]

routes:""")


def test_a_google_login_whose_project_is_not_found_says_why_and_how_to_add_it(tmp_path: Path, routes: Path) -> None:
    with OAuthServer(KINDS["gemini-cli"]) as server, Upstream() as code_assist:
        code_assist.reply = lambda _: google_error(403, "Permission denied on resource project")
        status, out, err = run(login_for(server, tmp_path, routes, base_url=code_assist.url))
    assert status == 0 and routes.read_text() == ROUTES
    exchange = server.token_requests()[0]
    assert exchange.form == "form" and exchange.fields["client_secret"] == KINDS["gemini-cli"].client_secret
    token = tokens.read(tmp_path / "tokens" / "gemini-cli-work.json")
    assert (token.email, token.project_id, token.base_url) == ("user@example.com", None, code_assist.url)
    assert ("could not find the Google Cloud project of this login: Code Assist's loadCodeAssist answered 403: "
            "Permission denied on resource project") in err
    assert ('the login gave no project_id, which gemini-cli requests need, so routes.yaml was left alone; add '
            '"project_id": "YOUR-PROJECT" (the Google Cloud project of this login) to the token file, then add') in err
    assert "oauth: tokens/gemini-cli-work.json" in out
    assert_no_secret(server, out, err)


def test_gemini_cli_login_onboards_the_account_and_adds_the_credential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text(GEMINI_ROUTES)
    browser = Browser()
    monkeypatch.setattr(webbrowser, "open", browser)
    for name in code_assist.PROJECT_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    fake = CodeAssist(not_set_up("free-tier"), project="proj-free")
    with OAuthServer(KINDS["gemini-cli"]) as server, Upstream() as upstream:
        upstream.reply = fake
        status = cli.main(["login", "gemini-cli", "--label", "me", "--provider", "gemini", "--config", str(routes),
                           "--dir", str(tmp_path / "tokens"), "--port", str(free_port()),
                           "--authorize-url", server.authorize_url, "--token-url", server.token_url,
                           "--base-url", upstream.url])  # fmt: skip
        browser.join()
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert fake.calls == ["loadCodeAssist", "onboardUser"]
    assert {r.headers["authorization"] for r in upstream.received} == {f"Bearer {server.issued[0]}"}
    token = tokens.read(tmp_path / "tokens" / "gemini-cli-me.json")
    assert (token.project_id, token.base_url, token.email) == ("proj-free", upstream.url, "user@example.com")
    assert "its Google Cloud project is proj-free (from Code Assist)" in captured.err
    assert "    credentials: [{label: key, key: gk-1234}, {label: me, oauth: tokens/gemini-cli-me.json}]\n" in (
        routes.read_text())
    assert [c.label for c in loader.load(routes).providers["gemini"].credentials] == ["key", "me"]
    assert_no_secret(server, captured.out, captured.err)


def test_device_code_and_a_bad_label_are_refused_up_front(tmp_path: Path) -> None:
    with OAuthServer(KINDS["codex"]) as server:
        with pytest.raises(LoginError, match="no device-code login.*--paste"):
            run(login_for(server, tmp_path, None, device=True))
        with pytest.raises(LoginError, match="--label '../x'"):
            run(login_for(server, tmp_path, None, label="../x"))
        assert server.received == []


def test_the_cli_runs_the_login_and_prints_no_secret(
    tmp_path: Path, routes: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    browser = Browser()
    monkeypatch.setattr(webbrowser, "open", browser)
    with OAuthServer(KINDS["claude"]) as server:
        status = cli.main(["login", "claude", "--label", "cli", "--provider", "claude-max", "--config", str(routes),
                           "--dir", str(tmp_path / "tokens"), "--port", str(free_port()),
                           "--authorize-url", server.authorize_url, "--token-url", server.token_url])  # fmt: skip
        browser.join()
    captured = capsys.readouterr()
    assert status == 0, captured.err
    assert "label: cli" in routes.read_text()
    assert_no_secret(server, captured.out, captured.err)
    with OAuthServer(KINDS["claude"]) as server:
        assert cli.main(["login", "claude", "--label", "x", "--device", "--config", str(routes)]) == 1
    assert capsys.readouterr().err.startswith("modelmux login: claude offers no device-code login")


# --- The fake server itself: refresh, rotation, revocation (the refresh tests reuse it) ---


def test_the_fake_server_rotates_refresh_tokens_and_revokes_them() -> None:
    with OAuthServer(KINDS["claude"], expires_in=60) as server:
        browser_url = flow.authorize_url(server.kind, "http://localhost:1/callback", "s", flow.challenge_of("v" * 43),
                                         server.authorize_url)  # fmt: skip
        code = parse_qs(urlsplit(httpx.get(browser_url).headers["location"]).query)["code"][0]
        url, headers, body = flow.token_request(server.kind, code, "v" * 43, "http://localhost:1/callback", "s",
                                                server.token_url)  # fmt: skip
        first = httpx.post(url, headers=headers, content=body).json()
        assert first["expires_in"] == 60
        assert httpx.post(url, headers=headers, content=body).json()["error"] == "invalid_grant"  # a code is single-use

        def refresh(token: str) -> httpx.Response:
            return httpx.post(url, json={"grant_type": "refresh_token", "refresh_token": token,
                                         "client_id": server.kind.client_id})  # fmt: skip

        second = refresh(first["refresh_token"]).json()
        assert second["refresh_token"] != first["refresh_token"]
        assert refresh(first["refresh_token"]).status_code == 400  # rotated: the old one is used up
        server.fail_next(503)
        assert refresh(second["refresh_token"]).status_code == 503
        server.revoke()
        assert refresh(second["refresh_token"]).json()["error"] == "invalid_grant"
    assert [r.form for r in server.token_requests()] == ["json"] * 6


def test_a_layout_the_edit_does_not_know_leaves_routes_yaml_alone_and_prints_the_lines(tmp_path: Path) -> None:
    routes = tmp_path / "routes.yaml"
    routes.write_text(anchored := ROUTES.replace("credentials: [{label: old", "credentials: &chat [{label: old"))
    with OAuthServer(KINDS["codex"]) as server:
        status, out, err = run(login_for(server, tmp_path, routes, provider="chatgpt"))
    assert status == 0 and routes.read_text() == anchored
    assert out == "    credentials:\n      - {label: work, oauth: tokens/codex-work.json}\n"
    assert "could not add it" in err and "not a list" in err
