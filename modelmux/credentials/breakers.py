"""A provider's circuit breaker: whether its host is failing, judged by the rate of
upstream errors over a window, never by one answer.

Credentials' cooldowns say what one answer means for one key; a 5xx, a 529, a reset
or a timeout says more about the provider's host, which every key of it shares. Such
answers feed this breaker. It never refuses a request: while it is open the provider
is tried after the route's other providers (and only one of its keys per request),
and when nothing else answers it is still tried. After its open time it half-opens:
one request at a time goes to the provider in its turn, as a real probe; an answer
closes the breaker, another error opens it for twice as long.

Pure: the caller passes `now` (wall-clock seconds) and says which outcomes count.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

from modelmux.credentials.cooldowns import iso

BreakerState = Literal["closed", "open", "half-open"]

WINDOW = 30.0  # seconds of outcomes the error rate is taken over
MIN_VOLUME = 10  # fewer outcomes than this in the window say nothing about a rate
THRESHOLD = 0.5  # the share of host errors that opens the breaker
OPEN_BASE, OPEN_CAP = 10.0, 120.0  # the first open time; doubled after each failed probe, up to this


@dataclass
class Breaker:
    """One provider's breaker."""

    outcomes: deque[tuple[float, bool]] = field(default_factory=deque)  # (when, a host error) in the window
    errors: int = 0  # of the outcomes, the host errors: counted as they come and go, not summed per answer
    opened: float | None = None  # when it opened; None while closed
    until: float = 0.0  # when an open breaker half-opens
    level: int = 0  # failed probes since it opened: doubles the open time
    probing: int = 0  # probes in flight
    why: str = ""  # what opened it, for status

    def state(self, now: float) -> BreakerState:
        if self.opened is None:
            return "closed"
        return "open" if now < self.until else "half-open"

    def admits(self, now: float) -> bool:
        """Whether the provider takes its turn: closed, or half-open with no probe out."""
        state = self.state(now)
        return state == "closed" or (state == "half-open" and self.probing == 0)

    def probe(self, now: float) -> bool:
        """A request is sent to the provider: whether it is the half-open breaker's probe
        (the caller reports its end with `done`)."""
        if self.state(now) == "half-open" and self.probing == 0:
            self.probing += 1
            return True
        return False

    def done(self) -> None:
        """A probe ended, answered or not."""
        self.probing = max(0, self.probing - 1)

    def record(self, failed: bool, started: float, now: float) -> None:
        """An answer from the provider to a request sent at `started`: `failed` for a host
        error (5xx, 529, reset, timeout), False for a success. Other answers (rate
        limits, refused keys, the request's own faults) say nothing about the host and
        are not recorded."""
        if self.opened is not None:
            if started < self.opened:
                return  # sent before it opened: already counted in the rate that opened it
            if not failed:
                self._close()
            elif now >= self.until:
                self._open(now, self.level + 1, "the probe sent when it half-opened failed too")
            return
        self.outcomes.append((now, failed))
        self.errors += failed
        while self.outcomes and self.outcomes[0][0] <= now - WINDOW:
            self.errors -= self.outcomes.popleft()[1]
        errors = self.errors
        if len(self.outcomes) >= MIN_VOLUME and errors >= THRESHOLD * len(self.outcomes):
            self._open(now, 0, f"{errors} of the last {len(self.outcomes)} answers were upstream errors")

    def _open(self, now: float, level: int, why: str) -> None:
        self.outcomes.clear()
        self.errors = 0
        self.opened, self.level, self.why = now, level, why
        self.until = now + min(OPEN_BASE * 2**level, OPEN_CAP)

    def _close(self) -> None:
        self.outcomes.clear()
        self.errors = 0
        self.opened, self.level, self.until, self.why = None, 0, 0.0, ""

    def describe(self, now: float) -> dict[str, object]:
        """For status: JSON-able."""
        return {"state": self.state(now), "until": iso(self.until) if self.opened is not None else None,
                "reason": self.why or None}
