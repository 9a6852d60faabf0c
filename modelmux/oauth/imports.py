"""Logins a user already has, as modelmux token files: Claude Code's own credentials,
the Codex CLI's auth.json and CLIProxyAPI's auth-dir files. Parsing is pure; `discover`
only reads, and `import_to` writes a copy, owner-only, never touching the original.
No network here.

The formats, as read in each tool's public source:
- Claude Code: ~/.claude/.credentials.json ($CLAUDE_CONFIG_DIR/.credentials.json when
  set) holds {"claudeAiOauth": {"accessToken", "refreshToken", "expiresAt" (Unix ms),
  "scopes", "subscriptionType"}}; the account's email is in ~/.claude.json
  ($CLAUDE_CONFIG_DIR/.claude.json) under oauthAccount.emailAddress. On macOS the
  login is in the Keychain instead, which modelmux does not read.
- Codex CLI: $CODEX_HOME/auth.json (default ~/.codex) holds {"OPENAI_API_KEY",
  "tokens": {"id_token", "access_token", "refresh_token", "account_id"},
  "last_refresh"} (codex-rs/login/src/auth/storage.rs). No expiry is stored: the
  access token is a JWT whose `exp` says it.
- CLIProxyAPI: one flat JSON file per login in its auth-dir (default ~/.cli-proxy-api),
  with "type" claude|codex|gemini|antigravity, access_token, refresh_token, email and
  "expired" (RFC 3339); a gemini file keeps its tokens in a "token" object (Go's
  oauth2.Token: access_token, refresh_token, expiry) beside project_id, which may name
  several projects ("a,b" or "ALL") (internal/auth/*/token.go, sdk/auth/antigravity.go).
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from modelmux.oauth import claims, tokens
from modelmux.oauth.kinds import KINDS
from modelmux.oauth.tokens import Token, TokenFileError

CLAUDE_CODE, CODEX_CLI, CLIPROXYAPI = "Claude Code", "Codex CLI", "CLIProxyAPI"
CLIPROXYAPI_KINDS = {"claude": "claude", "codex": "codex", "gemini": "gemini-cli", "antigravity": "antigravity"}
CLIPROXYAPI_DIR = ".cli-proxy-api"  # auth-dir in CLIProxyAPI's config.example.yaml
KEYCHAIN_ITEM = "Claude Code-credentials"
API_KEY_LINE = '- {label: openai, key: "${OPENAI_API_KEY}"}'
# A label is a routes.yaml name (^[A-Za-z0-9][A-Za-z0-9_.-]*$): an email's "@" does not fit.
_NOT_IN_NAME = re.compile(r"[^A-Za-z0-9_.-]+")


class NotImportable(Exception):
    """A file that holds no login modelmux can use: the message says why, `fix` what
    to do instead."""

    def __init__(self, reason: str, fix: str | None = None) -> None:
        super().__init__(reason)
        self.fix = fix


@dataclass(frozen=True)
class Found:
    """One file looked at: the login it holds, or why it cannot be imported."""

    path: Path
    origin: str | None  # CLAUDE_CODE, CODEX_CLI, CLIPROXYAPI; None: not recognised
    token: Token | None = field(default=None, repr=False)
    reason: str | None = None
    fix: str | None = None

    @property
    def kind(self) -> str | None:
        return self.token.kind if self.token else None

    @property
    def protocol(self) -> str | None:
        return KINDS[self.token.kind].protocol if self.token else None

    @property
    def label(self) -> str | None:
        """The credential label, and the token file's name without .json."""
        if self.token is None:
            return None
        account = self.token.email or self.token.account_id
        return f"{self.token.kind}-{_NOT_IN_NAME.sub('_', account)}" if account else self.token.kind

    @property
    def missing(self) -> list[str]:
        """Token fields the kind's requests need that this login lacks."""
        return [f for f in KINDS[self.token.kind].needs if getattr(self.token, f) is None] if self.token else []


@dataclass(frozen=True)
class Outcome:
    action: str  # "wrote", "replaced", "unchanged", "kept" (a newer token is there), "refused"
    path: Path
    detail: str | None = None


