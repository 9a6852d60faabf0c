"""How much of a subscription is left, as the upstream's own answers say it.

Anthropic answers a subscription login (Claude Pro/Max) with its unified rate-limit
headers, `anthropic-ratelimit-unified-<window>-{utilization,reset,status}` for the
5-hour (`5h`) and 7-day (`7d`, and per model family such as `7d_oi`) windows, with
the account's verdict in `anthropic-ratelimit-unified-{status,reset}` and the window
that binds in `-representative-claim`; utilization is a fraction (0.42), a reset epoch
seconds, a status `allowed`, `allowed_warning` or `rejected` (Claude Code's status line
and near-limit warnings read the same headers). The Codex backend answers a ChatGPT
login with `x-codex-{primary,secondary}-{used-percent,window-minutes,reset-at,
reset-after-seconds}` (percent 0-100; the primary window is usually 5 hours, the
secondary a week). Google's answers carry no such headers: Gemini's quota shows only in
a 429's `retryDelay`, which the cooldowns read.

Pure: fed an answer's headers and the time, it returns what they said; pools.py keeps
the latest per credential, `most-quota` picks by it, and the snapshot, /metrics and the
dashboard show it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any, Literal, NamedTuple, Protocol, TypeVar

from modelmux.credentials.cooldowns import delay, iso

_ANTHROPIC = b"anthropic-ratelimit-unified-"
_CODEX = b"x-codex-"
# The protocols whose upstreams name a quota: Anthropic's, and the Codex backend's Responses.
PROTOCOLS = frozenset({"anthropic", "openai-responses"})
_FIRST = frozenset({b"an", b"An", b"AN", b"x-", b"X-"})  # how their names begin, in the cases sent
# Anthropic's account-wide headers, by what follows the prefix; everything else named
# `<window>-<field>` is a window's.
_ACCOUNT = {"status", "reset", "representative-claim"}
_WINDOW_FIELDS = {"utilization", "reset", "status"}
# Codex names its windows by slot; their length names them as Anthropic's are named.
_LENGTHS = {300: "5h", 1440: "1d", 10080: "7d"}
_ORDER = {"5h": 0, "7d": 1}  # shown first; other windows after, by name
# Anthropic's pay-as-you-go extra usage beyond the plan: shown, but not a window of the
# plan whose quota is left (its status is `rejected` wherever extra usage is off).
OVERAGE = "overage"


class Window(NamedTuple):
    """One quota window of a credential: how much of it is used, and when it resets.
    (Tuples: an answer of a subscription makes a few on every request, and a frozen
    dataclass takes several times as long to build.)"""

    name: str  # "5h", "7d", "7d_oi", "overage"; Codex's by length, else "primary" / "secondary"
    used: float | None  # fraction used, 0 to 1 (Anthropic's utilization; Codex's percent / 100)
    resets_at: float | None  # epoch seconds
    status: str | None = None  # Anthropic's: allowed, allowed_warning, rejected

    def reset(self, now: float) -> bool:
        """Whether it has reset since it was seen (after a restart, or a long silence)."""
        return self.resets_at is not None and self.resets_at <= now

    def left(self, now: float) -> float | None:
        if self.reset(now):
            return 1.0
        if self.status == "rejected":
            return 0.0
        return None if self.used is None else round(min(1.0, max(0.0, 1.0 - self.used)), 6)


class Quota(NamedTuple):
    """What one answer said of its credential's quota."""

    source: Literal["anthropic", "codex"]
    windows: tuple[Window, ...]
    seen: float  # when the answer came
    status: str | None = None  # Anthropic's account-wide verdict
    resets_at: float | None = None  # when that verdict ends
    binding: str | None = None  # the window that binds (Anthropic's representative claim: five_hour, seven_day)
    cacheable: bool = True  # its times do not depend on when it was read (Codex's reset-after-seconds do)

    def left(self, now: float) -> float | None:
        """The fraction left of the tightest window (0 while the account is refused); None
        when the answer named no usage."""
        if self.status == "rejected" and (self.resets_at is None or self.resets_at > now):
            return 0.0
        known = [left for window in self.windows if window.name != OVERAGE and (left := window.left(now)) is not None]
        return min(known, default=None)

    def brief(self) -> dict[str, Any]:
        """For the flow's summary, made on every answer that names a quota: as `describe`,
        with times as epoch seconds (formatting them costs more than reading them)."""
        return {
            "source": self.source,
            "left": self.left(self.seen),
            "status": self.status,
            "resets_at": self.resets_at,
            "binding": self.binding,
            "windows": [{"name": w.name, "used": w.used, "resets_at": w.resets_at, "status": w.status}
                        for w in self.windows],
        }

    def describe(self, now: float) -> dict[str, Any]:
        """As the snapshot, `modelmux status --json` and the dashboard show it: as it was
        seen (`seen_at`), except that a window whose reset has passed since shows as
        reset (nothing used, no verdict, `reset` true), as `left` counts it; so does the
        account's verdict once its own reset has passed."""
        left = self.left(now)
        over = self.resets_at is not None and self.resets_at <= now
        return {
            "source": self.source,
            "left": None if left is None else round(left, 4),
            "status": None if over else self.status,
            "resets_at": _when(self.resets_at),
            "binding": self.binding,
            "seen_at": iso(self.seen),
            "windows": [_window(w, now) for w in self.windows],
        }


