"""Several gateways, one pool state (routes.yaml `state: {backend: redis}`): what the
fleet shares, under which names, and how a gateway folds what the others did into its
own pools. Pure: no Redis, no clock of its own; the Fleet addon
(modelmux/addons/fleet.py) does the I/O and calls these (docs/team.md).

Every gateway keeps its own pools (pools.py) and decides from them alone, so a request
never waits on Redis for a decision it can make locally; what it learns it also tells
the fleet: a new cooldown, a success that lifts one, a reset. The rest is read at the
moment it matters: the round-robin turn and the max_concurrent slots.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

from modelmux.config.types import Credential
from modelmux.credentials import state_file
from modelmux.credentials.cooldowns import Cooldown, iso, prevailing, span
from modelmux.credentials.pools import Lease, Member, Pools, Verdict
from modelmux.secrets import fingerprint


@dataclass(frozen=True)
class Keys:
    """The Redis names of a fleet, all under `prefix`. Names hold provider names, labels
    and model names (routes.yaml's own words), never a key or token: a credential whose
    key changed under the same label is told apart by `identity` inside the values."""

    prefix: str

    def name(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def cooldown(self, provider: str, label: str, model: str | None) -> str:
        return self.name("cooldown", provider, label, "*" if model is None else f"model:{model}")

    def turn(self, provider: str) -> str:
        return self.name("turn", provider)

    def slots(self, provider: str, label: str) -> str:
        return self.name("slots", provider, label)

    def token(self, provider: str, label: str) -> str:
        return self.name("token", provider, label)

    def refreshing(self, provider: str, label: str) -> str:
        return self.name("refreshing", provider, label)

    def usage(self) -> str:
        return self.name("usage")

    def rate(self, client_key: str) -> str:
        """A client key's requests of the last minute (server.api_keys' rpm), by its label."""
        return self.name("rate", client_key)

    def events(self) -> str:
        return self.name("events")


def identity(credential: Credential) -> str:
    """What tells the fleet's gateways they hold the same credential under a label: its
    key's fingerprint, or for a login its place in the pool (each gateway may keep the
    token file elsewhere; the token itself is shared)."""
    return "oauth" if credential.oauth is not None else fingerprint(credential.identity)


class Shared(Protocol):
    """What the Credentials addon asks of the fleet's shared state (the Fleet addon)."""

    def turn(self, provider: str) -> int | None: ...
    async def take(self, lease: Lease) -> bool: ...
    def give(self, lease: Lease) -> bool: ...
    async def recount(self, provider: str) -> None: ...
    def recorded(self, lease: Lease, verdict: Verdict, before: dict[str | None, Cooldown]) -> None: ...
    def reset(self, provider: str, label: str) -> None: ...
    async def refresh(self, credential: Credential, provider: str, exchange: Callable[[], Awaitable[bool]]) -> bool: ...
    def describe(self) -> dict[str, Any]: ...


# -- what gateways tell each other ---------------------------------------------------

EventType = Literal["cooldown", "lift", "release", "reset", "token"]


@dataclass(frozen=True)
class Event:
    """One gateway's news for the others, published on Keys.events."""

    type: EventType
    sender: str  # the gateway's instance id: its own events come back to it, and are skipped
    provider: str
    label: str | None = None  # None: every credential of the provider (a reset)
    identity: str | None = None  # cooldown: whose key it was got with
    cooldown: Cooldown | None = None  # cooldown
    model: str | None = None  # lift: the model of the request that succeeded
    started: float | None = None  # lift: when that request was sent
    count: int | None = None  # release: the credential's slots taken fleet-wide after it

    def encode(self) -> str:
        document: dict[str, Any] = {"type": self.type, "sender": self.sender, "provider": self.provider,
                                    "label": self.label}
        if self.cooldown is not None:
            document |= {"identity": self.identity, "cooldown": state_file.cooldown_document(self.cooldown)}
        if self.type == "lift":
            document |= {"model": self.model, "started": self.started}
        if self.count is not None:
            document["count"] = self.count
        return json.dumps(document, separators=(",", ":"))

    @classmethod
    def decode(cls, data: str | bytes) -> Event:
        """Raises ValueError for what no gateway of this version sent."""
        try:
            item = json.loads(data)
            cooldown = item.get("cooldown")
            return cls(
                type=_one_of(item["type"], ("cooldown", "lift", "release", "reset", "token")),
                sender=str(item["sender"]),
                provider=str(item["provider"]),
                label=item.get("label"),
                identity=item.get("identity"),
                cooldown=state_file.cooldown_of(cooldown) if cooldown is not None else None,
                model=item.get("model"),
                started=float(item["started"]) if item.get("started") is not None else None,
                count=int(item["count"]) if item.get("count") is not None else None,
            )
        except (KeyError, TypeError, AttributeError, json.JSONDecodeError) as e:
            raise ValueError(f"not a fleet event ({type(e).__name__})") from None