def from_claude_code(data: Any, email: str | None = None, source: str | None = None) -> Token:
    oauth = data.get("claudeAiOauth") if isinstance(data, dict) else None
    access = _text(oauth.get("accessToken")) if isinstance(oauth, dict) else None
    if not isinstance(oauth, dict) or access is None:
        raise NotImportable("has no claudeAiOauth.accessToken: Claude Code is not logged in to a subscription here",
                            fix="log in with `claude`, then import again")
    expires = _number(oauth.get("expiresAt"))
    return Token(kind="claude", access_token=access, refresh_token=_text(oauth.get("refreshToken")),
                 expires_at=expires / 1000 if expires is not None else None, email=email, source=source)


def from_codex_cli(data: Any, source: str | None = None) -> Token:
    held = data.get("tokens") if isinstance(data, dict) else None
    access = _text(held.get("access_token")) if isinstance(held, dict) else None
    if not isinstance(held, dict) or access is None:
        if isinstance(data, dict) and _text(data.get("OPENAI_API_KEY")):
            raise NotImportable("holds an OpenAI API key, not a ChatGPT login",
                                fix=f"export OPENAI_API_KEY with that key and add {API_KEY_LINE} "
                                    "to a provider with protocol openai-responses")
        raise NotImportable("has no tokens.access_token: the Codex CLI is not logged in with ChatGPT here",
                            fix="log in with `codex login`, then import again")
    account, email = claims.openai_account(_text(held.get("id_token")))
    return Token(kind="codex", access_token=access, refresh_token=_text(held.get("refresh_token")),
                 expires_at=_number(claims.payload(access).get("exp")), email=email,
                 account_id=_text(held.get("account_id")) or account, source=source)


def from_cliproxyapi(data: Any, source: str | None = None) -> Token:
    kind_name = data.get("type") if isinstance(data, dict) else None
    kind = CLIPROXYAPI_KINDS.get(kind_name) if isinstance(kind_name, str) else None
    if kind is None:
        raise NotImportable(f"is a CLIProxyAPI {kind_name!r} login; modelmux imports "
                            f"{', '.join(CLIPROXYAPI_KINDS)} ones")
    # A gemini file's "token" object is what CLIProxyAPI refreshes; its top level may lag.
    inner = data.get("token") if isinstance(data.get("token"), dict) else {}
    fields = {**data, **{k: v for k, v in inner.items() if v not in (None, "")}}
    access = _text(fields.get("access_token"))
    if access is None:
        raise NotImportable("has no access_token", fix=f"log in again with CLIProxyAPI or `modelmux login {kind}`")
    expires = _rfc3339(fields.get("expired")) or _rfc3339(fields.get("expiry"))
    issued, lifetime = _number(fields.get("timestamp")), _number(fields.get("expires_in"))
    if expires is None and issued and lifetime:  # antigravity: issued (Unix ms) plus lifetime (s)
        expires = issued / 1000 + lifetime
    account, email = claims.openai_account(_text(fields.get("id_token"))) if kind == "codex" else (None, None)
    project = _text(fields.get("project_id"))
    return Token(kind=kind, access_token=access, refresh_token=_text(fields.get("refresh_token")),
                 expires_at=expires, email=_text(fields.get("email")) or email,
                 account_id=_text(fields.get("account_id")) or account,
                 project_id=project if project and "," not in project and project.upper() != "ALL" else None,
                 source=source)


def read_source(path: Path) -> Found:
    """What the file at `path` holds, recognised by its content, not its name."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        return Found(path, None, reason=f"cannot be read ({e.strerror})")
    except ValueError:
        return Found(path, None, reason="is not JSON")
    origin = _origin(data)
    if origin is None:
        known = "is already a modelmux token file: name it in routes.yaml as it is" if (
            isinstance(data, dict) and "modelmux_oauth" in data) else (
            "is not a login modelmux recognises (Claude Code's, the Codex CLI's or CLIProxyAPI's)")
        return Found(path, None, reason=known)
    source = f"imported from {path} ({origin})"
    try:
        if origin == CLAUDE_CODE:
            token = from_claude_code(data, _claude_code_email(path), source)
        elif origin == CODEX_CLI:
            token = from_codex_cli(data, source)
        else:
            token = from_cliproxyapi(data, source)
    except NotImportable as e:
        return Found(path, origin, reason=str(e), fix=e.fix)
    return Found(path, origin, token)


def places(home: Path, environ: Mapping[str, str]) -> list[Path]:
    """Where each tool keeps its login by default: Claude Code's file, the Codex CLI's
    auth.json, CLIProxyAPI's auth-dir."""
    claude = Path(environ["CLAUDE_CONFIG_DIR"]).expanduser() if environ.get("CLAUDE_CONFIG_DIR") else home / ".claude"
    codex = Path(environ["CODEX_HOME"]).expanduser() if environ.get("CODEX_HOME") else home / ".codex"
    return [claude / ".credentials.json", codex / "auth.json", home / CLIPROXYAPI_DIR]


