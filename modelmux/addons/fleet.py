"""Fleet: several gateways sharing one pool state on Redis (routes.yaml
`state: {backend: redis, url: ...}`; docs/team.md).

The Redis I/O of it, with the standard client's asyncio API; what is shared and how a
gateway folds it into its pools is pure (modelmux/credentials/fleet.py). Credentials
calls it where a request leases and records (both send paths go through there), the
Refresher where an oauth token is refreshed, and Usage's records are shared from here.
Beside it: fleet_scripts.py (the Lua steps that must not interleave), fleet_logins.py
(one refresh of a login for the fleet), fleet_usage.py (the fleet's usage records).

Nothing a request needs waits long on Redis: the one call a request may wait for (a
max_concurrent slot) has a tight timeout, and one failure takes the link down
(credentials/fleet.Link): then every call is skipped and the gateway serves from its
own state until a background try finds Redis again and resyncs. Round-robin turns are
taken ahead; the rest (cooldowns, lifts, releases, usage records) is written behind
the request, in batches.
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
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import redis.asyncio as aioredis
from mitmproxy.utils import asyncio_utils
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeout

from modelmux.addons import fleet_scripts as scripts
from modelmux.addons.credentials import Credentials
from modelmux.addons.fleet_logins import Logins
from modelmux.addons.fleet_usage import SharedUsage
from modelmux.addons.inbound import WINDOW as RATE_WINDOW
from modelmux.addons.inbound import InboundAuth
from modelmux.addons.settings import Settings
from modelmux.addons.usage import Usage
from modelmux.config.types import Config, Credential, State
from modelmux.credentials import fleet
from modelmux.credentials.cooldowns import Cooldown
from modelmux.credentials.fleet import Event, Keys, Link
from modelmux.credentials.pools import Lease, Verdict

logger = logging.getLogger(__name__)

# A request's wait for its max_concurrent slot. On loopback or a LAN Redis answers in
# well under a millisecond, so a call that takes this long means Redis is gone or stuck,
# or this gateway's event loop was too busy to read the answer in time (30 requests at
# once on a loaded 2-core machine did that). So the request waits as for a busy slot,
# and a recount, with the longer timeout, tells which.
CALL_TIMEOUT = 0.25
# Calls no request waits for (turns taken ahead, recounts, writes, resyncs).
BACKGROUND_TIMEOUT = 2.0
# Round-robin turns a gateway takes ahead for its next requests, per provider, when it
# holds fewer than TURNS_LOW: a block in one round trip, so that most requests run with
# no Redis call beside them (each costs ~140 µs of the event loop's time on the bench's VM).
TURNS_AHEAD = 8
TURNS_LOW = 2
CONNECT_TIMEOUT = 0.5
USAGE_INTERVAL = 0.5  # seconds between shares of usage records (theirs read, ours written)

Job = Callable[[Any], None]  # adds its commands to a pipeline


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
    def __init__(self, settings: Settings, credentials: Credentials, usage: Usage, inbound: InboundAuth) -> None:
        self.credentials = credentials
        self.usage = usage
        self.inbound = inbound
        self.instance = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.state: State | None = None
        self.keys = Keys("modelmux")
        self.redis: aioredis.Redis | None = None
        self.link = Link(time.time())
        self._jobs: list[tuple[Job, Callable[[], None] | None]] = []
        self._wake = asyncio.Event()
        self._slots: dict[str, tuple[str, Lease]] = {}  # slot → (its set's name, lease): renewed while held
        self._numbers = iter(range(1, 1 << 62))
        self._turns: dict[str, deque[int]] = {}  # provider → turns taken for its next requests, in order
        self._taking: set[str] = set()  # providers whose turns are being taken
        self._tasks: list[asyncio.Task] = []
        self._listener: asyncio.Task | None = None
        self.logins: Logins | None = None
        self.shared_usage: SharedUsage | None = None
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
            self.inbound.fleet = None
            self.usage.shared = False
            return
        assert config.state.url is not None
        self.keys = Keys(config.state.prefix)
        self.redis = aioredis.Redis.from_url(
            config.state.url, socket_timeout=BACKGROUND_TIMEOUT, socket_connect_timeout=CONNECT_TIMEOUT,
            retry=Retry(NoBackoff(), 0), health_check_interval=0,
        )
        self._take = self.redis.register_script(scripts.TAKE)
        self._give = self.redis.register_script(scripts.GIVE)
        self._renew = self.redis.register_script(scripts.RENEW)
        self._count = self.redis.register_script(scripts.COUNT)
        self._lift = self.redis.register_script(scripts.LIFT)
        self._rate = self.redis.register_script(scripts.RATE)
        self.logins = Logins(self.redis, self.keys, self.instance, BACKGROUND_TIMEOUT,
                             self.redis.register_script(scripts.UNLOCK))
        self.shared_usage = SharedUsage(self.redis, self.keys, self.instance, self.usage)
        self.credentials.fleet = self
        self.inbound.fleet = self
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
                    if self.shared_usage is not None:
                        await self.shared_usage.share()
        if self.redis is not None:
            with contextlib.suppress(RedisError, OSError):
                await self.redis.aclose()

    def describe(self) -> dict[str, Any]:
        """For /healthz and `modelmux status`: where, and whether it is shared now."""
        assert self.state is not None and self.state.url is not None
        return {"backend": "redis", "server": server_of(self.state.url), "prefix": self.state.prefix,
                "instance": self.instance, **self.link.describe(time.time())}

    def _down(self, error: BaseException) -> None:
        self._turns.clear()  # a Redis that comes back empty counts from 0 again
        for pool in self.credentials.pools.pools.values() if self.credentials.pools else ():
            for member in pool.members:
                member.elsewhere = 0  # on its own, this gateway counts its own requests only
        first = self.link.reason == "not connected yet"  # never connected: said once too
        if self.link.failed(_why(error), time.time()) or first:
            logger.warning("Redis at %s does not answer (%s): serving on this gateway's own state until it does",
                           self.describe()["server"], _why(error))

    async def _call[T](self, call: Awaitable[T]) -> T | None:
        """A call: None when Redis fails it (the link then goes down)."""
        try:
            async with asyncio.timeout(BACKGROUND_TIMEOUT):
                return await call
        except (RedisError, OSError, TimeoutError) as e:
            self._down(e)
            return None

    # -- what a request asks ----------------------------------------------------------------

    def turn(self, provider: str) -> int | None:
        """The fleet's next round-robin turn of `provider` (Pool.turn): one this gateway
        took from the fleet's counter ahead of the request, so that no request waits for
        Redis for it (an awaited round trip cost a pool's request 1.3 ms at the median in
        the benchmark, most of it the event loop's other work run meanwhile;
        docs/benchmarks.md). None while Redis is away, or when a burst used up those
        taken: the gateway's own turn then."""
        if not self.link.up:
            return None
        held = self._turns.setdefault(provider, deque())
        number = held.popleft() if held else None
        if len(held) < TURNS_LOW and provider not in self._taking:
            self._taking.add(provider)
            asyncio_utils.create_task(self._take_turns(provider), name="modelmux fleet turns", keep_ref=True)
        return number

    async def _take_turns(self, provider: str) -> None:
        """Numbers of the fleet's counter for this gateway's next requests: each number is
        used once, by whichever gateway took it, so the fleet goes round as one gateway."""
        assert self.redis is not None
        try:
            held = self._turns.setdefault(provider, deque())
            wanted = TURNS_AHEAD - len(held)
            if wanted > 0:
                last = await self._call(self.redis.incrby(self.keys.turn(provider), wanted))
                if last is not None:
                    held.extend(range(last - wanted, last))  # the counter's first number is turn 0
        finally:
            self._taking.discard(provider)

    async def take(self, lease: Lease) -> bool:
        """A max_concurrent slot for `lease`'s credential fleet-wide. False when the fleet
        holds them all (the member then knows how many), or the answer was late (the
        caller waits and asks again, as for a busy credential); True also while Redis is
        away, when only this gateway's own count holds."""
        if not self.link.up:
            return True
        assert self.state is not None
        slot = f"{self.instance}:{next(self._numbers)}"
        key = self.keys.slots(lease.provider, lease.credential.label)
        args = [lease.credential.max_concurrent, int(self.state.lease_seconds * 1000), slot]
        try:
            async with asyncio.timeout(CALL_TIMEOUT):
                taken, held = (int(n) for n in await self._take(keys=[key], args=args))
        except (TimeoutError, RedisTimeout):
            # Counted as full until a recount says otherwise. It may have been taken all
            # the same: given back as soon as Redis answers, or it would be held until it expired.
            lease.member.elsewhere = max(lease.member.elsewhere, int(args[0]) - lease.member.in_flight + 1)
            event = Event("release", self.instance, lease.provider, lease.credential.label).encode()
            self._enqueue(lambda pipe: scripts.queue(pipe, self._give, [key, self.keys.events()], [slot, event]))
            return False
        except (RedisError, OSError) as e:
            self._down(e)
            return True
        # This lease is among the member's in flight; its slot is among those held only if taken.
        lease.member.elsewhere = max(0, held - lease.member.in_flight + (not taken))
        if not taken:
            return False
        lease.slot = slot
        self._slots[slot] = (key, lease)
        return True

    async def admit(self, label: str, rpm: int, now: float) -> float | None:
        """Whether a request of client key `label` may go under its rpm across the fleet:
        0 when it may (it is counted), else the seconds until one may. None while Redis
        is away or late: the caller counts on its own (inbound.Rates)."""
        if not self.link.up:
            return None
        member = f"{self.instance}:{next(self._numbers)}"
        try:
            async with asyncio.timeout(CALL_TIMEOUT):
                wait = int(await self._rate(keys=[self.keys.rate(label)], args=[rpm, int(RATE_WINDOW * 1000), member]))
        except (TimeoutError, RedisTimeout):
            return None
        except (RedisError, OSError) as e:
            self._down(e)
            return None
        return wait / 1000

    def give(self, lease: Lease) -> bool:
        """`lease` ended: its slot goes back, and the fleet's waiters are woken (this
        gateway's once it is back: before, they would find it still taken). False when
        it held none, so nothing will wake this gateway's waiters."""
        key, _ = self._slots.pop(lease.slot, ("", None)) if lease.slot else ("", None)
        if not key or not self.link.up:
            return False
        event = Event("release", self.instance, lease.provider, lease.credential.label).encode()
        slot, events = lease.slot, self.keys.events()
        self._enqueue(lambda pipe: scripts.queue(pipe, self._give, [key, events], [slot, event]),
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
            started, events = lease.started, self.keys.events()

            def lift(pipe: Any) -> None:
                scripts.queue(pipe, self._lift, keys, [started])
                pipe.publish(events, event)

            self._enqueue(lift)

    def _cooldown_job(self, provider: str, credential: Credential, cooldown: Cooldown) -> Job:
        key = self.keys.cooldown(provider, credential.label, cooldown.model)
        value = json.dumps({"provider": provider, "label": credential.label, "firm": cooldown.firm,
                            **json.loads(fleet.stored_cooldown(credential, cooldown))})
        event = Event("cooldown", self.instance, provider, credential.label, fleet.identity(credential),
                      cooldown).encode()
        until_ms, events = int(cooldown.until * 1000), self.keys.events()

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
                await self.redis.publish(self.keys.events(), event)
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
                    for name, pool in (self.credentials.pools.pools.items() if self.credentials.pools else ()):
                        if pool.takes_turns():
                            self.turn(name)  # takes none (none are held yet): has some taken for the first requests
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
        await pubsub.subscribe(self.keys.events())
        self._listener = asyncio_utils.create_task(self._listen(pubsub), name="modelmux fleet listener",
                                                   keep_ref=True)
        pools, now = self.credentials.pools, time.time()
        names = [name async for name in self.redis.scan_iter(match=self.keys.name("cooldown", "*"), count=1000)]
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
        assert self.logins is not None and self.shared_usage is not None
        await self.logins.resync(pools)
        await self.shared_usage.resync()

    # -- logins --------------------------------------------------------------------------------

    async def refresh(self, credential: Credential, provider: str, exchange: Callable[[], Awaitable[bool]]) -> bool:
        """One refresh of a login at a time across the fleet (fleet_logins.py); while Redis
        is away, this gateway's own."""
        if not self.link.up or self.logins is None:
            return await exchange()
        try:
            return await self.logins.refresh(credential, provider, exchange)
        except (RedisError, OSError, TimeoutError) as e:
            self._down(e)
            return await exchange()

    async def _token_news(self, event: Event) -> None:
        found = fleet.member(self.credentials.pools, event.provider, event.label) if self.credentials.pools else None
        if found is None or found.credential.oauth is None or self.logins is None:
            return
        try:
            await self.logins.adopt(event.provider, found.credential, None)
        except (RedisError, OSError, TimeoutError) as e:
            self._down(e)

    # -- usage records ---------------------------------------------------------------------------

    async def _usage_loop(self) -> None:
        while True:
            await asyncio.sleep(USAGE_INTERVAL)
            if not self.link.up or self.shared_usage is None:
                continue
            try:
                await self.shared_usage.share()
            except (RedisError, OSError, TimeoutError) as e:
                self._down(e)
