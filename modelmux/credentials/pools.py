"""Credential pools: which of a provider's credentials serves a request, and what the
upstream's answer does to that credential.

Each provider owns one pool, built from its own `credentials` list. Every call names
the provider and reads only that pool, so one provider's key cannot serve another's
request by construction. Pure: no mitmproxy, no sleeping, no network. The clock is
injected and reads wall-clock seconds, so persisted expiries are real times. Not
thread-safe: the gateway calls it from mitmproxy's one event loop.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Self, cast

from modelmux.config.types import Config, Credential, Provider
from modelmux.credentials import quota, state_file
from modelmux.credentials.breakers import Breaker
from modelmux.credentials.client_logins import Login, Logins
from modelmux.credentials.quota import Quota
from modelmux.credentials.cooldowns import POLICIES, Cooldown, Kind, Outcome, classify, iso, next_cooldown, span
from modelmux.credentials.cooldowns import subscription_exhausted, upstream_delay
from modelmux.credentials.refusals import AllBusy, AllCooling, Blocked, BlockedState, Refusal, Unhealthy
from modelmux.secrets import fingerprint, redacted

logger = logging.getLogger(__name__)

# Sessions remembered per pool for affinity; the least recently used is forgotten first.
MAX_SESSIONS = 4096


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0


@dataclass(frozen=True)
class Verdict:
    """What `record` concluded, for the caller's next step."""

    kind: Kind
    try_another: bool  # the same request may be sent again with another credential of the provider
    needs_attention: bool
    cooldown: Cooldown | None  # in force for this credential because of this outcome


@dataclass
class Member:
    """One credential as a member of its provider's pool: in flight, cooldowns, counters.
    Survives config reloads."""

    credential: Credential
    in_flight: int = 0
    elsewhere: int = 0  # its requests in flight on the fleet's other gateways, as last seen (state: redis)
    cooldowns: dict[str | None, Cooldown] = field(default_factory=dict)  # by model; None: every model
    current: int = 0  # smooth weighted round-robin's running weight
    requests: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    last_status: Outcome | None = None
    quota: Quota | None = None  # what its answers last said of its subscription quota (quota.py)

    @property
    def label(self) -> str:
        return self.credential.label

    def blocker(self, model: str, now: float) -> Cooldown | None:
        """The active cooldown that keeps this credential from `model` longest. An oauth
        credential whose login was refused is usable again once its file has a new login."""
        holder = self.credential.oauth
        if holder is not None and any(c.kind == "auth" for c in self.cooldowns.values()) and holder.reload():
            self.cooldowns = {k: c for k, c in self.cooldowns.items() if c.kind != "auth"}
        active = [c for key, c in self.cooldowns.items() if key in (None, model) and c.active(now)]
        return max(active, key=lambda c: (c.firm, c.until), default=None)

    def busy(self) -> bool:
        limit = self.credential.max_concurrent
        return limit is not None and self.in_flight + self.elsewhere >= limit

    def lift(self, model: str, started: float) -> bool:
        """A success of a request sent at `started` for `model`: it lifts a block set
        before then, and a soft cooldown whenever it was set (requests that were in flight
        when a 503 came prove the host well again). True when it lifted any."""
        lifted = [k for k, c in self.cooldowns.items() if k in (None, model) and (c.since < started or not c.firm)]
        for key in lifted:
            del self.cooldowns[key]
        return bool(lifted)

    def adopt(self, credential: Credential) -> None:
        """Take a reloaded credential; a replaced key starts with no cooldowns."""
        if credential.identity != self.credential.identity:
            self.cooldowns.clear()
        self.credential = credential


class Lease:
    """One request's use of one credential: in flight until released or recorded.
    Usable as a context manager that releases on exit."""

    def __init__(self, pool: Pool, member: Member, model: str, started: float, probe: bool = False) -> None:
        self.pool = pool
        self.member = member
        self.provider = pool.provider.name
        self.credential = member.credential
        self.model = model
        self.started = started
        self.probe = probe  # the provider's half-open breaker lets this request through as its probe
        self.released = False
        self.recorded = False
        self.slot: str | None = None  # its max_concurrent slot in the fleet's shared state, once taken there

    def release(self) -> None:
        if self.released:
            return
        self.released = True
        self.member.in_flight -= 1
        if self.probe:
            self.pool.breaker.done()
        self.pool.on_release(self)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"Lease({self.provider}/{self.credential.label}, {self.model})"


