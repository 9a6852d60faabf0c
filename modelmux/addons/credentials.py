"""Credentials: every provider's pool of credentials, in the running gateway.

Hands out leases (waiting a bounded time when every credential is at its
max_concurrent), records what the upstream answered, keeps the state file in the
state directory (what a crash can lose of it: docs/credentials.md), and serves the
pools' state: `GET /modelmux/credentials`, `POST /modelmux/credentials/reset` (both
answered by LocalAPI) and the `modelmux.credentials.reset` command.

Both send paths lease and record through it: Direct for a flow mitmproxy sends
itself, Failover for each attempt of the relay's. With `state: {backend: redis}` it
tells the fleet's shared state (the Fleet addon) what it leases and records, there too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Mapping
from pathlib import Path

import httpx
from mitmproxy import command
from mitmproxy import http
from mitmproxy.utils import asyncio_utils

from modelmux import attempt
from modelmux.attempt.outcomes import Failure
from modelmux.credentials import quota
from modelmux.credentials import state_file as pool_state
from modelmux.addons.settings import Settings
from modelmux.config.types import Config, Credential, Provider
from modelmux.credentials.cooldowns import Outcome
from modelmux.config.file_problems import FileProblem, reason
from modelmux.config.paths import adopt_beside
from modelmux.credentials.fleet import Shared
from modelmux.credentials.pools import Lease, Pools, Usage, Verdict
from modelmux.credentials.refusals import AllBusy, Refusal

logger = logging.getLogger(__name__)

# Seconds between writes of changed counters: what a kill -9 can lose of them. At one
# save a second of a busy gateway, a save is ~0.1 ms on the event loop (the dump of 5
# credentials; 0.3 ms of 50) and ~0.5 ms of fsync in a thread: docs/credentials.md.
SAVE_INTERVAL = 1.0
# While a request waits for a busy credential in a fleet: how often it looks at the
# fleet's slots again, should no release wake it.
FLEET_POLL = 0.25


class Credentials:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.pools: Pools | None = None
        self.state_path: Path | None = None  # the state file, once routes.yaml is loaded
        self._released: dict[str, asyncio.Event] = defaultdict(asyncio.Event)  # provider → wakes waiters
        self._dirty = False
        self._saver: asyncio.Task | None = None
        self._urgent = asyncio.Event()
        # The saver's thread and a save on the event loop (at exit, after a reset) may
        # overlap: a write never replaces a newer dump's (`_write`).
        self._write_lock = threading.Lock()
        self._dumped = 0  # dumps so far; each one's number orders the writes
        self._written = 0  # the number of the dump on disk
        self._load_problem: FileProblem | None = None  # what the state file held that could not be used
        self._write_problem: FileProblem | None = None  # the last write's failure, until one succeeds
        self.fleet: Shared | None = None  # the shared state, with routes.yaml's state: {backend: redis}
        self._refused: Lease | None = None  # a lease the fleet had no slot for, being given back
        settings.subscribe(self._configure)

    # -- lifecycle and state file -----------------------------------------------------

    def _configure(self, config: Config) -> None:
        if self.pools is None:
            self.pools = Pools(config, on_release=self._on_release)
            self.state_path = pool_state.state_path(config.path, os.environ)
            adopt_beside(config.path, pool_state.SUFFIX, self.state_path)
            loaded = pool_state.read(self.state_path)
            self.pools.restore(loaded.entries, loaded.logins)
            if loaded.problem:
                logger.warning("credential state: %s", loaded.problem.text())
            self._load_problem = loaded.problem
        else:
            self.pools.reload(config)

    def running(self) -> None:
        self._saver = asyncio_utils.create_task(self._save_loop(), name="modelmux credential state", keep_ref=True)

    def done(self) -> None:
        if self._saver:
            self._saver.cancel()
        self.save()

    async def _save_loop(self) -> None:
        """Writes the state file when something changed, in a thread: an fsync must not
        stall every flow. A new cooldown wakes it at once."""
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._urgent.wait(), SAVE_INTERVAL)
            self._urgent.clear()
            if self._dirty and self.pools is not None and self.state_path is not None:
                self._dirty = False
                await asyncio.to_thread(self._write, self.state_path, *self._dump())

    def save(self) -> None:
        """Write the state file now (at exit, after a reset)."""
        if self.pools is None or self.state_path is None:
            return
        self._dirty = False
        self._write(self.state_path, *self._dump())

    def changed(self) -> None:
        """The pools' state changed from outside a request (the fleet's news): saved soon."""
        self._dirty = True

    def _dump(self) -> tuple[int, bytes]:
        assert self.pools
        self._dumped += 1
        return self._dumped, self.pools.dump()

    def _write(self, path: Path, number: int, data: bytes) -> None:
        """Write dump `number`, unless a later one is on disk already: at exit the saver's
        thread may still be writing an older dump when the final save runs."""
        with self._write_lock:
            if number < self._written:
                return
            try:
                pool_state.write_private(path, data)
            except OSError as e:
                if self._write_problem is None:  # once: a read-only state directory would say it every time
                    logger.warning("cannot write the credential state to %s (%s); cooldowns will not survive "
                                   "a restart", path, reason(e))
                self._write_problem = FileProblem(
                    str(path), f"cannot be written ({reason(e)})", "cooldowns and counters in memory only: a "
                    "restart now would lose them")
                self._dirty = True  # tried again at the next tick: the disk may come back
                return
            self._written = number
            if self._write_problem is not None:
                logger.info("the credential state is written to %s again", path)
                self._write_problem = None

    def problems(self) -> list[FileProblem]:
        """For /healthz: what the state file held that could not be used (as long as the
        gateway runs, since the next save rewrites the file), and a failing write."""
        return [p for p in (self._load_problem, self._write_problem) if p is not None]

    # -- leases -----------------------------------------------------------------------

    def pooled(self, provider: str) -> int:
        """How many credentials `provider` has in its pool (0: passthrough, or auth: none)."""
        assert self.pools
        pool = self.pools.pools.get(provider)
        return len(pool.members) if pool else 0

    async def lease(
        self, provider: str, model: str, session: str | None, exclude: frozenset[str] = frozenset()
    ) -> Lease | Refusal:
        """A credential of `provider`, waiting up to its max_wait while all are busy. In a
        fleet, the round-robin turn and max_concurrent's slots are the fleet's."""
        assert self.pools
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        fleet, pool = self.fleet, self.pools.pools.get(provider)
        while True:
            turn = fleet.turn(provider) if fleet and pool and pool.takes_turns() else None
            picked = self.pools.pick(provider, model, session, exclude, turn)
            if isinstance(picked, Lease) and fleet and picked.credential.max_concurrent is not None:
                if not await fleet.take(picked):
                    # The fleet holds its every slot (its member now says so), or Redis
                    # answered late: given back without waking the waiters, which would
                    # only be refused the same, and this request waits as for a busy one.
                    self._refused = picked
                    picked.release()
                    self._refused = None
                    continue
            if not isinstance(picked, AllBusy):
                return picked
            deadline = deadline if deadline is not None else loop.time() + picked.max_wait
            left = deadline - loop.time()
            if left <= 0:
                return picked
            event = self._released[provider]
            try:
                # Another gateway's release wakes this one too, unless its word is lost
                # (Redis away, or a gateway that crashed holding slots that then expire).
                await asyncio.wait_for(event.wait(), min(left, FLEET_POLL) if fleet else left)
            except TimeoutError:
                pass
            if fleet:
                await fleet.recount(provider)

    def admits(self, provider: str) -> bool:
        """Whether `provider`'s breaker lets it take its turn (Pools.admits)."""
        assert self.pools
        return self.pools.admits(provider)

    def _on_release(self, lease: Lease) -> None:
        if lease is self._refused or (self.fleet is not None and self.fleet.give(lease)):
            return  # the fleet wakes the waiters once the slot is back in Redis
        self.wake(lease.provider)

    def wake(self, provider: str) -> None:
        """Every waiter for `provider` wakes and picks again; whoever is first gets the free credential."""
        event = self._released.pop(provider, None)
        if event is not None:
            event.set()

    def record(
        self, lease: Lease, outcome: Outcome, headers: Mapping[str, str] | None = None,
        body: str | None = None, usage: Usage | None = None,
    ) -> Verdict:
        assert self.pools
        before = dict(lease.member.cooldowns) if self.fleet else {}
        verdict = self.pools.record(lease, outcome, headers=headers, body=body, usage=usage)
        if headers is not None and lease.pool.provider.protocol in quota.PROTOCOLS:
            quota.observe(lease.member, _fields(headers), self.pools.now())  # what it said of its subscription
        if self.fleet is not None:
            self.fleet.recorded(lease, verdict, before)
        self._dirty = True
        if verdict.cooldown is not None:
            self._urgent.set()  # a cooldown must survive a crash soon after it
        return verdict

    def heard(self, provider: Provider, headers: Mapping[str, str], client: Callable[[], Mapping[str, str]]) -> str | None:
        """An answer on passthrough, to the client's own token: keeps what it said of that
        login's quota, as `record` keeps a pooled credential's, success or refusal.
        `client` gives the request's headers by lowercase name, asked only when the answer
        names a quota (most do not). Returns the login's fingerprint then, else None."""
        assert self.pools
        if not provider.passthrough or provider.protocol not in quota.PROTOCOLS:
            return None
        if (seen := quota.read(_fields(headers), self.pools.now())) is None:
            return None
        login = self.pools.logins.observe(provider.name, client(), seen)
        if login is None:
            return None
        self._dirty = True
        return login.fingerprint

    def judge(self, lease: Lease, failure: Failure) -> Failure:
        """Record a failed attempt in its credential's pool, with what the upstream said
        (its retry hints), and return it as the pool judged it (its row of the cooldown
        table, its cooldown): both send paths do this with each failure."""
        assert failure.outcome is not None
        verdict = self.record(lease, failure.outcome, headers=failure.said_headers, body=failure.said)
        return attempt.judged(failure, verdict)

    # -- the reset command (also behind LocalAPI's POST /modelmux/credentials/reset) ------

    @command.command("modelmux.credentials.reset")
    def reset(self, provider: str = "", label: str = "") -> None:
        """Clear the cooldowns of a provider's credential (every credential of the provider
        when no label is given, of every provider when no provider is): the upstream
        recovered early, or the key was fixed."""
        assert self.pools
        if label and not provider:
            raise LookupError("name the provider of the credential to reset")
        for name in [provider] if provider else list(self.pools.pools):
            pool = self.pools.pool(name)  # LookupError names the known providers
            if label:
                self.pools.reset(name, label)  # LookupError names the known labels
                continue
            for member in pool.members:
                self.pools.reset(name, member.label)
            pool.rewind()  # the whole pool starts afresh: turns from its first credential
        if self.fleet is not None:
            self.fleet.reset(provider, label)
        logger.info("credential cooldowns reset: %s/%s", provider, label or "*")
        self.save()

    # -- oauth refreshes (the Refresher's fleet) ---------------------------------------------

    async def refresh_once(self, credential: Credential, exchange: Callable[[], Awaitable[bool]]) -> bool:
        """Refresh `credential`'s login with `exchange`: in a fleet, one gateway at a time,
        and the others take its token (Fleet.refresh)."""
        if self.fleet is None or self.pools is None:
            return await exchange()
        provider = next((name for name, pool in self.pools.pools.items()
                         if any(m.credential.identity == credential.identity for m in pool.members)), None)
        if provider is None:
            return await exchange()
        return await self.fleet.refresh(credential, provider, exchange)


def _fields(headers: Mapping[str, str]) -> Iterable[tuple[bytes, bytes]]:
    """An answer's headers as raw (name, value) pairs, without a copy where they are
    already: mitmproxy's and httpx's read by name cost tens of µs per answer."""
    if isinstance(headers, http.Headers):
        return headers.fields
    if isinstance(headers, httpx.Headers):
        return headers.raw
    return quota.encoded(headers)
