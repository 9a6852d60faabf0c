"""Fleet: several gateways sharing one pool state on Redis (routes.yaml
`state: {backend: redis, url: ...}`; docs/team.md).

The Redis I/O of it, with the standard client's asyncio API; what is shared and how a
gateway folds it into its pools is pure (modelmux/credentials/fleet.py). Credentials
calls it where a request leases and records (both send paths go through there), the
Refresher where an oauth token is refreshed, and Usage's records are shared from here.

Nothing a request needs waits long on Redis: the two calls a request may make (its
round-robin turn, a max_concurrent slot) have a tight timeout, and one failure takes
the link down (credentials/fleet.Link): then every call is skipped and the gateway
serves from its own state until a background try finds Redis again and resyncs. The
rest (cooldowns, lifts, releases, usage records) is written behind the request, in
batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import socket
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from mitmproxy.utils import asyncio_utils
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from modelmux.addons.credentials import Credentials
from modelmux.addons.settings import Settings
from modelmux.addons.usage import Usage
from modelmux.config.types import Config, Credential, State
from modelmux.credentials import fleet
from modelmux.credentials.cooldowns import Cooldown
from modelmux.credentials.fleet import Event, Keys, Link
from modelmux.credentials.pools import Lease, Verdict
from modelmux.oauth import tokens
from modelmux.oauth.tokens import Token
from modelmux.usage import Record

logger = logging.getLogger(__name__)

# A request's own calls (its turn, a slot): on loopback or a LAN Redis answers in well
# under a millisecond, so a call that takes this long means Redis is gone or stuck.
CALL_TIMEOUT = 0.25
CONNECT_TIMEOUT = 0.5
USAGE_INTERVAL = 0.5  # seconds between shares of usage records (theirs read, ours written)
USAGE_KEPT = 500_000  # the fleet's newest usage records Redis keeps (about 150 MB)
USAGE_BATCH = 5_000  # records read or written per round trip
REFRESH_HOLD = 60.0  # seconds a gateway may hold the fleet's refresh of one login

# A max_concurrent slot: taken only while fewer than the limit are held, by Redis's clock
# (gateways' clocks may differ), each slot expiring unless its gateway renews it.
TAKE = """
local now = redis.call('TIME')
local ms = now[1] * 1000 + math.floor(now[2] / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ms)
local held = redis.call('ZCARD', KEYS[1])
if held >= tonumber(ARGV[1]) then return {0, held} end
redis.call('ZADD', KEYS[1], ms + tonumber(ARGV[2]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {1, held + 1}
"""
# Given back: the others learn how many are held now, and wake their waiters.
GIVE = """
redis.call('ZREM', KEYS[1], ARGV[1])
local held = redis.call('ZCARD', KEYS[1])
local event = cjson.decode(ARGV[2])
event['count'] = held
redis.call('PUBLISH', KEYS[2], cjson.encode(event))
return held
"""
# Renewed (or, after Redis came back empty, put back): KEYS are the slots' sets, ARGV
# the lease time and then one member per key.
RENEW = """
local now = redis.call('TIME')
local ms = now[1] * 1000 + math.floor(now[2] / 1000)
for i, key in ipairs(KEYS) do
  redis.call('ZADD', key, ms + tonumber(ARGV[1]), ARGV[i + 1])
  redis.call('PEXPIRE', key, ARGV[1])
end
return #KEYS
"""
COUNT = """
local now = redis.call('TIME')
local ms = now[1] * 1000 + math.floor(now[2] / 1000)
local counts = {}
for i, key in ipairs(KEYS) do
  redis.call('ZREMRANGEBYSCORE', key, '-inf', ms)
  counts[i] = redis.call('ZCARD', key)
end
return counts
"""
# A success lifts what it proves over, as Member.lift does: a block set before the
# request was sent, an ordering whenever it was set.
LIFT = """
local lifted = 0
for _, key in ipairs(KEYS) do
  local value = redis.call('GET', key)
  if value then
    local stored = cjson.decode(value)
    if stored['cooldown']['since'] < tonumber(ARGV[1]) or not stored['firm'] then
      redis.call('DEL', key)
      lifted = lifted + 1
    end
  end
end
return lifted
"""
# The refresh of a login is given back only by the gateway that holds it.
UNLOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

Job = Callable[[Any], None]  # adds its commands to a pipeline


def queue_script(pipe: Any, script: Any, keys: list[str], args: list[Any]) -> None:
    """Queue a Lua script on a pipeline. The asyncio Script's call is a coroutine even
    there; the pipeline's own EVALSHA queues at once, and execute() loads the script
    into a Redis that lost it (restarted)."""
    pipe.scripts.add(script)
    pipe.evalsha(script.sha, len(keys), *keys, *args)


def server_of(url: str) -> str:
    """Where the Redis server is, for logs and status: host, port and database, never
    the user or password a URL may carry."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix:{parts.path}"
    return f"{parts.hostname}:{parts.port or 6379}{parts.path or '/0'}"


def _why(error: BaseException) -> str:
    """An error in words that hold no URL (redis-py names the address only)."""
    text = str(error).strip()
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


class Fleet:
    def __init__(self, settings: Settings, credentials: Credentials, usage: Usage) -> None:
        self.credentials = credentials
        self.usage = usage
        self.instance = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.state: State | None = None
        self.keys = Keys("modelmux")
        self.redis: aioredis.Redis | None = None
        self.link = Link(time.time())
        self._jobs: list[tuple[Job, Callable[[], None] | None]] = []
        self._wake = asyncio.Event()
        self._slots: dict[str, tuple[str, Lease]] = {}  # slot → (its set's name, lease): renewed while held
        self._numbers = iter(range(1, 1 << 62))
        self._tasks: list[asyncio.Task] = []
        self._listener: asyncio.Task | None = None
        self._usage_from = "0-0"  # the stream's last record read
        self._running = False
        settings.subscribe(self._configure)

    # -- lifecycle ------------------------------------------------------------------------

    def _configure(self, config: Config) -> None:
        if config.state == self.state:
            return
        if self.state is not None and self._running:
            logger.warning("routes.yaml's state: changed; the new one takes effect when the gateway restarts")
            return
        self.state = config.state
        if not config.state.shared:
            self.credentials.fleet = None
            self.usage.shared = False
            return
        assert config.state.url is not None
        self.keys = Keys(config.state.prefix)
        self.redis = aioredis.Redis.from_url(
            config.state.url, socket_timeout=CALL_TIMEOUT, socket_connect_timeout=CONNECT_TIMEOUT,
            retry=Retry(NoBackoff(), 0), health_check_interval=0,
        )
        self._take = self.redis.register_script(TAKE)
        self._give = self.redis.register_script(GIVE)
        self._renew = self.redis.register_script(RENEW)
        self._count = self.redis.register_script(COUNT)
        self._lift = self.redis.register_script(LIFT)
        self._unlock = self.redis.register_script(UNLOCK)
        self.credentials.fleet = self
        self.usage.shared = True
        logger.info("credential state shared through Redis at %s (keys %s:*) as %s",
                    server_of(config.state.url), config.state.prefix, self.instance)

    def running(self) -> None:
        self._running = True
        if self.redis is None:
            return
        for name, loop in (("supervisor", self._supervise), ("writer", self._write_loop), ("usage", self._usage_loop)):
            self._tasks.append(asyncio_utils.create_task(loop(), name=f"modelmux fleet {name}", keep_ref=True))

    async def done(self) -> None:
        for task in [*self._tasks, *([self._listener] if self._listener else [])]:
            task.cancel()
        if self.redis is not None and self.link.up:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(1):
                    await self._flush()
                    await self._share_usage()
        if self.redis is not None:
            with contextlib.suppress(RedisError, OSError):
                await self.redis.aclose()

    def describe(self) -> dict[str, Any]:
        """For /healthz and `modelmux status`: where, and whether it is shared now."""
        assert self.state is not None and self.state.url is not None
        return {"backend": "redis", "server": server_of(self.state.url), "prefix": self.state.prefix,
                "instance": self.instance, **self.link.describe(time.time())}

    def _down(self, error: BaseException) -> None:
        if self.link.failed(_why(error), time.time()):
            logger.warning("Redis at %s stopped answering (%s): serving on this gateway's own state until it is "
                           "back", self.describe()["server"], _why(error))

    async def _call[T](self, call: Awaitable[T]) -> T | None:
        """A request's call: None when Redis fails it (the link goes down) or is down."""
        try:
            async with asyncio.timeout(CALL_TIMEOUT):
                return await call
        except (RedisError, OSError, TimeoutError) as e:
            self._down(e)
            return None

    # -- what a request asks ----------------------------------------------------------------

    async def turn(self, provider: str) -> int | None:
        """The fleet's next round-robin turn of `provider` (Pool.turn), None while Redis is away."""
        if not self.link.up:
            return None
        assert self.redis is not None
        taken = await self._call(self.redis.incr(self.keys.turn(provider)))
        return None if taken is None else taken - 1  # the fleet's first turn is the first credential's

    async def take(self, lease: Lease) -> bool:
        """A max_concurrent slot for `lease`'s credential fleet-wide. False when the fleet
        holds them all (the member then knows how many); True also while Redis is away,
        when only this gateway's own count holds."""
        if not self.link.up:
            return True
        assert self.state is not None
        slot = f"{self.instance}:{next(self._numbers)}"
        key = self.keys.slots(lease.provider, lease.credential.label)
        limit = lease.credential.max_concurrent
        answer = await self._call(self._take(keys=[key], args=[limit, int(self.state.lease_seconds * 1000), slot]))
        if answer is None:
            return True
        taken, held = int(answer[0]), int(answer[1])
        # This lease is among the member's in flight; its slot is among those held only if taken.
        lease.member.elsewhere = max(0, held - lease.member.in_flight + (not taken))
        if not taken:
            return False
        lease.slot = slot
        self._slots[slot] = (key, lease)
        return True

    def give(self, lease: Lease) -> bool:
        """`lease` ended: its slot goes back, and the fleet's waiters are woken (this
        gateway's once it is back: before, they would find it still taken). False when
        it held none, so nothing will wake this gateway's waiters."""
        key, _ = self._slots.pop(lease.slot, ("", None)) if lease.slot else ("", None)
        if not key or not self.link.up:
            return False
        event = Event("release", self.instance, lease.provider, lease.credential.label).encode()
        slot, events = lease.slot, self.keys.events
        self._enqueue(lambda pipe: queue_script(pipe, self._give, [key, events], [slot, event]),
                      lambda: self.credentials.wake(lease.provider))
        return True

    async def recount(self, provider: str) -> None:
        """While a request waits for a busy credential: how many slots the fleet holds
        now (one that finished elsewhere, or a crashed gateway's that expired)."""
        pool = self.credentials.pools.pools.get(provider) if self.credentials.pools else None
        limited = [m for m in pool.members if m.credential.max_concurrent is not None] if pool else []
        if not limited or not self.link.up:
            return
        counts = await self._call(self._count(keys=[self.keys.slots(provider, m.label) for m in limited]))
        for member, held in zip(limited, counts or [], strict=False):
            member.elsewhere = max(0, int(held) - member.in_flight)

    # -- what a request tells ----------------------------------------------------------------

    def recorded(self, lease: Lease, verdict: Verdict, before: dict[str | None, Cooldown]) -> None:
        """After Pools.record: a new cooldown is the fleet's, and so is a success's lift."""
        cooldown = verdict.cooldown
        provider, credential = lease.provider, lease.member.credential
        if cooldown is not None and before.get(cooldown.model) is not cooldown:
            self._enqueue(self._cooldown_job(provider, credential, cooldown))
        elif verdict.kind == "success" and before and lease.member.cooldowns != before:
            keys = [self.keys.cooldown(provider, credential.label, m) for m in {None, lease.model}]
            event = Event("lift", self.instance, provider, credential.label, model=lease.model,
                          started=lease.started).encode()
            started, events = lease.started, self.keys.events

            def lift(pipe: Any) -> None:
                queue_script(pipe, self._lift, keys, [started])
                pipe.publish(events, event)

            self._enqueue(lift)

    def _cooldown_job(self, provider: str, credential: Credential, cooldown: Cooldown) -> Job:
        key = self.keys.cooldown(provider, credential.label, cooldown.model)
        value = json.dumps({"provider": provider, "label": credential.label, "firm": cooldown.firm,
                            **json.loads(fleet.stored_cooldown(credential, cooldown))})
        event = Event("cooldown", self.instance, provider, credential.label, fleet.identity(credential),
                      cooldown).encode()
        until_ms, events = int(cooldown.until * 1000), self.keys.events

        def job(pipe: Any) -> None:
            pipe.set(key, value, pxat=until_ms)
            pipe.publish(events, event)

        return job

    def reset(self, provider: str, label: str) -> None:
        """`modelmux reset`: the fleet's cooldowns go too, or a resync would bring them back."""
        providers = [provider] if provider else list(self.credentials.pools.pools if self.credentials.pools else [])
        for name in providers:
            pattern = self.keys.cooldown(name, label or "*", None).removesuffix(":*") + ":*"
            event = Event("reset", self.instance, name, label or None).encode()
            asyncio_utils.create_task(self._reset(pattern, event), name="modelmux fleet reset", keep_ref=True)

    async def _reset(self, pattern: str, event: str) -> None:
        if not self.link.up:
            return
        assert self.redis is not None
        try:
            async with asyncio.timeout(2):
                names = [name async for name in self.redis.scan_iter(match=pattern, count=1000)]
                if names:
                    await self.redis.delete(*names)
                await self.redis.publish(self.keys.events, event)
        except (RedisError, OSError, TimeoutError) as e:
            self._down(e)

    def _enqueue(self, job: Job, then: Callable[[], None] | None = None) -> None:
        """Write `job` behind the request, with what else is queued meanwhile (one round
        trip); `then` runs after it, written or not."""
        if not self.link.up:
            return  # the resync tells the fleet what this gateway's state is when Redis is back
        self._jobs.append((job, then))
        self._wake.set()

    async def _write_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self._flush()
            except (RedisError, OSError, TimeoutError) as e:
                self._down(e)

    async def _flush(self) -> None:
        queued, self._jobs = self._jobs, []
        try:
            if queued and self.link.up:
                assert self.redis is not None
                async with asyncio.timeout(2), self.redis.pipeline(transaction=False) as pipe:
                    for job, _ in queued:
                        job(pipe)
                    await pipe.execute(raise_on_error=False)  # one refused command (an expiry just past) is no outage
        finally:
            for _, then in queued:
                if then is not None:
                    then()

    # -- what the others tell ----------------------------------------------------------------

    async def _listen(self, pubsub: Any) -> None:
        try:
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                if message is not None:
                    self._heard(message["data"])
        except (RedisError, OSError) as e:
            self._down(e)
        finally:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()

    def _heard(self, data: bytes) -> None:
        try:
            event = Event.decode(data)
        except ValueError as e:
            logger.debug("fleet: ignored a message (%s)", e)
            return
        if event.sender == self.instance or self.credentials.pools is None:
            return
        if event.type == "token":
            asyncio_utils.create_task(self._token_news(event), name="modelmux fleet token", keep_ref=True)
            return
        if fleet.apply(self.credentials.pools, event, time.time()):
            self.credentials.changed()
        if event.type == "release":
            self.credentials.wake(event.provider)

    # -- Redis away, and back ------------------------------------------------------------------

    async def _supervise(self) -> None:
        renewed = time.monotonic()
        while True:
            now = time.time()
            if self.link.due(now):
                try:
                    async with asyncio.timeout(30):
                        await self._resync()
                except (RedisError, OSError, TimeoutError) as e:
                    self._down(e)
                else:
                    was = self.link.reason
                    self.link.resynced(time.time())
                    if was != "not connected yet":
                        logger.info("Redis is back: this gateway's state is the fleet's again")
            assert self.state is not None
            if self.link.up and time.monotonic() - renewed >= self.state.lease_seconds / 3:
                renewed = time.monotonic()
                await self._renew_slots()
            await asyncio.sleep(0.1)

    async def _renew_slots(self) -> None:
        held = list(self._slots.values())
        if not held:
            return
        assert self.state is not None
        keys = [key for key, _ in held]
        slots = [lease.slot for _, lease in held]
        await self._call(self._renew(keys=keys, args=[int(self.state.lease_seconds * 1000), *slots]))

    async def _resync(self) -> None:
        """Listen first (nothing said meanwhile is missed), then tell the fleet what this
        gateway learnt while away and learn what it missed."""
        assert self.redis is not None and self.state is not None and self.credentials.pools is not None
        await self.redis.ping()
        if self._listener is not None:
            self._listener.cancel()
        pubsub = self.redis.pubsub()
        await pubsub.subscribe(self.keys.events)
        self._listener = asyncio_utils.create_task(self._listen(pubsub), name="modelmux fleet listener",
                                                   keep_ref=True)
        pools, now = self.credentials.pools, time.time()
        names = [name async for name in self.redis.scan_iter(match=self.keys.cooldowns, count=1000)]
        changed = False
        for value in (await self.redis.mget(names) if names else []):
            if value is None:
                continue
            try:
                item = json.loads(value)
                holder, cooldown = fleet.read_stored(value)
                changed |= fleet.adopt(pools, item["provider"], item["label"], holder, cooldown, now)
            except (ValueError, KeyError, TypeError):
                continue
        if changed:
            self.credentials.changed()
        async with self.redis.pipeline(transaction=False) as pipe:
            for provider, member, cooldown in fleet.active_cooldowns(pools, now):
                self._cooldown_job(provider, member.credential, cooldown)(pipe)
            await pipe.execute(raise_on_error=False)
        if self._slots:
            await self._renew_slots()
        await self._resync_tokens()
        await self._resync_usage()

    # -- oauth logins ---------------------------------------------------------------------------

    async def refresh(self, credential: Credential, provider: str, exchange: Callable[[], Awaitable[bool]]) -> bool:
        """One refresh of a login at a time across the fleet (the Refresher's, under its
        own lock per file): the fleet's token when another gateway refreshed it since
        ours, else this gateway refreshes while it holds the fleet's lock, and every
        other gateway waits for that token. Refresh tokens rotate: a gateway that
        refreshed with the one another had already used would log the account out."""
        holder = credential.oauth
        assert holder is not None and self.redis is not None
        if not self.link.up:
            return await exchange()
        seen = holder.token
        lock, me = self.keys.refreshing(provider, credential.label), self.instance
        deadline = time.monotonic() + REFRESH_HOLD
        try:
            while time.monotonic() < deadline:
                if holder.token != seen or await self._adopt_token(provider, credential, seen):
                    return True  # another gateway's token, taken here or as it announced it
                async with asyncio.timeout(CALL_TIMEOUT):
                    mine = await self.redis.set(lock, me, nx=True, px=int(REFRESH_HOLD * 1000))
                if mine:
                    break
                await asyncio.sleep(0.1)  # another gateway refreshes it: its token comes
            else:
                return False
        except (RedisError, OSError, TimeoutError) as e:
            self._down(e)
            return await exchange()
        try:
            if holder.token != seen or await self._adopt_token(provider, credential, seen):
                return True  # refreshed just before the lock was ours
            done = await exchange()
            if done:
                await self._share_token(provider, credential)
            return done
        finally:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(CALL_TIMEOUT):
                    await self._unlock(keys=[lock], args=[me])

    async def _fleet_token(self, provider: str, label: str) -> Token | None:
        assert self.redis is not None
        async with asyncio.timeout(CALL_TIMEOUT):
            data = await self.redis.get(self.keys.token(provider, label))
        if data is None:
            return None
        try:
            return tokens.from_json(json.loads(data), f"the fleet's token of {provider}/{label}")
        except (ValueError, tokens.TokenFileError):
            return None

    async def _adopt_token(self, provider: str, credential: Credential, seen: Token | None) -> bool:
        """Take the fleet's token of `credential` when it is newer than ours (`seen`: the
        one ours must differ from). True when taken."""
        holder = credential.oauth
        assert holder is not None
        token = await self._fleet_token(provider, credential.label)
        if token is None or token == holder.token or token == seen or not _newer(token, holder.token):
            return False
        await asyncio.to_thread(holder.replace, token)
        logger.info("took the fleet's newer token of credential '%s'", credential.label)
        return True

    async def _share_token(self, provider: str, credential: Credential) -> None:
        holder = credential.oauth
        assert holder is not None and self.redis is not None
        data = json.dumps(tokens.to_json(holder.token))
        event = Event("token", self.instance, provider, credential.label).encode()
        async with asyncio.timeout(CALL_TIMEOUT), self.redis.pipeline(transaction=False) as pipe:
            pipe.set(self.keys.token(provider, credential.label), data)
            pipe.publish(self.keys.events, event)
            await pipe.execute()

    async def _token_news(self, event: Event) -> None:
        found = fleet.member(self.credentials.pools, event.provider, event.label) if self.credentials.pools else None
        if found is None or found.credential.oauth is None:
            return
        try:
            await self._adopt_token(event.provider, found.credential, None)
        except (RedisError, OSError, TimeoutError) as e:
            self._down(e)

    async def _resync_tokens(self) -> None:
        """Each login: the newer of the fleet's token and ours is everyone's."""
        assert self.credentials.pools is not None
        for name, pool in self.credentials.pools.pools.items():
            for member in pool.members:
                holder = member.credential.oauth
                if holder is None:
                    continue
                holder.reload()
                theirs = await self._fleet_token(name, member.label)
                if theirs is not None and _newer(theirs, holder.token):
                    await self._adopt_token(name, member.credential, None)
                elif theirs != holder.token:
                    await self._share_token(name, member.credential)

    # -- usage records ------------------------------------------------------------------------------

    async def _usage_loop(self) -> None:
        while True:
            await asyncio.sleep(USAGE_INTERVAL)
            if not self.link.up:
                continue
            try:
                await self._share_usage()
            except (RedisError, OSError, TimeoutError) as e:
                self._down(e)

    async def _share_usage(self) -> None:
        """Ours written, theirs read and counted."""
        assert self.redis is not None
        while self.usage.unshared:
            batch = self.usage.unshared[:USAGE_BATCH]
            async with asyncio.timeout(5), self.redis.pipeline(transaction=False) as pipe:
                for record in batch:
                    pipe.xadd(self.keys.usage, {"i": self.instance, "r": record.line()}, maxlen=USAGE_KEPT,
                              approximate=True)
                await pipe.execute()
            del self.usage.unshared[: len(batch)]
        while True:
            async with asyncio.timeout(5):
                answer = await self.redis.xread({self.keys.usage: self._usage_from}, count=USAGE_BATCH)
            entries = answer[0][1] if answer else []
            if not entries:
                return
            self._usage_from = entries[-1][0]
            self.usage.adopt(self._theirs(entries))

    def _theirs(self, entries: list[tuple[bytes, dict[bytes, bytes]]]) -> list[Record]:
        records = []
        for _, fields in entries:
            if fields.get(b"i", b"").decode() == self.instance:
                continue
            with contextlib.suppress(ValueError, UnicodeDecodeError):
                records.append(Record.parse(fields[b"r"].decode()))
        return records

    async def _resync_usage(self) -> None:
        """The fleet's records are the tally: read them whole (in batches, yielding to the
        flows between them), with ours that never reached Redis."""
        assert self.redis is not None
        records: list[Record] = []
        start = "-"
        last = "0-0"
        while True:
            entries = await self.redis.xrange(self.keys.usage, min=start, count=USAGE_BATCH)
            for entry_id, fields in entries:
                with contextlib.suppress(ValueError, UnicodeDecodeError, KeyError):
                    records.append(Record.parse(fields[b"r"].decode()))
                last = entry_id
            if len(entries) < USAGE_BATCH:
                break
            start = "(" + (last.decode() if isinstance(last, bytes) else last)
            await asyncio.sleep(0)
        self._usage_from = last.decode() if isinstance(last, bytes) else last
        self.usage.retally(records)
        await self._share_usage()


def _newer(token: Token, than: Token) -> bool:
    """Whether `token` came after `than`: it lives longer (a refresh's answer always
    does; an unknown expiry counts as none)."""
    return (token.expires_at or 0) > (than.expires_at or 0)
