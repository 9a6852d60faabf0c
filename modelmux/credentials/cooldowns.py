"""What an upstream's answer means for the credential that got it: the cooldown table.

Pure: no mitmproxy, no I/O and no clock of its own. Callers pass `now` as wall-clock
seconds, so expiries can be persisted as real times and survive a restart.
"""

from __future__ import annotations

import email.utils
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

Kind = Literal["success", "rate_limit", "auth", "forbidden", "transient", "unreachable", "request", "cancelled"]
TransportFailure = Literal["timeout", "connect", "reset", "cancelled"]
Outcome = int | TransportFailure  # an HTTP status, or how the exchange failed without one
State = Literal["healthy", "cooling", "unhealthy", "needs attention"]


# When a cooldown blocks its credential ("firm": not used until it ends; every
# credential of a provider so blocked is refused without asking the upstream) rather
# than only ordering it ("soft": used after every healthy credential, and when none is
# left, the one whose cooldown ends first is sent anyway).
Firmness = Literal["always", "when stated", "never"]


@dataclass(frozen=True)
class Policy:
    """How one kind of outcome treats the credential that got it."""

    base: float  # first cooldown in seconds; 0: none
    cap: float  # each further failure of the kind doubles the cooldown, up to this
    upstream_hint: bool  # a wait the upstream names (Retry-After, reset headers) replaces the doubling
    per_model: bool  # follows the provider's cooldown_scope; otherwise always the whole credential
    try_another: bool  # the same request may be sent again with another credential
    needs_attention: bool  # a person must look at the key: logged loudly, flagged in status
    state: State  # how status shows the credential while the cooldown lasts
    firm: Firmness  # "when stated": only a wait the upstream named blocks; our guess only orders


MINUTE, HOUR = 60.0, 3600.0
POLICIES: dict[Kind, Policy] = {
    "success": Policy(0, 0, False, False, False, False, "healthy", "never"),
    # 429. Exact upstream waits, never rounded up: a cooldown outliving the real quota
    # window is CLIProxyAPI's most reported bug (#4724, #5277). A 429 that names no wait
    # may be a concurrency limit (GLM allows one request at a time per key) as much as a
    # spent quota: the backoff then only orders the key last.
    "rate_limit": Policy(5, 30 * MINUTE, True, True, True, False, "cooling", "when stated"),
    # 401, 402: revoked, mistyped or out of credit; retrying soon only burns requests.
    "auth": Policy(6 * HOUR, 6 * HOUR, False, False, True, True, "needs attention", "always"),
    # 403: as above, but Anthropic and OpenAI also answer it for a model the key may not use.
    "forbidden": Policy(6 * HOUR, 6 * HOUR, False, True, True, True, "needs attention", "always"),
    # 408, 5xx, 529, a connection reset: the provider's host is struggling, not the key's
    # quota spent, even with a Retry-After (which most APIs and mocks put on every 503):
    # one such answer blocking the key turned 5 % of 503s into 75 % local refusals
    # (issue 16). Another key may get through; the provider's breaker (breakers.py)
    # watches the error rate.
    "transient": Policy(10, 2 * MINUTE, True, True, True, False, "unhealthy", "never"),
    # Connect failures and timeouts: the host, not the key, failed, so another key of the
    # same provider would wait for the same host.
    "unreachable": Policy(10, 2 * MINUTE, False, False, False, False, "unhealthy", "never"),
    # 400, 404, 409, 413, 422 and other 4xx: the request is at fault. Replaying it on every
    # credential only spreads the failure (CLIProxyAPI #1747, #4410).
    "request": Policy(0, 0, False, False, False, False, "healthy", "never"),
    # The client went away: says nothing about the credential.
    "cancelled": Policy(0, 0, False, False, False, False, "healthy", "never"),
}
LADDER_STEPS = 20  # far past every cap; keeps 2**level finite

# Relays that wrap a validation error in a 5xx would otherwise cool every credential in
# turn for a request that can never succeed (CLIProxyAPI #6029).
_REQUEST_AT_FAULT = re.compile(r'"type"\s*:\s*"invalid_request_error"')
_TRANSPORT: dict[str, Kind] = {"timeout": "unreachable", "connect": "unreachable", "reset": "transient", "cancelled": "cancelled"}


def classify(outcome: Outcome, body: str | None = None) -> Kind:
    """The row of POLICIES that `outcome` falls under."""
    if isinstance(outcome, str):
        return _TRANSPORT[outcome]
    if outcome < 400:
        return "success"
    if outcome == 429:
        return "rate_limit"
    if outcome in (401, 402):
        return "auth"
    if outcome == 403:
        return "forbidden"
    if outcome == 408 or outcome >= 500:
        return "request" if body and _REQUEST_AT_FAULT.search(body) else "transient"
    return "request"


