"""What each subscription's OAuth login and requests look like, as data. Pure.

Every fact here about a real service (URLs, client ids, scopes, headers) was read
from the public code of the tools that use these logins (Claude Code, the Codex
CLI's codex-rs/login, gemini-cli's code_assist, CLIProxyAPI); none could be checked
against the live service from where modelmux is built. When a provider changes one,
this table is the one place to correct it. docs/logins.md says
the same.

Two facts shape requests beyond headers: Anthropic answers a subscription token's
request 400 unless its first system block is Claude Code's own ("You are Claude
Code, Anthropic's official CLI for Claude."), which Claude Code sends and other
clients do not; and the Codex backend takes only streamed, unstored requests without
max_output_tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Kind:
    name: str
    protocol: str  # the routes.yaml protocol of the providers this kind of login can serve
    description: str
    # The login.
    authorize_url: str
    token_url: str
    client_id: str
    scopes: tuple[str, ...]
    redirect_port: int | None  # the local callback port the client id is registered for; None: any
    redirect_path: str
    client_secret: str | None = None  # Google's "installed app" clients have a public one
    token_body: str = "json"  # how the token endpoint takes its body: "json" or "form"
    exchange_body: str | None = None  # the code exchange's, when it differs from token_body (refresh)
    authorize_params: Mapping[str, str] = field(default_factory=dict)
    redirect_host: str = "localhost"  # how the redirect_uri names the loopback (the callback binds 127.0.0.1)
    redirect_fallback_port: int | None = None  # also registered: tried when redirect_port is taken
    # A provider page that shows the code for pasting (`modelmux login --paste`); None: the
    # user pastes the loopback URL the browser could not open instead.
    manual_redirect: str | None = None
    # Requests sent with the token.
    base_url: str | None = None  # None: the provider's own base_url
    auth_header: str = "authorization"
    auth_template: str = "Bearer {token}"
    headers: Mapping[str, str] = field(default_factory=dict)  # {account_id} and {project_id} are filled in
    beta: str | None = None  # added to the client's anthropic-beta list
    needs: tuple[str, ...] = ()  # token-file fields a request cannot do without
    # Google's Code Assist endpoint: generateContent wrapped as {model, project, request}
    # at base_url + "/v1internal:METHOD", answers wrapped as {response}; these fields too.
    code_assist: Mapping[str, str] | None = None

    def request_headers(self, access_token: str, account_id: str | None, project_id: str | None) -> dict[str, str]:
        values = {"account_id": account_id or "", "project_id": project_id or ""}
        out = {self.auth_header: self.auth_template.replace("{token}", access_token)}
        out.update({name: value.format(**values) for name, value in self.headers.items()})
        return out


GOOGLE_SCOPES = ("https://www.googleapis.com/auth/cloud-platform", "https://www.googleapis.com/auth/userinfo.email",
                 "https://www.googleapis.com/auth/userinfo.profile")  # fmt: skip
# What both Google logins share: the endpoints, a form-encoded token request, offline
# access (a refresh token), Code Assist as the API, and its Cloud project.
GOOGLE: dict[str, Any] = {
    "protocol": "gemini",
    "authorize_url": "https://accounts.google.com/o/oauth2/v2/auth",
    "token_url": "https://oauth2.googleapis.com/token",
    "token_body": "form",
    "authorize_params": {"access_type": "offline", "prompt": "consent"},
    "base_url": "https://cloudcode-pa.googleapis.com",
    "needs": ("project_id",),
}

KINDS: dict[str, Kind] = {
    "claude": Kind(
        name="claude",
        protocol="anthropic",
        description="a Claude Pro/Max subscription (Claude Code's login)",
        authorize_url="https://claude.ai/oauth/authorize",
        # Claude Code's current token endpoint; older clients use console.anthropic.com's.
        token_url="https://platform.claude.com/v1/oauth/token",
        client_id="9d1c250a-e61b-44d9-88ed-5944d1962f5e",
        scopes=("org:create_api_key", "user:profile", "user:inference"),
        redirect_port=54545,
        redirect_path="/callback",
        authorize_params={"code": "true"},
        manual_redirect="https://platform.claude.com/oauth/code/callback",  # shows code#state
        beta="oauth-2025-04-20",
    ),
    "codex": Kind(
        name="codex",
        protocol="openai-responses",
        description="a ChatGPT Plus/Pro subscription (the Codex CLI's login)",
        authorize_url="https://auth.openai.com/oauth/authorize",
        token_url="https://auth.openai.com/oauth/token",
        client_id="app_EMoamEEZ73f0CkXaXp7hrann",
        scopes=("openid", "profile", "email", "offline_access", "api.connectors.read", "api.connectors.invoke"),
        redirect_port=1455,
        redirect_path="/auth/callback",
        redirect_fallback_port=1457,
        exchange_body="form",  # codex-rs login/src/server.rs exchange_code_for_tokens; its refresh is JSON
        authorize_params={"id_token_add_organizations": "true", "codex_cli_simplified_flow": "true",
                          "originator": "codex_cli_rs"},
        base_url="https://chatgpt.com/backend-api/codex",
        headers={"chatgpt-account-id": "{account_id}", "originator": "codex_cli_rs"},
        needs=("account_id",),
    ),
    "gemini-cli": Kind(
        name="gemini-cli",
        description="a Google account through Gemini CLI's Code Assist login",
        client_id="681255809395-oo8ft2oprdrnp9e3aqf6av3hmdib135j.apps.googleusercontent.com",
        client_secret="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",
        scopes=GOOGLE_SCOPES,
        redirect_port=None,
        redirect_path="/oauth2callback",
        redirect_host="127.0.0.1",
        manual_redirect="https://codeassist.google.com/authcode",  # gemini-cli's NO_BROWSER flow
        code_assist={},
        **GOOGLE,
    ),
    "antigravity": Kind(
        name="antigravity",
        description="a Google account through Antigravity's login",
        client_id="1071006060591-tmhssin2h21lcre235vtolojh4g403ep.apps.googleusercontent.com",
        client_secret="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",
        scopes=(*GOOGLE_SCOPES, "https://www.googleapis.com/auth/cclog",
                "https://www.googleapis.com/auth/experimentsandconfigs"),
        redirect_port=51121,
        redirect_path="/oauth-callback",
        code_assist={"userAgent": "antigravity", "requestType": "agent"},
        **GOOGLE,
    ),
}