def discover(home: Path, environ: Mapping[str, str], paths: Iterable[Path] = (),
             platform: str = sys.platform) -> list[Found]:
    """Every file in `paths` (a directory: its *.json files), or without paths the
    default places. A default place that does not exist is skipped, except Claude
    Code's on macOS, which says where that login is instead."""
    explicit = [Path(p).expanduser() for p in paths]
    found: list[Found] = []
    seen: set[Path] = set()
    for place in explicit or places(home, environ):
        if place.is_dir():
            files = sorted(p for p in place.glob("*.json") if not p.name.startswith(".") and p.is_file())
        elif place.exists():
            files = [place]
        else:
            if explicit:
                found.append(Found(place, None, reason="does not exist"))
            elif place.name == ".credentials.json" and platform == "darwin":
                found.append(Found(place, CLAUDE_CODE, reason=(
                    f'does not exist: on macOS Claude Code keeps its login in the Keychain (item "{KEYCHAIN_ITEM}"), '
                    "which modelmux does not read"), fix="log in with `modelmux login claude`"))
            continue
        for file in files:
            if file.resolve() not in seen:
                seen.add(file.resolve())
                found.append(read_source(file))
    return found


def import_to(found: Found, directory: Path, dry_run: bool = False) -> Outcome:
    """Copy `found`'s login to DIRECTORY/LABEL.json (0600). A token already there is
    replaced only by one that expires no earlier: a copy modelmux has since refreshed
    is newer than its original, and going back to the original would lose it."""
    if found.token is None or found.label is None:
        raise ValueError(f"{found.path} holds no login to import")
    token, path = found.token, directory / f"{found.label}.json"
    action = "wrote"
    if path.exists() or path.is_symlink():
        try:
            current = tokens.read(path)
        except TokenFileError:  # someone else's file, or a token file others may read: not ours to replace
            return Outcome("refused", path, "it exists and is not a private modelmux token file; "
                                            "move it away or pass --dir")
        if (current.access_token, current.refresh_token) == (token.access_token, token.refresh_token):
            return Outcome("unchanged", path)
        if current.expires_at is not None and (token.expires_at is None or current.expires_at > token.expires_at):
            return Outcome("kept", path, f"it holds a token that expires later ({when(current.expires_at)}); "
                                         f"delete it to import this one anyway")
        action = "replaced"
    if not dry_run:
        tokens.write(path, token)
    return Outcome(action, path)


def when(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def _origin(data: Any) -> str | None:
    if not isinstance(data, dict):
        return None
    if "claudeAiOauth" in data:
        return CLAUDE_CODE
    if "tokens" in data or "OPENAI_API_KEY" in data:
        return CODEX_CLI
    if isinstance(data.get("type"), str) and "modelmux_oauth" not in data:
        return CLIPROXYAPI
    return None


def _claude_code_email(credentials: Path) -> str | None:
    """oauthAccount.emailAddress of the .claude.json beside a config dir
    ($CLAUDE_CONFIG_DIR/.claude.json) or beside ~/.claude (~/.claude.json)."""
    for candidate in (credentials.parent / ".claude.json", credentials.parent.parent / ".claude.json"):
        try:
            account = json.loads(candidate.read_text(encoding="utf-8")).get("oauthAccount")
        except (OSError, ValueError, AttributeError):
            continue
        if isinstance(account, dict) and (email := _text(account.get("emailAddress"))):
            return email
    return None


def _rfc3339(value: Any) -> float | None:
    """Unix seconds of an RFC 3339 time; one without an offset is taken as UTC."""
    if not isinstance(value, str) or not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)).timestamp()


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0 else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
