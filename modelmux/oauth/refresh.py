"""A token refresh as data: the request to send, and the token its answer gives. Pure.

The refresh grant (RFC 6749 §6) is the same everywhere in shape; what differs per
kind is the body's encoding (JSON for Anthropic and OpenAI, a form for Google), a
client secret (Google's installed-app clients), and what else comes back (a rotated
refresh token, an id_token naming the ChatGPT account).
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from modelmux.oauth import claims
from modelmux.oauth.kinds import Kind
from modelmux.oauth.tokens import Token

# How long before expiry a token is refreshed: a request must not start with a token
# that runs out while the upstream works on it.
MARGIN = 300.0
# Statuses and OAuth error codes that say the login itself is gone (revoked, expired,
# replaced by a newer login): only a new login helps.
LOGIN_GONE = frozenset({"invalid_grant", "invalid_client", "unauthorized_client", "access_denied"})


class RefreshFailed(Exception):
    """A refresh that did not give a token. `login_gone`: the refresh token is no good
    (revoked or replaced), so only a new login helps; otherwise trying later may."""

    def __init__(self, message: str, login_gone: bool) -> None:
        super().__init__(message)
        self.message = message
        self.login_gone = login_gone


def request(kind: Kind, token: Token) -> tuple[str, dict[str, str], bytes]:
    """(URL, headers, body) of the refresh. Raises RefreshFailed when there is nothing
    to refresh with."""
    if not token.refresh_token:
        raise RefreshFailed("the token file has no refresh token", login_gone=True)
    fields = {"grant_type": "refresh_token", "refresh_token": token.refresh_token, "client_id": kind.client_id}
    if kind.client_secret:
        fields["client_secret"] = kind.client_secret
    url = token.token_url or kind.token_url
    headers = {"accept": "application/json"}
    if kind.token_body == "form":
        headers["content-type"] = "application/x-www-form-urlencoded"
        return url, headers, urlencode(fields).encode()
    headers["content-type"] = "application/json"
    return url, headers, json.dumps(fields).encode()


def refreshed(token: Token, status: int, body: bytes, now: float) -> Token:
    """The token a refresh answer gives. Raises RefreshFailed saying why not, in words
    without any token in them."""
    try:
        data: Any = json.loads(body)
    except ValueError:
        data = None
    if status >= 400 or not isinstance(data, dict) or not isinstance(data.get("access_token"), str):
        error = data.get("error") if isinstance(data, dict) else None
        code = error if isinstance(error, str) else (error or {}).get("type") if isinstance(error, dict) else None
        said = data.get("error_description") if isinstance(data, dict) else None
        gone = code in LOGIN_GONE or (code is None and status in (400, 401, 403))
        words = f"{code}: {said}" if code and isinstance(said, str) else code or f"HTTP {status}"
        raise RefreshFailed(f"the token endpoint refused the refresh ({words})", gone)
    expires_in = data.get("expires_in")
    expires_at = now + float(expires_in) if isinstance(expires_in, (int, float)) else None
    account_id, email = claims.openai_account(data.get("id_token")) if isinstance(data.get("id_token"), str) else (None, None)
    refresh_token = data.get("refresh_token") if isinstance(data.get("refresh_token"), str) else None
    return token.refreshed(data["access_token"], refresh_token, expires_at, account_id=account_id, email=email)