class Pool:
    """One provider's credentials and how the next one is chosen."""

    def __init__(self, provider: Provider, members: list[Member], on_release: Callable[[Lease], None],
                 breaker: Breaker | None = None) -> None:
        self.provider = provider
        self.members = tuple(members)
        self.on_release = on_release
        self.breaker = breaker or Breaker()
        self.sessions: OrderedDict[tuple[str, str], str] = OrderedDict()  # (session, model) → label
        self._cycles: dict[tuple[str, ...], list[int]] = {}  # usable labels → Pool.turn's cycle over them

    def pick(self, model: str, session: str | None, exclude: Collection[str], now: float,
             turn: int | None = None) -> Lease | Refusal:
        usable = [s for s in self.members if s.label not in exclude and not s.busy() and s.blocker(model, now) is None]
        if not usable:
            unhealthy = self.least_unhealthy(model, exclude, now)
            if unhealthy is None:
                return self.refusal(model, exclude, now)
            usable = [unhealthy]
        tier = min(s.credential.priority for s in usable)
        usable = [s for s in usable if s.credential.priority == tier]
        member = self.bound(session, model, usable) or self.choose(usable, now, turn)
        if session is not None and self.provider.affinity:
            self.sessions[(session, model)] = member.label
            self.sessions.move_to_end((session, model))
            if len(self.sessions) > MAX_SESSIONS:
                self.sessions.popitem(last=False)
        member.in_flight += 1
        return Lease(self, member, model, now, self.breaker.probe(now))

    def least_unhealthy(self, model: str, exclude: Collection[str], now: float) -> Member | None:
        """With nothing healthy left, the credential whose soft cooldown ends first is
        tried anyway: an upstream error or a guessed backoff says the host struggled, not
        that the key may not be used, and refusing locally would answer for an upstream
        that would most likely have answered itself (issue 16: 5 % of 503s became 75 %
        local refusals). Only firm cooldowns (quota, refused keys) refuse."""
        soft = [
            (blocker.until, member)
            for member in self.members
            if member.label not in exclude and not member.busy()
            and (blocker := member.blocker(model, now)) is not None and not blocker.firm
        ]
        return min(soft, key=lambda pair: pair[0])[1] if soft else None

    def rewind(self) -> None:
        """Start the turns, session bindings and the breaker afresh (a reset of the whole pool)."""
        for member in self.members:
            member.current = 0
        self.sessions.clear()
        self.breaker = Breaker()

    def bound(self, session: str | None, model: str, usable: list[Member]) -> Member | None:
        """The session's credential, while it is usable and in the best usable tier: a
        subscription freeing up beats a pay-per-token key's warm prompt cache."""
        if session is None or not self.provider.affinity:
            return None
        label = self.sessions.get((session, model))
        return next((s for s in usable if s.label == label), None)

    def takes_turns(self) -> bool:
        """Whether a pick takes a turn of a round-robin: what the fleet shares."""
        return self.provider.strategy == "round-robin" and len(self.members) > 1

    def choose(self, usable: list[Member], now: float, turn: int | None = None) -> Member:
        if self.provider.strategy == "fill-first":
            return usable[0]
        if self.provider.strategy == "most-quota":
            return quota.most_left(usable, now)
        if turn is not None:
            return self.turn(usable, turn)
        # nginx's smooth weighted round-robin over every credential, skipping the unusable:
        # weights 3:1 give a a b a; equal weights give plain turns that step over a cooling
        # credential without disturbing the others' order. Within one cycle (the sum of
        # the weights) every credential comes up, so the loop always finds one.
        total = sum(s.credential.weight for s in self.members)
        for _ in range(total):
            for member in self.members:
                member.current += member.credential.weight
            chosen = max(self.members, key=lambda s: s.current)  # ties: the one listed first
            chosen.current -= total
            if chosen in usable:
                return chosen
        raise AssertionError("smooth weighted round-robin skipped a usable credential for a whole cycle")

    def turn(self, usable: list[Member], turn: int) -> Member:
        """The credential of the fleet's shared turn number `turn` (state: redis): the
        smooth weighted round-robin's cycle over the usable credentials, indexed by a
        number the gateways take in turn, so the fleet spreads its requests as one
        gateway would (a credential sitting out leaves its share to the others evenly)."""
        labels = tuple(member.label for member in usable)
        cycle = self._cycles.get(labels)
        if cycle is None:  # the sequence `choose` walks, from every weight at 0
            weights = [member.credential.weight for member in usable]
            current = [0] * len(weights)
            cycle = []
            for _ in range(sum(weights)):
                current = [c + w for c, w in zip(current, weights, strict=True)]
                chosen = current.index(max(current))  # ties: the one listed first
                current[chosen] -= sum(weights)
                cycle.append(chosen)
            self._cycles[labels] = cycle
        return usable[cycle[turn % len(cycle)]]

    def refusal(self, model: str, exclude: Collection[str], now: float) -> Refusal:
        blocked = tuple(_blocked(member, model, exclude, now) for member in self.members)
        states = {b.state for b in blocked}
        name = self.provider.name
        if "busy" in states:
            return AllBusy(name, model, blocked, now, self.provider.max_wait)
        if states == {"cooling"}:
            return AllCooling(name, model, blocked, now)
        return Unhealthy(name, model, blocked, now)


