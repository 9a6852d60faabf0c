"""A fake OAuth authorization server on 127.0.0.1, strict where real ones are: an
authorization endpoint that checks the client, the redirect URI and the PKCE challenge
and redirects back with a code and the state; a token endpoint that checks the code,
its verifier and the client, and serves refresh_token grants with rotation (a used
refresh token is refused, as Anthropic's and OpenAI's are), expiry and revocation.

    with OAuthServer(KINDS["codex"]) as server:
        server.authorize_url, server.token_url   # what a login is pointed at
        server.received                          # every request, in order
        server.revoke(); server.fail_next(503); server.expires_in = 60
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs, urlencode, urlsplit

import upstream

from modelmux.oauth.kinds import Kind

LOOPBACKS = ("localhost", "127.0.0.1")


@dataclass
class Received(upstream.Received):
    fields: dict[str, str]  # the query (authorize) or the JSON or form body (token)
    form: str  # "json", "form" or "query"


@dataclass
class Grant:
    """An issued code: what the token request must match."""

    client_id: str
    redirect_uri: str
    challenge: str
    scope: str
    used: bool = False


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def jwt(claims: dict[str, Any]) -> str:
    """An unsigned JWT: modelmux reads id_token claims without checking a signature."""

    def part(data: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}.c2ln"


@dataclass
class OAuthServer:
    kind: Kind
    email: str = "user@example.com"
    account_id: str = "acct-7f3e"  # the ChatGPT account in a codex id_token
    expires_in: int | None = 3600
    rotate: bool = True  # refresh answers carry a new refresh token (Google's do not)
    wrong_state: bool = False  # the authorize redirect carries another state (a forged redirect)
    deny: bool = False  # the user refuses: error=access_denied
    strict_port: bool = False  # refuse a redirect_uri off the kind's registered port (tests log in on free ones)
    received: list[Received] = field(default_factory=list)
    issued: list[str] = field(default_factory=list)  # every access and refresh token handed out
    _grants: dict[str, Grant] = field(default_factory=dict)
    _refresh: dict[str, bool] = field(default_factory=dict)  # refresh token -> still valid
    _failures: list[tuple[int, str]] = field(default_factory=list)

    # --- knobs -------------------------------------------------------------------------

    def revoke(self) -> None:
        """Every refresh token issued so far stops working (the user logged out elsewhere)."""
        self._refresh = dict.fromkeys(self._refresh, False)

    def fail_next(self, status: int, error: str = "server_error") -> None:
        """The next token request is answered `status` with an OAuth error body."""
        self._failures.append((status, error))

    def token_requests(self) -> list[Received]:
        return [r for r in self.received if r.path == "/token"]

    # --- server ------------------------------------------------------------------------

    def __enter__(self) -> Self:
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def authorize_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/authorize"

    @property
    def token_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/token"

    # --- endpoints: (status, headers, JSON body or None) -------------------------------

    def authorize(self, q: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        redirect = q.get("redirect_uri", "")
        if q.get("client_id") != self.kind.client_id:
            return 400, {}, {"error": "invalid_client"}
        if not self._redirect_ok(redirect):
            return 400, {}, {"error": "invalid_request", "error_description": f"redirect_uri {redirect} not registered"}
        if q.get("response_type") != "code" or q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            return 400, {}, {"error": "invalid_request", "error_description": "PKCE S256 is required"}
        state = "forged-" + secrets.token_hex(4) if self.wrong_state else q.get("state", "")
        if self.deny:
            back = {"error": "access_denied", "error_description": "the user said no", "state": state}
        else:
            code = "code-" + secrets.token_urlsafe(12)
            self._grants[code] = Grant(self.kind.client_id, redirect, q["code_challenge"], q.get("scope", ""))
            back = {"code": code, "state": state}
        return 302, {"location": f"{redirect}?{urlencode(back)}"}, None

    def _redirect_ok(self, uri: str) -> bool:
        if uri == self.kind.manual_redirect:
            return True
        parts = urlsplit(uri)
        registered = (self.kind.redirect_port, self.kind.redirect_fallback_port)
        port_ok = not self.strict_port or self.kind.redirect_port is None or parts.port in registered
        loopback = parts.scheme == "http" and parts.hostname in LOOPBACKS
        return loopback and parts.path == self.kind.redirect_path and port_ok

    def token(self, f: dict[str, str]) -> tuple[int, dict[str, str], Any]:
        if self._failures:
            status, error = self._failures.pop(0)
            return status, {}, {"error": error, "error_description": "failure injected by the test"}
        if f.get("client_id") != self.kind.client_id or f.get("client_secret") != self.kind.client_secret:
            return 401, {}, {"error": "invalid_client"}
        if f.get("grant_type") == "authorization_code":
            grant = self._grants.get(f.get("code", ""))
            if grant is None or grant.used:
                return 400, {}, {"error": "invalid_grant", "error_description": "unknown or used code"}
            grant.used = True
            if f.get("redirect_uri") != grant.redirect_uri:
                return 400, {}, {"error": "invalid_grant", "error_description": "redirect_uri differs"}
            if s256(f.get("code_verifier", "")) != grant.challenge:
                return 400, {}, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
            return 200, {}, self._tokens(refresh=True, identity=True)
        if f.get("grant_type") == "refresh_token":
            if not self._refresh.get(f.get("refresh_token", ""), False):
                return 400, {}, {"error": "invalid_grant", "error_description": "refresh token revoked or used"}
            if self.rotate:
                self._refresh[f["refresh_token"]] = False  # single use
            return 200, {}, self._tokens(refresh=self.rotate, identity=False)
        return 400, {}, {"error": "unsupported_grant_type"}

    def _tokens(self, refresh: bool, identity: bool) -> dict[str, Any]:
        access = "at-" + secrets.token_urlsafe(24)
        answer: dict[str, Any] = {"access_token": access, "token_type": "Bearer"}
        self.issued.append(access)
        if self.expires_in is not None:
            answer["expires_in"] = self.expires_in
        if refresh:
            answer["refresh_token"] = refresh_token = "rt-" + secrets.token_urlsafe(24)
            self._refresh[refresh_token] = True
            self.issued.append(refresh_token)
        if self.kind.name == "claude":
            answer["account"] = {"uuid": "acc-uuid", "email_address": self.email}
        elif identity:
            claims: dict[str, Any] = {"email": self.email, "sub": "user-1"}
            if self.kind.name == "codex":
                claims["https://api.openai.com/auth"] = {"chatgpt_account_id": self.account_id}
            answer["id_token"] = jwt(claims)
        return answer


class _Handler(BaseHTTPRequestHandler):
    fake: OAuthServer

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        fields = {k: v[0] for k, v in parse_qs(parts.query).items()}
        self._record(b"", fields, "query")
        if parts.path != "/authorize":
            return self._answer(404, {}, {"error": "not_found"})
        self._answer(*self.fake.authorize(fields))

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length") or 0))
        is_json = (self.headers.get("content-type") or "").startswith("application/json")
        try:
            fields = json.loads(body) if is_json else {k: v[0] for k, v in parse_qs(body.decode()).items()}
        except ValueError:
            fields = {}
        self._record(body, fields, "json" if is_json else "form")
        if urlsplit(self.path).path != "/token":
            return self._answer(404, {}, {"error": "not_found"})
        self._answer(*self.fake.token(fields))

    def _record(self, body: bytes, fields: dict[str, str], form: str) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.fake.received.append(Received(self.command, urlsplit(self.path).path, headers, body, fields, form))

    def _answer(self, status: int, headers: dict[str, str], data: Any) -> None:
        body = json.dumps(data).encode() if data is not None else b""
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass
