"""Credentials: every provider's pool of credentials, in the running gateway.

Hands out leases (waiting a bounded time when every credential is at its
max_concurrent), records what the upstream answered, keeps the state file in the
state directory (what a crash can lose of it: docs/credentials.md), and serves the
pools' state: `GET /modelmux/credentials`, `POST /modelmux/credentials/reset` (both
answered by LocalAPI) and the `modelmux.credentials.reset` command.

A flow mitmproxy sends itself holds its lease until the `response` or `error` hook;
the failover relay leases and records per attempt through the same methods.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path

from mitmproxy import command
from mitmproxy import http
from mitmproxy.utils import asyncio_utils

from modelmux.addons.dashboard import Dashboard
from modelmux.addons.internals import CLIENT_GONE
from modelmux.addons.settings import Settings
from modelmux.config.file_problems import FileProblem, reason
from modelmux.config.paths import adopt_beside
from modelmux.config.types import Config
from modelmux.credentials import state_file
from modelmux.credentials.cooldowns import Outcome, names_a_wait, retry_after
from modelmux.credentials.pools import Lease, Pools, Usage, Verdict
from modelmux.credentials.refusals import AllBusy, Refusal
from modelmux.translate.meter import tokens_of_json

logger = logging.getLogger(__name__)

# Seconds between writes of changed counters: what a kill -9 can lose of them. At one
# save a second of a busy gateway, a save is ~0.1 ms on the event loop (the dump of 5
# credentials; 0.3 ms of 50) and ~0.5 ms of fsync in a thread: docs/credentials.md.
SAVE_INTERVAL = 1.0
ERROR_BODY_LIMIT = 64 * 1024  # of an upstream's error body read for retry hints


class Credentials:
    def __init__(self, settings: Settings, dashboard: Dashboard) -> None:
        self.settings = settings
        self.dashboard = dashboard  # its meters count a stream's tokens
        self.pools: Pools | None = None
        self.state_path: Path | None = None  # the state file, once routes.yaml is loaded
        self._leases: dict[str, Lease] = {}  # flow id → lease, for flows mitmproxy sends itself
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
        settings.subscribe(self._configure)

    # -- lifecycle and state file -----------------------------------------------------

    def _configure(self, config: Config) -> None:
        if self.pools is None:
            self.pools = Pools(config, on_release=self._on_release)
            self.state_path = state_file.state_path(config.path, os.environ)
            adopt_beside(config.path, state_file.SUFFIX, self.state_path)
            loaded = state_file.read(self.state_path)
            self.pools.restore(loaded.entries)
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
                state_file.write_private(path, data)
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
        """A credential of `provider`, waiting up to its max_wait while all are busy."""
        assert self.pools
        loop = asyncio.get_running_loop()
        deadline: float | None = None
        while True:
            picked = self.pools.pick(provider, model, session, exclude)
            if not isinstance(picked, AllBusy):
                return picked
            deadline = deadline if deadline is not None else loop.time() + picked.max_wait
            left = deadline - loop.time()
            if left <= 0:
                return picked
            event = self._released[provider]
            try:
                await asyncio.wait_for(event.wait(), left)
            except TimeoutError:
                pass

    def admits(self, provider: str) -> bool:
        """Whether `provider`'s breaker lets it take its turn (Pools.admits)."""
        assert self.pools
        return self.pools.admits(provider)

    def _on_release(self, provider: str) -> None:
        # Every waiter wakes and picks again; whoever is first gets the free credential.
        event = self._released.pop(provider, None)
        if event is not None:
            event.set()

    def record(
        self, lease: Lease, outcome: Outcome, headers: Mapping[str, str] | None = None,
        body: str | None = None, usage: Usage | None = None,
    ) -> Verdict:
        assert self.pools
        verdict = self.pools.record(lease, outcome, headers=headers, body=body, usage=usage)
        self._dirty = True
        if verdict.cooldown is not None:
            self._urgent.set()  # a cooldown must survive a crash soon after it
        return verdict

    def hold(self, flow: http.HTTPFlow, lease: Lease) -> None:
        """`flow` is sent by mitmproxy with `lease`: recorded when its answer is in."""
        self._leases[flow.id] = lease

    def release(self, flow: http.HTTPFlow) -> None:
        """`flow` was answered without asking the upstream after all."""
        if lease := self._leases.pop(flow.id, None):
            lease.release()

    # -- flows mitmproxy sends itself --------------------------------------------------

    def response(self, flow: http.HTTPFlow) -> None:
        lease = self._leases.pop(flow.id, None)
        response = flow.response
        if lease is None or response is None:
            return
        if flow.metadata["modelmux"].get("local"):  # answered here after all (Guard): the upstream never saw it
            lease.release()
            return
        meter = self.dashboard.meter_of(flow)
        tokens = meter.tokens() if meter else None
        body = None
        if response.status_code >= 400:
            body = (response.get_text(strict=False) or "")[:ERROR_BODY_LIMIT]
        elif not response.stream:
            tokens = tokens_of_json(response.content or b"")
        usage = tokens.for_pool() if tokens else None
        verdict = self.record(lease, response.status_code, response.headers, body, usage)
        _attempt(flow, lease, response.status_code)
        if verdict.cooldown is not None and verdict.cooldown.firm and not names_a_wait(response.headers):
            # The upstream named no wait, but the pool knows when this credential is back. A
            # soft cooldown names no such time: the next request is sent at once.
            response.headers["retry-after"] = str(retry_after(verdict.cooldown.until, time.time()))

    def error(self, flow: http.HTTPFlow) -> None:
        lease = self._leases.pop(flow.id, None)
        if lease is None:
            return
        msg = flow.error.msg if flow.error else ""
        outcome: Outcome = "cancelled" if msg == CLIENT_GONE else flow.metadata["modelmux"].get("failure", "reset")
        self.record(lease, outcome)
        _attempt(flow, lease, outcome)

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
        logger.info("credential cooldowns reset: %s/%s", provider, label or "*")
        self.save()


def _attempt(flow: http.HTTPFlow, lease: Lease, outcome: Outcome) -> None:
    """The one attempt of a flow mitmproxy sent, in the relay's format (failover.py)."""
    request = flow.request
    flow.metadata["modelmux"]["attempts"] = [{
        "provider": lease.provider,
        "credential": lease.credential.label,
        "model": lease.model,
        "upstream": f"{request.scheme}://{request.host}:{request.port}{request.path.partition('?')[0]}",
        "status": flow.response.status_code if flow.response else None,
        "outcome": outcome,
        "ms": round((time.time() - request.timestamp_start) * 1000, 1),
    }]