@dataclass(frozen=True)
class Cooldown:
    """A credential (or one of its models) is not used until `until`."""

    kind: Kind
    since: float
    until: float
    level: int  # step of the doubling ladder it was computed at
    reason: str
    status: Outcome
    model: str | None = None  # None: every model
    stated: bool = False  # the upstream named this wait; otherwise it is our backoff's guess

    def active(self, now: float) -> bool:
        return self.until > now

    @property
    def firm(self) -> bool:
        """Blocks the credential until it ends; otherwise it only orders it (Policy.firm)."""
        firm = POLICIES[self.kind].firm
        return firm == "always" or (firm == "when stated" and self.stated)


_REASONS: dict[Kind, str] = {
    "rate_limit": "rate limited",
    "auth": "the key was refused (revoked, mistyped or out of credit?)",
    "forbidden": "forbidden (key revoked, or no access to this model?)",
    "transient": "upstream error",
    "unreachable": "upstream unreachable",
}
_FAILURE_NAMES = {"timeout": "timed out", "connect": "connection failed", "reset": "connection reset"}


def next_cooldown(
    previous: Cooldown | None, kind: Kind, outcome: Outcome, hint: float | None, now: float, model: str | None,
    sent: float,
) -> Cooldown:
    """The cooldown in force after a failure of a kind that cools (POLICIES base > 0),
    given the one before for the same credential and model; `sent`: when the failed
    request was sent."""
    policy = POLICIES[kind]
    assert policy.base > 0, f"{kind} outcomes do not cool a credential"
    same = previous is not None and previous.kind == kind
    level = previous.level if same and previous is not None else 0
    what = f"{_FAILURE_NAMES.get(str(outcome), outcome)}: {_REASONS[kind]}"
    if hint is not None and policy.upstream_hint:
        # The latest word of the upstream wins, even when it is shorter.
        reason = f"{what}; the upstream said retry in {span(hint)}"
        candidate = Cooldown(kind, now, now + hint, level, reason, outcome, model, stated=True)
    elif same and previous is not None and previous.active(now) and sent <= previous.since:
        return previous  # requests in flight when the window opened do not climb the ladder
    else:
        level = min(level + 1, LADDER_STEPS) if same else 0
        seconds = min(policy.base * 2**level, policy.cap)
        suffix = f"; backing off {span(seconds)}" if policy.cap > policy.base else ""
        candidate = Cooldown(kind, now, now + seconds, level, what + suffix, outcome, model)
    if previous is None or not previous.active(now):
        return candidate
    return prevailing(previous, candidate)


def prevailing(previous: Cooldown, candidate: Cooldown) -> Cooldown:
    """Which of two active cooldowns of one credential and model stays, `candidate` being
    the newer: for a new failure, and for one another gateway of the fleet reports."""
    if previous.firm != candidate.firm:
        # A block outlasts any ordering: a 503 racing a 429's Retry-After must not open
        # the key before its quota is back (nor a hiccup a refused key).
        return previous if previous.firm else candidate
    if previous.kind == candidate.kind:
        return candidate  # the latest word on the same thing
    if candidate.stated and not previous.stated and not POLICIES[previous.kind].needs_attention:
        return candidate  # the upstream's word beats our guess
    return previous if previous.until >= candidate.until else candidate


def upstream_delay(headers: Mapping[str, str], body: str | None, now: float) -> float | None:
    """Seconds the upstream asked to wait, from the first source that names a usable one."""
    lowered = {name.lower(): value.strip() for name, value in headers.items()}
    for seconds in (_retry_after_ms(lowered), _retry_after(lowered, now), _body_delay(body, now), _reset_delay(lowered, now)):
        if seconds is not None and seconds > 0:  # a reset in the past (clock skew) says nothing usable
            return seconds
    return None


def subscription_exhausted(headers: Mapping[str, str]) -> bool:
    """Anthropic's unified (subscription) limits span every model of the account."""
    return any(
        name.lower().startswith("anthropic-ratelimit-unified") and name.lower().endswith("status")
        and not value.strip().startswith("allowed")
        for name, value in headers.items()
    )


def _retry_after_ms(headers: Mapping[str, str]) -> float | None:
    number = _number(headers.get("retry-after-ms"))
    return number / 1000 if number is not None else None