def _blocked(member: Member, model: str, exclude: Collection[str], now: float) -> Blocked:
    cooldown = member.blocker(model, now)
    if cooldown is not None and cooldown.firm:
        state = cast(BlockedState, POLICIES[cooldown.kind].state)  # only "healthy" kinds never cool
        return Blocked(member.label, state, cooldown.until, cooldown.reason, member.last_status)
    if member.busy():
        elsewhere = f", {member.elsewhere} of them on other gateways" if member.elsewhere else ""
        held = member.in_flight + member.elsewhere
        reason = f"{held} of {member.credential.max_concurrent} requests in flight{elsewhere}"
        return Blocked(member.label, "busy", None, reason, member.last_status)
    if member.label in exclude:
        return Blocked(member.label, "tried", None, "already tried for this request", member.last_status)
    # Only soft cooldowns, which Pool.least_unhealthy sends anyway: not a reason to refuse.
    return Blocked(member.label, "unhealthy", None, cooldown.reason if cooldown else "", member.last_status)


_SESSION_IN_USER_ID = re.compile(r"_session_([0-9A-Za-z-]+)$")


def session_of(headers: Mapping[str, str], body: Mapping[str, Any]) -> str | None:
    """The Claude Code session a request belongs to, for affinity: the
    x-claude-code-session-id header, else the session in metadata.user_id
    (`user_…_account_…_session_UUID`, or newer versions' JSON with a session_id)."""
    for name, value in headers.items():
        if name.lower() == "x-claude-code-session-id" and value.strip():
            return value.strip()
    metadata = body.get("metadata")
    user_id = metadata.get("user_id") if isinstance(metadata, dict) else None
    if not isinstance(user_id, str) or not user_id:
        return None
    with contextlib.suppress(ValueError):
        parsed = json.loads(user_id)
        if isinstance(parsed, dict) and isinstance(parsed.get("session_id"), str) and parsed["session_id"]:
            return str(parsed["session_id"])
    found = _SESSION_IN_USER_ID.search(user_id)
    return found.group(1) if found else user_id  # no session in it: stick per user instead


