"""Keeping oauth credentials' tokens fresh while the gateway runs: before they expire,
and once when an upstream answers 401. No mitmproxy here; the failover relay calls it.

One refresh at a time per token file (single-flight): requests that need a refresh
while one is under way wait for it and use its token, so a burst of requests never
refreshes twice (which, with refresh tokens that rotate, would log the account out).
A refresh that fails because the login is gone puts the credential in `needs-login`
until a new login or import rewrites its file; the pool carries on with the others.
Several gateways sharing one pool state (docs/team.md) also refresh one at a time
across the fleet: the `fleet` given decides who refreshes, and hands the others the
token.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Protocol

import httpx

from modelmux.config.types import Credential
from modelmux.oauth import refresh
from modelmux.oauth.kinds import KINDS
from modelmux.oauth.refresh import RefreshFailed
from modelmux.oauth.tokens import Token

logger = logging.getLogger(__name__)

TIMEOUT = httpx.Timeout(30.0, connect=10.0)


class Fleet(Protocol):
    async def refresh_once(self, credential: Credential, exchange: Callable[[], Awaitable[bool]]) -> bool:
        """Run `exchange` (this gateway's refresh), or take the token another gateway got."""
        ...


class Refresher:
    def __init__(self, client: httpx.AsyncClient, margin: float = refresh.MARGIN, fleet: Fleet | None = None) -> None:
        self.client = client
        self.margin = margin
        self.fleet = fleet
        self._locks: dict[Path, asyncio.Lock] = {}

    async def fresh(self, credential: Credential) -> str | None:
        """Make sure `credential`'s token will not expire for a while. None when it is
        ready; else why it cannot be used (it needs a new login)."""
        holder = credential.oauth
        if holder is None:
            return None
        if holder.needs_login and not holder.reload():
            return holder.needs_login
        if holder.token.expires_within(self.margin, time.time()):
            await self.refresh(credential, holder.token)
        return holder.needs_login

    async def refresh(self, credential: Credential, seen: Token) -> bool:
        """Refresh `credential`'s token, unless it changed since the caller read `seen`
        (another request refreshed it, or a login rewrote the file). True when the
        token is now different from `seen`."""
        holder = credential.oauth
        assert holder is not None
        lock = self._locks.setdefault(holder.path, asyncio.Lock())
        async with lock:
            if holder.token != seen or holder.reload():
                return holder.needs_login is None
            if self.fleet is not None:
                return await self.fleet.refresh_once(credential, lambda: self._exchange(credential))
            return await self._exchange(credential)

    async def _exchange(self, credential: Credential) -> bool:
        """The refresh itself: the token endpoint's answer, written to the token file."""
        holder = credential.oauth
        assert holder is not None
        kind = KINDS[holder.kind]
        try:
            url, headers, body = refresh.request(kind, holder.token)
            response = await self.client.post(url, headers=headers, content=body, timeout=TIMEOUT)
            token = refresh.refreshed(holder.token, response.status_code, response.content, time.time())
        except RefreshFailed as e:
            return self._failed(credential, e.message, e.login_gone)
        except httpx.HTTPError as e:
            return self._failed(credential, f"the token endpoint could not be reached ({type(e).__name__})", False)
        try:
            await asyncio.to_thread(holder.replace, token)
        except OSError as e:
            # The new token works; only the file could not be written. Keep using it,
            # and say so: the next start would read the old (maybe rotated) one.
            holder.token = token
            logger.error("refreshed the token of credential '%s', but could not write %s (%s)",
                         credential.label, holder.path, e.strerror)
        logger.info("refreshed the token of credential '%s' (%s)", credential.label, kind.name)
        return True

    def _failed(self, credential: Credential, message: str, login_gone: bool) -> bool:
        holder = credential.oauth
        assert holder is not None
        if login_gone:
            holder.needs_login = f"{message}; run `modelmux login {holder.kind} --label {credential.label}`"
            logger.warning("credential '%s' needs a new login: %s", credential.label, message)
        else:
            logger.warning("could not refresh the token of credential '%s': %s", credential.label, message)
        return False