def read(fields: Iterable[tuple[bytes, bytes]], now: float) -> Quota | None:
    """The quota an answer's header fields (raw name and value pairs) name, None when they
    name none (most providers'). It runs on every answer a pooled credential of Anthropic
    or Codex gets: one pass over raw bytes (2 µs for 17 headers), and an answer that
    repeats the last one's values (most do, utilization moves in hundredths) is not
    parsed again (4 µs with Anthropic's headers, 12 µs parsed)."""
    found = []
    for name, value in fields:
        if name[:2] not in _FIRST:  # most headers end here
            continue
        if not name.islower():
            name = name.lower()
        if name.startswith(_ANTHROPIC) or name.startswith(_CODEX):
            found.append((name, value))
    if not found:
        return None
    key = tuple(found)
    parsed = _parsed.get(key)
    if parsed is None:
        parsed = _parse(found, now)
        if len(_parsed) >= _PARSED_LIMIT:
            _parsed.clear()
        if parsed.cacheable:
            _parsed[key] = parsed
    return parsed._replace(seen=now)


# Parsed answers by their raw quota headers: Anthropic's resets are absolute times, so
# the same headers mean the same quota at any moment (Codex's relative resets are not kept).
_parsed: dict[tuple[tuple[bytes, bytes], ...], Quota] = {}
_PARSED_LIMIT = 256


def _parse(found: list[tuple[bytes, bytes]], now: float) -> Quota:
    anthropic: dict[str, str] = {}
    codex: dict[str, str] = {}
    for name, value in found:
        if name.startswith(_ANTHROPIC):
            anthropic[name[len(_ANTHROPIC):].decode("latin-1")] = value.decode("latin-1").strip()
        else:
            codex[name[len(_CODEX):].decode("latin-1")] = value.decode("latin-1").strip()
    return _anthropic(anthropic, now) if anthropic else _codex(codex, now)


def read_mapping(headers: Mapping[str, str], now: float) -> Quota | None:
    """`read` for headers as a plain mapping (tests)."""
    return read(encoded(headers), now)


def encoded(headers: Mapping[str, str]) -> list[tuple[bytes, bytes]]:
    """Headers as raw fields. A failed attempt's may hold a value already redacted
    (`label…last4`), which no header encoding has: encoded as UTF-8."""
    return [(name.encode("utf-8", "replace"), value.encode("utf-8", "replace")) for name, value in headers.items()]


class Holder(Protocol):
    """A pool's member, as far as its quota goes (pools.Member)."""

    quota: Quota | None
    in_flight: int


H = TypeVar("H", bound=Holder)


def observe(member: Holder, fields: Iterable[tuple[bytes, bytes]], now: float) -> None:
    """Keep what an answer to `member`'s credential said of its quota (its raw header
    fields); an answer that says nothing leaves the last word standing."""
    if (seen := read(fields, now)) is not None:
        member.quota = seen


def most_left(usable: Iterable[H], now: float) -> H:
    """The credential with the most quota left; one never heard from counts as full (its
    first answer tells), a tie goes to fewer requests in flight, then to the one listed first."""
    return max(usable, key=lambda m: (_left_of(m, now), -m.in_flight))


def _left_of(member: Holder, now: float) -> float:
    left = member.quota.left(now) if member.quota is not None else None
    return 1.0 if left is None else left


def _anthropic(fields: dict[str, str], now: float) -> Quota:
    windows: dict[str, dict[str, str]] = {}
    for rest, value in fields.items():
        if rest in _ACCOUNT:
            continue
        window, _, field = rest.rpartition("-")
        if window and field in _WINDOW_FIELDS:
            windows.setdefault(window, {})[field] = value
    return Quota(
        "anthropic",
        _ordered(Window(name, _number(f.get("utilization")), _reset(f.get("reset"), now), f.get("status") or None)
                 for name, f in windows.items()),
        now,
        fields.get("status") or None,
        _reset(fields.get("reset"), now),
        fields.get("representative-claim") or None,
    )


def _codex(fields: dict[str, str], now: float) -> Quota:
    windows = []
    relative = False
    for slot in ("primary", "secondary"):
        percent = _number(fields.get(f"{slot}-used-percent"))
        minutes = _number(fields.get(f"{slot}-window-minutes"))
        reset = _reset(fields.get(f"{slot}-reset-at"), now)
        if reset is None and (after := _number(fields.get(f"{slot}-reset-after-seconds"))) is not None:
            reset, relative = now + after, True
        if percent is None and reset is None:
            continue
        name = _LENGTHS.get(int(minutes), f"{int(minutes)}m") if minutes else slot
        windows.append(Window(name, None if percent is None else percent / 100, reset))
    return Quota("codex", _ordered(windows), now, cacheable=not relative)


def _ordered(windows: Iterable[Window]) -> tuple[Window, ...]:
    return tuple(sorted(windows, key=lambda w: (_ORDER.get(w.name, len(_ORDER)), w.name)))


def _number(value: str | None) -> float | None:
    try:
        number = float(value) if value else None
    except ValueError:
        return None
    return number if number is not None and math.isfinite(number) else None  # "inf" is a float too


def _reset(value: str | None, now: float) -> float | None:
    seconds = delay(value, now) if value else None
    return None if seconds is None else now + seconds


def _window(window: Window, now: float) -> dict[str, Any]:
    reset = window.reset(now)
    return {"name": window.name, "used": 0.0 if reset and window.used is not None else window.used,
            "resets_at": _when(window.resets_at),
            "seconds_left": None if window.resets_at is None else round(max(0.0, window.resets_at - now), 1),
            "status": None if reset else window.status, "reset": reset}


def _when(at: float | None) -> str | None:
    return None if at is None else iso(at)
