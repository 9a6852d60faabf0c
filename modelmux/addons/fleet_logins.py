"""Subscription logins shared by the fleet's gateways on Redis (modelmux/addons/fleet.py;
docs/team.md): one gateway at a time refreshes a login, stores the new tokens in Redis
and announces them; the others take them, and write them to their own token files.
Refresh tokens rotate: a gateway that refreshed with one another had already used would
log the account out. The tokens in Redis are secrets, as token files are: never logged."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from modelmux.config.types import Credential
from modelmux.credentials.fleet import Event, Keys
from modelmux.credentials.pools import Pools
from modelmux.oauth import tokens
from modelmux.oauth.tokens import Token

logger = logging.getLogger(__name__)

HOLD = 60.0  # seconds a gateway may hold the fleet's refresh of one login
POLL = 0.1  # seconds between looks for the token of the gateway that refreshes


class Logins:
    def __init__(self, redis: aioredis.Redis, keys: Keys, instance: str, timeout: float, unlock: Callable) -> None:
        self.redis = redis
        self.keys = keys
        self.instance = instance
        self.timeout = timeout  # of one call
        self.unlock = unlock  # fleet_scripts.UNLOCK, registered

    async def refresh(self, credential: Credential, provider: str, exchange: Callable[[], Awaitable[bool]]) -> bool:
        """The Refresher's refresh of `credential` (under its own lock per file), once for
        the fleet: the fleet's token when another gateway refreshed it since ours, else
        `exchange` while this gateway holds the fleet's lock. Raises what Redis raises
        before anything was refreshed (the caller then refreshes alone)."""
        holder = credential.oauth
        assert holder is not None
        seen = holder.token
        lock = self.keys.refreshing(provider, credential.label)
        deadline = time.monotonic() + HOLD
        while True:
            if holder.token != seen or await self.adopt(provider, credential, seen):
                return True  # another gateway's token, taken here or as it announced it
            async with asyncio.timeout(self.timeout):
                if await self.redis.set(lock, self.instance, nx=True, px=int(HOLD * 1000)):
                    break
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(POLL)  # another gateway refreshes it: its token comes
        try:
            if holder.token != seen or await self.adopt(provider, credential, seen):
                return True  # refreshed just before the lock was ours
            done = await exchange()
            if done:
                with contextlib.suppress(RedisError, OSError, TimeoutError):  # the resync shares it later
                    await self.share(provider, credential)
            return done
        finally:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(self.timeout):
                    await self.unlock(keys=[lock], args=[self.instance])

    async def fleets(self, provider: str, label: str) -> Token | None:
        """The fleet's token of a login, if any (one that cannot be read is none)."""
        async with asyncio.timeout(self.timeout):
            data = await self.redis.get(self.keys.token(provider, label))
        if data is None:
            return None
        try:
            return tokens.from_json(json.loads(data), f"the fleet's token of {provider}/{label}")
        except (ValueError, tokens.TokenFileError):
            return None

    async def adopt(self, provider: str, credential: Credential, seen: Token | None) -> bool:
        """Take the fleet's token of `credential` when it is newer than ours, and is not
        `seen` (the one the caller already has). True when taken."""
        holder = credential.oauth
        assert holder is not None
        token = await self.fleets(provider, credential.label)
        if token is None or token == holder.token or token == seen or not newer(token, holder.token):
            return False
        await asyncio.to_thread(holder.replace, token)
        logger.info("took the fleet's newer token of credential '%s'", credential.label)
        return True

    async def share(self, provider: str, credential: Credential) -> None:
        holder = credential.oauth
        assert holder is not None
        data = json.dumps(tokens.to_json(holder.token))
        event = Event("token", self.instance, provider, credential.label).encode()
        async with asyncio.timeout(self.timeout), self.redis.pipeline(transaction=False) as pipe:
            pipe.set(self.keys.token(provider, credential.label), data)
            pipe.publish(self.keys.events(), event)
            await pipe.execute()

    async def resync(self, pools: Pools) -> None:
        """Each login: the newer of the fleet's token and ours is everyone's."""
        for name, pool in pools.pools.items():
            for member in pool.members:
                holder = member.credential.oauth
                if holder is None:
                    continue
                holder.reload()  # a login or import may have rewritten the file meanwhile
                theirs = await self.fleets(name, member.label)
                if theirs is not None and newer(theirs, holder.token):
                    await self.adopt(name, member.credential, None)
                elif theirs != holder.token:
                    await self.share(name, member.credential)


def newer(token: Token, than: Token) -> bool:
    """Whether `token` came after `than`: it lives longer (a refresh's answer always
    does; an unknown expiry counts as none)."""
    return (token.expires_at or 0) > (than.expires_at or 0)
