"""The live token of one oauth credential: read from its file, replaced by refreshes,
shared by every copy of the Credential that names it. No network here."""

from __future__ import annotations

import time
from pathlib import Path

from modelmux.oauth import tokens
from modelmux.oauth.tokens import Token


class TokenHolder:
    def __init__(self, path: Path, token: Token) -> None:
        self.path = path
        self.token = token
        self.needs_login: str | None = None  # why a refresh failed: the credential waits for `modelmux login`
        self.refreshed_at: float | None = None
        self._retired: list[str] = []  # earlier access tokens: still scrubbed wherever they appear
        self._stamp = self._stat()  # the file as last read or written here

    def __repr__(self) -> str:
        return f"TokenHolder({str(self.path)!r}, {self.token!r})"

    @property
    def kind(self) -> str:
        return self.token.kind

    def secrets(self) -> tuple[str, ...]:
        """Every secret this credential has had in this process, newest first."""
        current = (self.token.access_token, *([self.token.refresh_token] if self.token.refresh_token else []))
        return (*current, *self._retired)

    def replace(self, token: Token) -> None:
        """A refresh's new token, written back to the file (atomically, owner-only)."""
        tokens.write(self.path, token)
        self._stamp = self._stat()
        self._take(token)
        self.refreshed_at = time.time()

    def reload(self) -> bool:
        """Pick up a token another process (a login, an import) wrote to the file.
        True when it changed. Cheap when the file did not change (one stat)."""
        stamp = self._stat()
        if stamp == self._stamp:
            return False
        self._stamp = stamp
        try:
            token = tokens.read(self.path)
        except tokens.TokenFileError:
            return False
        if token == self.token:
            return False
        self._take(token)
        return True

    def _take(self, token: Token) -> None:
        if token.access_token != self.token.access_token:
            self._retired = [self.token.access_token, *self._retired][:4]
        self.token = token
        self.needs_login = None

    def _stat(self) -> tuple[int, int] | None:
        try:
            stat = self.path.stat()
        except OSError:
            return None
        return stat.st_mtime_ns, stat.st_size


_HOLDERS: dict[Path, TokenHolder] = {}


def holder_for(path: Path) -> TokenHolder:
    """The one holder of the token file at `path` in this process: a config reload must
    not go back to a token a refresh has since replaced (refresh tokens rotate).
    Raises TokenFileError naming the file and the fix."""
    path = path.expanduser().resolve()
    token = tokens.read(path)
    holder = _HOLDERS.get(path)
    if holder is None:
        holder = _HOLDERS[path] = TokenHolder(path, token)
    else:
        holder.reload()
    return holder