def _retry_after(headers: Mapping[str, str], now: float) -> float | None:
    value = headers.get("retry-after")
    return delay(value, now) if value else None


# Google: error.details[].retryDelay "34s" (RetryInfo); OpenAI Codex's usage limit:
# resets_in_seconds, or resets_at in epoch seconds (CLIProxyAPI codex_executor_terminal.go).
_BODY_DELAY = re.compile(r'"retryDelay"\s*:\s*"(\d+(?:\.\d+)?)s"|"resets_in_seconds"\s*:\s*(\d+(?:\.\d+)?)')
_BODY_RESET = re.compile(r'"resets_at"\s*:\s*(\d+(?:\.\d+)?)')


def _body_delay(body: str | None, now: float) -> float | None:
    if not body:
        return None
    if found := _BODY_DELAY.search(body):
        return float(found.group(1) or found.group(2))
    if found := _BODY_RESET.search(body):
        return delay(found.group(1), now)
    return None


_ANTHROPIC_RESET = re.compile(r"anthropic-ratelimit-(.+)-reset")
_X_RESET = re.compile(r"x-ratelimit-reset(-.+)?")


def _reset_delay(headers: Mapping[str, str], now: float) -> float | None:
    """From per-limit reset headers: the latest reset among exhausted limits; when no
    header says which limit ran out, the earliest (a too-early retry just learns more)."""
    if headers.get("anthropic-ratelimit-unified-reset") and subscription_exhausted(headers):
        # The account-wide verdict; per-window headers may name windows that do not bind.
        return delay(headers["anthropic-ratelimit-unified-reset"], now)
    exhausted: list[float] = []
    unknown: list[float] = []
    for name, value in headers.items():
        if found := _ANTHROPIC_RESET.fullmatch(name):
            remaining = headers.get(f"anthropic-ratelimit-{found.group(1)}-remaining")
            status = headers.get(f"anthropic-ratelimit-{found.group(1)}-status")
        elif found := _X_RESET.fullmatch(name):
            remaining, status = headers.get(f"x-ratelimit-remaining{found.group(1) or ''}"), None
        else:
            continue
        when = delay(value, now)
        if when is None:
            continue
        if (remaining is not None and (_number(remaining) or 0) <= 0) or (status and not status.startswith("allowed")):
            exhausted.append(when)
        elif remaining is None and status is None:
            unknown.append(when)
    if exhausted:
        return max(exhausted)
    return min(unknown) if unknown else None


_DURATION = re.compile(r"(?:\d+(?:\.\d+)?(?:h|ms|m|s))+")
_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(h|ms|m|s)")
_UNIT = {"h": HOUR, "m": MINUTE, "s": 1.0, "ms": 0.001}


def delay(value: str, now: float) -> float | None:
    """Seconds from `now` to what a retry or reset value names: a delay in seconds, a Go
    duration ("6m0s", OpenAI), epoch seconds or milliseconds, an RFC 3339 time
    (Anthropic) or an HTTP date (Retry-After)."""
    value = value.strip()
    number = _number(value)
    if number is not None:
        if number > 1e12:
            return number / 1000 - now
        return number - now if number > 1e9 else number
    if _DURATION.fullmatch(value):
        return sum(float(n) * _UNIT[unit] for n, unit in _DURATION_PART.findall(value))
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        pass
    else:
        return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp() - now
    try:
        return email.utils.parsedate_to_datetime(value).timestamp() - now
    except (TypeError, ValueError, IndexError):
        return None


def _number(value: str | None) -> float | None:
    try:
        number = float(value) if value is not None else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None


# Where an upstream names its wait in seconds; an answer carrying either needs no other.
RETRY_HEADERS = ("retry-after", "retry-after-ms")


def retry_after(until: float, now: float) -> int:
    """Retry-After for a wait ending at `until`: whole seconds, rounded up so a client
    that obeys it never comes early, and at least 1."""
    return max(1, math.ceil(until - now))


def names_a_wait(headers: Mapping[str, str]) -> bool:
    return any(name.lower() in RETRY_HEADERS for name in headers)


def span(seconds: float) -> str:
    """A duration for people: '45 s', '2 min 30 s', '6 h'. Display only, rounded up."""
    whole = max(0, math.ceil(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours} h"] * bool(hours) + [f"{minutes} min"] * bool(minutes) + [f"{secs} s"] * bool(secs)
    return " ".join(parts) or "0 s"


def iso(when: float) -> str:
    """Wall-clock seconds as UTC ISO 8601, to the second."""
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
