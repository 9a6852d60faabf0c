"""The OAuth authorization-code flow with PKCE (RFC 7636) as data: the URL the browser
opens, what the callback brings back, the token request and what its answer means.
Pure: no network, no files, no clock. `modelmux.oauth.login` does the I/O.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from modelmux.oauth import claims
from modelmux.oauth.kinds import Kind
from modelmux.oauth.tokens import Token


class FlowError(Exception):
    """A callback or token answer that cannot be used; the message says what it lacked."""


@dataclass(frozen=True)
class Callback:
    """What the authorization server sent back: a code, or an error."""

    code: str | None
    state: str | None
    error: str | None = None
    error_description: str | None = None

    def __repr__(self) -> str:  # the code is a one-time login: never shown
        return f"Callback(state={self.state!r}, error={self.error!r})"


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def pkce() -> tuple[str, str]:
    """(verifier, S256 challenge): a verifier of 32 random bytes is 43 characters, the
    shortest RFC 7636 allows."""
    verifier = _b64url(secrets.token_bytes(32))
    return verifier, challenge_of(verifier)


def challenge_of(verifier: str) -> str:
    return _b64url(hashlib.sha256(verifier.encode("ascii")).digest())


def new_state() -> str:
    return _b64url(secrets.token_bytes(32))


def redirect_uri(kind: Kind, port: int) -> str:
    return f"http://{kind.redirect_host}:{port}{kind.redirect_path}"


def authorize_url(kind: Kind, redirect_uri: str, state: str, challenge: str, endpoint: str | None = None) -> str:
    """The URL the user opens to log in; `endpoint` replaces the kind's authorize URL
    (tests, self-hosted servers)."""
    params = {
        **kind.authorize_params,
        "response_type": "code",
        "client_id": kind.client_id,
        "redirect_uri": redirect_uri,
        "scope": " ".join(kind.scopes),
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": state,
    }
    base = endpoint or kind.authorize_url
    return f"{base}{'&' if '?' in base else '?'}{urlencode(params, quote_via=quote)}"


def token_request(
    kind: Kind, code: str, verifier: str, redirect_uri: str, state: str | None, endpoint: str | None = None
) -> tuple[str, dict[str, str], bytes]:
    """(url, headers, body) of the code exchange, in the body format the kind's token
    endpoint takes."""
    fields = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": kind.client_id,
        "code_verifier": verifier,
    }
    if kind.client_secret:
        fields["client_secret"] = kind.client_secret
    return (endpoint or kind.token_url, *encode_body(kind.exchange_body or kind.token_body, fields, state))


def encode_body(form: str, fields: dict[str, str], state: str | None = None) -> tuple[dict[str, str], bytes]:
    """(headers, body) for a token endpoint that takes `form` ("json" or "form")."""
    if form == "json":
        # Anthropic's JSON exchange carries the state too (CLIProxyAPI anthropic_auth.go, pi-mono anthropic.ts).
        body = {**fields, **({"state": state} if state else {})}
        return {"content-type": "application/json", "accept": "application/json"}, json.dumps(body).encode()
    return ({"content-type": "application/x-www-form-urlencoded", "accept": "application/json"},
            urlencode(fields).encode("ascii"))  # fmt: skip


def parse_callback(text: str) -> Callback:
    """The code and state from what a user pastes: the whole redirected URL, its query
    string, `code#state` (Claude's paste page shows that), or a bare code. Raises
    FlowError when there is no code and no error in it."""
    text = text.strip()
    if not text:
        raise FlowError("nothing was pasted")
    if "://" in text:
        parts = urlsplit(text)
        query, fragment = parts.query, parts.fragment
        if not query:
            raise FlowError("the URL has no query: paste the whole address the browser was sent to, with ?code=")
    elif "=" in text:
        query, _, fragment = text.lstrip("?").partition("#")
    else:
        code, _, state = text.partition("#")
        return Callback(code=code.strip(), state=state.strip() or None)
    values = {name: items[0] for name, items in parse_qs(query).items()}
    if "error" in values:
        return Callback(None, values.get("state"), values["error"], values.get("error_description"))
    pasted = values.get("code")
    if not pasted:
        raise FlowError("what was pasted has no code= parameter")
    code, _, inner = pasted.partition("#")  # Claude may send code#state as the code
    # A code#state pasted into a URL ends up as code=...#state: the state is the fragment.
    return Callback(code=code, state=values.get("state") or inner or fragment or None)


def token_from_response(kind: Kind, data: Any, now: float, source: str = "modelmux login") -> Token:
    """The token file's content from a token endpoint's JSON answer. A Google kind's
    project_id is not in the answer: it comes from Code Assist's loadCodeAssist, a
    separate step, and is left None here."""
    if not isinstance(data, dict) or not isinstance(data.get("access_token"), str) or not data["access_token"]:
        raise FlowError("the token endpoint's answer has no access_token")
    expires_in = data.get("expires_in")
    expires_at = now + float(expires_in) if isinstance(expires_in, (int, float)) and expires_in > 0 else None
    id_token = data.get("id_token") if isinstance(data.get("id_token"), str) else None
    email: str | None = None
    account_id: str | None = None
    if kind.name == "codex":
        account_id, email = claims.openai_account(id_token)
    elif kind.name == "claude":
        account: dict[str, Any] = data["account"] if isinstance(data.get("account"), dict) else {}
        email = account.get("email_address") if isinstance(account.get("email_address"), str) else None
    elif id_token:  # Google's OpenID id_token carries the address when userinfo.email was granted
        found = claims.payload(id_token).get("email")
        email = found if isinstance(found, str) else None
    refresh = data.get("refresh_token")
    return Token(
        kind=kind.name,
        access_token=data["access_token"],
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
        expires_at=expires_at,
        email=email or None,
        account_id=account_id,
        source=source,
    )
