"""Why no credential of a provider can take a request: what the client's error needs.

A `Pools.pick` that finds nothing returns one of these instead of a lease. Each knows
its HTTP status, Anthropic error type, Retry-After and a message that names the
provider, the model and when it recovers, so the gateway answers without guessing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import ClassVar, Literal

from modelmux.credentials.cooldowns import Outcome, iso, retry_after, span
from modelmux.errors import GatewayError

BlockedState = Literal["cooling", "unhealthy", "needs attention", "busy", "tried"]
_ORDER: tuple[BlockedState, ...] = ("cooling", "unhealthy", "needs attention", "busy", "tried")


@dataclass(frozen=True)
class Blocked:
    """One credential that could not take the request, and why."""

    label: str
    state: BlockedState  # busy: at max_concurrent; tried: already used for this request
    until: float | None  # when its cooldown ends; None when it has none
    reason: str
    last_status: Outcome | None  # the last upstream answer it got


@dataclass(frozen=True)
class Refusal:
    provider: str
    model: str
    blocked: tuple[Blocked, ...]  # every credential of the provider, in config order
    at: float  # when it was decided (wall-clock seconds)

    status: ClassVar[int] = 503
    error_type: ClassVar[str] = "overloaded_error"

    @property
    def earliest(self) -> float | None:
        """When the first cooling credential recovers; None when none is cooling."""
        return min((b.until for b in self.blocked if b.until is not None), default=None)

    @property
    def retry_after(self) -> int | None:
        """Whole seconds for the Retry-After header (cooldowns.retry_after)."""
        earliest = self.earliest
        return retry_after(earliest, self.at) if earliest is not None else None

    @property
    def counts(self) -> dict[str, int]:
        counted = Counter(b.state for b in self.blocked)
        return {state: counted[state] for state in _ORDER if counted[state]}

    @property
    def last_statuses(self) -> dict[str, Outcome | None]:
        return {b.label: b.last_status for b in self.blocked}

    @property
    def message(self) -> str:
        statuses = ", ".join(f"{b.label} {b.last_status}" for b in self.blocked if b.last_status is not None)
        counts = ", ".join(f"{n} {state}" for state, n in self.counts.items())
        text = f"no credential of provider '{self.provider}' can serve model '{self.model}' now: {counts}"
        return text + (f" (last upstream statuses: {statuses})" if statuses else "") + self.recovery()

    def error(self) -> GatewayError:
        """The client's answer: status, type, message and Retry-After when a credential recovers."""
        retry_after = self.retry_after
        headers = {"retry-after": str(retry_after)} if retry_after is not None else {}
        return GatewayError(self.status, self.message, self.error_type, headers)

    def recovery(self) -> str:
        earliest = self.earliest
        if earliest is None:
            return ""
        return f"; the first recovers at {iso(earliest)} (in {span(earliest - self.at)})"


@dataclass(frozen=True)
class AllCooling(Refusal):
    """Every credential is rate limited: the client should come back at `earliest`."""

    status: ClassVar[int] = 429
    error_type: ClassVar[str] = "rate_limit_error"

    @property
    def message(self) -> str:
        each = ", ".join(f"{b.label} until {iso(b.until)}" for b in self.blocked if b.until is not None)
        return (
            f"every credential of provider '{self.provider}' is rate limited for model '{self.model}' "
            f"({each})" + self.recovery()
        )


@dataclass(frozen=True)
class AllBusy(Refusal):
    """At least one credential is healthy but at its max_concurrent: waiting may help.
    The gateway waits up to `max_wait` (woken by Pools' on_release), then answers this."""

    max_wait: float = 0.0

    status: ClassVar[int] = 429
    error_type: ClassVar[str] = "rate_limit_error"

    @property
    def message(self) -> str:
        each = ", ".join(f"{b.label}: {b.reason}" for b in self.blocked)
        return (
            f"every credential of provider '{self.provider}' that could serve model '{self.model}' is busy "
            f"({each}) and none was free within {self.max_wait:g} s; retry shortly, or raise max_concurrent "
            "if the vendor allows more requests at once"
        )


@dataclass(frozen=True)
class Unhealthy(Refusal):
    """Credentials are blocked for other reasons than rate limits (failing, refused,
    already tried): 503 with counts and the last upstream statuses."""