class Pools:
    """Every provider's pool. Rebuilt in place on config reload, keeping the state of
    credentials that still exist (same provider and label)."""

    def __init__(
        self, config: Config, now: Callable[[], float] = time.time, on_release: Callable[[Lease], None] | None = None
    ) -> None:
        self.now = now
        # Lets a request waiting for a busy credential be woken instead of polling.
        self.on_release = on_release or (lambda lease: None)
        self.pools: dict[str, Pool] = {}
        self.unpooled: dict[str, str] = {}  # provider → its auth ("passthrough" or "none"): no credentials
        self.logins = Logins()  # the client's own, on passthrough: their quota (client_logins.py)
        self.reload(config)

    def reload(self, config: Config) -> None:
        old = {(name, s.label): s for name, pool in self.pools.items() for s in pool.members}
        pools = {}
        self.unpooled = {}
        for provider in config.providers.values():
            if not provider.credentials:  # the client's own token, or none at all: nothing to pool
                self.unpooled[provider.name] = "none" if provider.keyless else "passthrough"
                continue
            previous = self.pools.get(provider.name)
            if previous and [(s.label, s.credential.weight) for s in previous.members] != [
                (c.label, c.weight) for c in provider.credentials
            ]:
                for member in previous.members:
                    member.current = 0  # round-robin's cycle holds only for an unchanged set
            members = []
            for credential in provider.credentials:
                member = old.get((provider.name, credential.label)) or Member(credential)
                member.adopt(credential)
                members.append(member)
            pool = Pool(provider, members, lambda lease: self.on_release(lease), previous.breaker if previous else None)
            if previous is not None:
                labels = {s.label for s in members}
                pool.sessions.update((k, v) for k, v in previous.sessions.items() if v in labels)

            pools[provider.name] = pool
        self.pools = pools

    def pool(self, provider: str) -> Pool:
        try:
            return self.pools[provider]
        except KeyError:
            known = ", ".join(sorted(self.pools)) or "none"
            raise LookupError(f"provider '{provider}' has no credential pool (pools: {known})") from None

    def pick(
        self, provider: str, model: str, session: str | None = None, exclude: Collection[str] = (),
        turn: int | None = None,
    ) -> Lease | Refusal:
        """A lease on one of `provider`'s credentials for `model`, or why there is none.
        `exclude`: labels already tried for this request; `turn`: the fleet's shared
        round-robin turn (Pool.turn), None for this gateway's own."""
        return self.pool(provider).pick(model, session, exclude, self.now(), turn)

    def admits(self, provider: str) -> bool:
        """Whether `provider` takes its turn among a route's providers: its breaker is
        closed, or half-open with no probe out (breakers.py). Providers without
        credentials have no breaker."""
        pool = self.pools.get(provider)
        return pool is None or pool.breaker.admits(self.now())

    def record(
        self, lease: Lease, outcome: Outcome, *,
        headers: Mapping[str, str] | None = None, body: str | None = None, usage: Usage | None = None,
    ) -> Verdict:
        """Count the answer `lease` got and cool its credential as POLICIES says.
        `body`: the error body as text, where an upstream may name its retry delay."""
        if lease.recorded:
            raise RuntimeError(f"{lease!r} was already recorded")
        lease.recorded = True
        lease.release()
        now = self.now()
        member = lease.member
        kind = classify(outcome, body)
        policy = POLICIES[kind]
        member.last_status = outcome
        if kind != "cancelled":
            member.requests += 1
            member.errors += kind != "success"
        if usage is not None:
            member.input_tokens += usage.input_tokens
            member.output_tokens += usage.output_tokens
        if kind in ("success", "transient", "unreachable"):
            pool = self.pools.get(lease.provider, lease.pool)
            pool.breaker.record(kind != "success", lease.started, now)
        cooldown = None
        if kind == "success":
            member.lift(lease.model, lease.started)  # evidence about the moment the request was sent
        elif policy.base > 0 and lease.credential.identity == member.credential.identity:  # else: a key since replaced
            headers = headers or {}
            provider = self.pools.get(lease.provider, lease.pool).provider  # as reloaded since the pick
            per_model = policy.per_model and provider.cooldown_scope == "model"
            key = lease.model if per_model and not subscription_exhausted(headers) else None
            hint = upstream_delay(headers, body, now) if policy.upstream_hint else None
            previous = member.cooldowns.get(key)
            cooldown = next_cooldown(previous, kind, outcome, hint, now, key, lease.started)
            member.cooldowns[key] = cooldown
            if policy.needs_attention and cooldown is not previous:
                logger.error(
                    "credential %s of provider %s: %s; not used until %s (in %s). Check the key: a new key "
                    "under the same label clears this on reload", redacted(lease.credential), lease.provider,
                    cooldown.reason, iso(cooldown.until), span(cooldown.until - now),
                )
        return Verdict(kind, policy.try_another, policy.needs_attention, cooldown)

    def reset(self, provider: str, label: str) -> None:
        """Clear a credential's cooldowns and backoff (the upstream recovered early, or
        the key was fixed)."""
        member = next((s for s in self.pool(provider).members if s.label == label), None)
        if member is None:
            labels = ", ".join(s.label for s in self.pool(provider).members)
            raise LookupError(f"provider '{provider}' has no credential '{label}'; credentials: {labels}")
        member.cooldowns.clear()

    def save(self, path: Path) -> None:
        """Store cooldowns (real expiry times) and counters; see `state_file.state_path`.
        Raises OSError when the file cannot be written."""
        state_file.write_private(path, self.dump())

    def dump(self) -> bytes:
        """What `save` writes, for a caller that writes it elsewhere (off the event loop)."""
        entries = [
            state_file.Stored(
                name, member.label, fingerprint(member.credential.identity), member.requests, member.errors,
                member.input_tokens, member.output_tokens, member.last_status, tuple(member.cooldowns.values()),
                member.quota,
            )
            for name, pool in self.pools.items()
            for member in pool.members
        ]
        return state_file.dump(entries, self.now(), self.logins.dump())

    def restore(self, entries: list[state_file.Stored], logins: Iterable[Login] = ()) -> None:
        """Restore what `save` stored (as `state_file.read` found it), at start-up. Expired
        cooldowns and credentials no longer configured are dropped; a replaced key keeps
        its counters, not its cooldowns or quota. A quota is kept as it was seen (its
        windows that have reset since show so: Quota.describe)."""
        now = self.now()
        members = {(name, s.label): s for name, pool in self.pools.items() for s in pool.members}
        for entry in entries:
            member = members.get((entry.provider, entry.label))
            if member is None:
                continue
            member.requests, member.errors = entry.requests, entry.errors
            member.input_tokens, member.output_tokens = entry.input_tokens, entry.output_tokens
            member.last_status = entry.last_status
            if entry.fingerprint == fingerprint(member.credential.identity):
                member.cooldowns = {c.model: c for c in entry.cooldowns if c.active(now)}
                member.quota = entry.quota
        self.logins.restore(logins)
