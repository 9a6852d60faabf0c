"""OAuth token files: modelmux's own format, read with a permission check and written
back atomically, owner-only. No network here.

A token file is one JSON object:

    {"modelmux_oauth": 1, "kind": "claude", "access_token": "...", "refresh_token": "...",
     "expires_at": 1763787000, "email": "a@example.com", "account_id": null,
     "project_id": null, "source": "imported from ~/.claude/.credentials.json"}

`kind` says which subscription the token belongs to (oauth/kinds.py); `expires_at` is
Unix seconds (null: unknown, refreshed only after a 401); `account_id` and
`project_id` are what some upstreams need besides the token (the ChatGPT account of
a Codex login, the Google Cloud project of a Gemini one). Optional `token_url` and
`base_url` point a login somewhere else than its kind's endpoints (a self-hosted
deployment, or a test's fakes).
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from modelmux.config.paths import config_dir

FORMAT = 1
# Fields that are secrets: never logged, shown or recorded.
SECRET_FIELDS = ("access_token", "refresh_token")


def default_directory(environ: Mapping[str, str], home: Path | None = None) -> Path:
    """Where `modelmux login` and `modelmux import` put token files unless told otherwise:
    beside the config directory's routes.yaml, which config.paths.find_config looks for."""
    return config_dir(environ, home) / "tokens"


class TokenFileError(Exception):
    """A token file that cannot be used; the message names the file and the fix."""


@dataclass(frozen=True)
class Token:
    kind: str
    access_token: str
    refresh_token: str | None = None
    expires_at: float | None = None  # Unix seconds
    email: str | None = None
    account_id: str | None = None
    project_id: str | None = None
    source: str | None = None
    # Where this login refreshes and what its requests go to, when not the kind's own
    # (a self-hosted endpoint; the tests' fakes).
    token_url: str | None = None
    base_url: str | None = None

    def __repr__(self) -> str:  # never the secrets
        return f"Token(kind={self.kind!r}, email={self.email!r}, expires_at={self.expires_at!r})"

    def expires_within(self, seconds: float, now: float) -> bool:
        return self.expires_at is not None and self.expires_at - now <= seconds

    def refreshed(self, access_token: str, refresh_token: str | None, expires_at: float | None,
                  **fields: str | None) -> Token:
        """This token after a refresh: a provider that does not rotate refresh tokens
        sends none back, and the old one stays."""
        known = {k: v for k, v in fields.items() if v is not None and k in ("email", "account_id", "project_id")}
        return replace(self, access_token=access_token, refresh_token=refresh_token or self.refresh_token,
                       expires_at=expires_at, **known)


def from_json(data: Any, where: str) -> Token:
    if not isinstance(data, dict) or data.get("modelmux_oauth") != FORMAT:
        raise TokenFileError(f"{where} is not a modelmux token file (no \"modelmux_oauth\": {FORMAT}); "
                             "create it with `modelmux login` or `modelmux import`")
    kind, access = data.get("kind"), data.get("access_token")
    if not isinstance(kind, str) or not isinstance(access, str) or not access:
        raise TokenFileError(f"{where} has no kind or access_token; log in again with `modelmux login`")
    expires = data.get("expires_at")
    return Token(
        kind=kind,
        access_token=access,
        refresh_token=_text(data.get("refresh_token")),
        expires_at=float(expires) if isinstance(expires, (int, float)) else None,
        email=_text(data.get("email")),
        account_id=_text(data.get("account_id")),
        project_id=_text(data.get("project_id")),
        source=_text(data.get("source")),
        token_url=_text(data.get("token_url")),
        base_url=_text(data.get("base_url")),
    )


def to_json(token: Token) -> dict[str, Any]:
    return {"modelmux_oauth": FORMAT, **asdict(token)}


def check_private(path: Path) -> None:
    """Refuse a token file others may read: its refresh token is a login."""
    mode = path.stat().st_mode
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise TokenFileError(
            f"{path} may be read by other users (mode {stat.filemode(mode)}); it holds a login, so modelmux "
            f"will not use it: run `chmod 600 {path}`"
        )


def read(path: Path) -> Token:
    """The token in `path`. Raises TokenFileError naming the file and the fix."""
    try:
        check_private(path)
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise TokenFileError(f"{path} does not exist; create it with `modelmux login` or `modelmux import`") from e
    except OSError as e:
        raise TokenFileError(f"cannot read {path} ({e.strerror})") from e
    try:
        data = json.loads(text)
    except ValueError as e:
        raise TokenFileError(f"{path} is not JSON ({e}); log in again with `modelmux login`") from e
    return from_json(data, str(path))


def write(path: Path, token: Token) -> None:
    """Replace `path` with `token` atomically (a reader sees the old file or the new one,
    never half of one), created owner-only."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            os.chmod(temporary, 0o600)  # mkstemp makes 0600 already; said for the reader
            json.dump(to_json(token), file, indent=2)
            file.write("\n")
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None