def _one_of(value: Any, allowed: tuple[str, ...]) -> Any:
    if value not in allowed:
        raise ValueError("an event type this version does not know")
    return value


def stored_cooldown(credential: Credential, cooldown: Cooldown) -> str:
    """A cooldown as its Redis value (it expires with the cooldown)."""
    return json.dumps({"identity": identity(credential), "cooldown": state_file.cooldown_document(cooldown)})


def read_stored(data: str | bytes) -> tuple[str, Cooldown]:
    """(identity, cooldown) of a stored_cooldown. Raises ValueError."""
    try:
        item = json.loads(data)
        return str(item["identity"]), state_file.cooldown_of(item["cooldown"])
    except (KeyError, TypeError, json.JSONDecodeError) as e:
        raise ValueError(f"not a stored cooldown ({type(e).__name__})") from None


# -- folding the fleet's news into this gateway's pools --------------------------------


def member(pools: Pools, provider: str, label: str | None) -> Member | None:
    pool = pools.pools.get(provider)
    return next((m for m in pool.members if m.label == label), None) if pool else None


def adopt(pools: Pools, provider: str, label: str, holder: str, cooldown: Cooldown, now: float) -> bool:
    """Another gateway's cooldown for a credential of ours: kept when it is still active,
    for the same key (`holder`: its identity), and prevails over ours (the newer of two
    of the same firmness; a block over an ordering). True when our state changed."""
    found = member(pools, provider, label)
    if found is None or holder != identity(found.credential) or not cooldown.active(now):
        return False
    ours = found.cooldowns.get(cooldown.model)
    if ours == cooldown:
        return False
    if ours is not None and ours.active(now):
        older, newer = (ours, cooldown) if ours.since <= cooldown.since else (cooldown, ours)
        if prevailing(older, newer) is ours:
            return False
    found.cooldowns[cooldown.model] = cooldown
    return True


def apply(pools: Pools, event: Event, now: float) -> bool:
    """Fold another gateway's event into `pools`. True when our cooldowns changed (the
    state file is then saved)."""
    if event.type == "cooldown" and event.cooldown is not None and event.label and event.identity:
        return adopt(pools, event.provider, event.label, event.identity, event.cooldown, now)
    if event.type == "lift" and event.model is not None and event.started is not None:
        found = member(pools, event.provider, event.label)
        return found.lift(event.model, event.started) if found else False
    if event.type == "release" and event.count is not None:
        found = member(pools, event.provider, event.label)
        if found is not None:
            found.elsewhere = max(0, event.count - found.in_flight)
        return False
    if event.type == "reset" and event.provider in pools.pools:
        for each in pools.pool(event.provider).members:
            if event.label in (None, each.label):
                each.cooldowns.clear()
        return True
    return False


def active_cooldowns(pools: Pools, now: float) -> Iterable[tuple[str, Member, Cooldown]]:
    """(provider, member, cooldown) of every active cooldown: what a gateway that was cut
    off from the fleet tells it when it is back."""
    for name, pool in pools.pools.items():
        for each in pool.members:
            for cooldown in each.cooldowns.values():
                if cooldown.active(now):
                    yield name, each, cooldown


# -- whether the shared state answers ----------------------------------------------------

FIRST_RETRY = 0.5  # seconds before a gateway cut off from Redis tries it again
LAST_RETRY = 5.0  # the longest wait between tries, however long Redis stays away


class Link:
    """A circuit breaker on the connection to the shared state. While it is down, every
    gateway serves from its own state (nothing waits on Redis: `up` is False, so callers
    do not ask it), and one background try at a time, FIRST_RETRY after the failure and
    then twice as long each time up to LAST_RETRY, sees whether it is back. Back, the
    gateway resyncs before it calls the link up again."""

    def __init__(self, now: float) -> None:
        self.up = False
        self.since = now  # when it went up or down
        self.reason = "not connected yet"
        self.wait = FIRST_RETRY
        self.retry_at = now

    def failed(self, reason: str, now: float) -> bool:
        """A call failed or timed out. True when that took the link down."""
        was_up = self.up
        if was_up:
            self.up, self.since, self.wait = False, now, FIRST_RETRY
        self.reason = reason
        self.retry_at = now + self.wait
        self.wait = min(self.wait * 2, LAST_RETRY)
        return was_up

    def resynced(self, now: float) -> bool:
        """Back, and resynced. True when it had been down."""
        was_down = not self.up
        if was_down:
            self.up, self.since, self.wait, self.reason = True, now, FIRST_RETRY, ""
        return was_down

    def due(self, now: float) -> bool:
        """Whether a down link should be tried again now."""
        return not self.up and now >= self.retry_at

    def describe(self, now: float) -> dict[str, Any]:
        """For /healthz and `modelmux status`."""
        if self.up:
            return {"status": "connected", "since": iso(self.since)}
        return {
            "status": "degraded",
            "since": iso(self.since),
            "for": span(now - self.since),
            "reason": self.reason,
            "next_try": iso(self.retry_at),
        }
