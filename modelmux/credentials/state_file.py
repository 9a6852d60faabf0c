"""The credential state file: cooldowns with their real expiry times, counters and the
quota each credential's answers last named, so a restart neither forgets a 5-hour quota
block nor keeps one that has expired, and shows the quota as it was last seen. The
client's own logins on passthrough (client_logins.py) keep their quota here too.

Plain data in and out; `Pools.dump`/`Pools.restore` decide what to store and apply.
Reading keeps every entry that can be used and says what it could not use (docs/credentials.md).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import NoneType
from typing import Any, get_args

from modelmux.config.file_problems import CORRUPT, FileProblem, listed, plural, reason
from modelmux.config.paths import config_state
from modelmux.credentials.client_logins import Login
from modelmux.credentials.cooldowns import POLICIES, Cooldown, Outcome, TransportFailure, iso
from modelmux.credentials.quota import Quota, Window

VERSION = 1


@dataclass(frozen=True)
class Stored:
    """One credential's saved state, matched on load by provider and label."""

    provider: str
    label: str
    fingerprint: str  # of the key: a replaced key must not inherit the old one's cooldowns
    requests: int
    errors: int
    input_tokens: int
    output_tokens: int
    last_status: Outcome | None
    cooldowns: tuple[Cooldown, ...]
    quota: Quota | None = None  # what its last answer said of its quota (a file of an older version has none)


SUFFIX = ".state.json"


def state_path(config_path: Path, environ: Mapping[str, str]) -> Path:
    """Where a config's credential state lives: one file per config, in the state
    directory (`paths.config_state`)."""
    return config_state(config_path, SUFFIX, environ)


def dump(entries: list[Stored], now: float, logins: list[Login] | None = None) -> bytes:
    document = {
        "version": VERSION,
        "saved_at": iso(now),
        "credentials": [
            {
                "provider": e.provider,
                "label": e.label,
                "fingerprint": e.fingerprint,
                "requests": e.requests,
                "errors": e.errors,
                "input_tokens": e.input_tokens,
                "output_tokens": e.output_tokens,
                "last_status": e.last_status,
                "cooldowns": [cooldown_document(c) for c in e.cooldowns],
                "quota": None if e.quota is None else quota_document(e.quota),
            }
            for e in entries
        ],
        # Older versions read only `credentials`: a file of this one loads there too.
        "logins": [
            {"provider": login.provider, "fingerprint": login.fingerprint, "kind": login.kind,
             "quota": quota_document(login.quota)}
            for login in logins or ()
        ],
    }
    return json.dumps(document, indent=1, ensure_ascii=False).encode()


def cooldown_document(c: Cooldown) -> dict[str, Any]:
    """One cooldown as the state file (and the fleet's shared state) keeps it."""
    return {
        "model": c.model,
        "kind": c.kind,
        "since": c.since,
        "until": c.until,
        "until_utc": iso(c.until),  # for people reading the file
        "level": c.level,
        "reason": c.reason,
        "status": c.status,
        "stated": c.stated,
    }


def quota_document(q: Quota) -> dict[str, Any]:
    """A quota as the state file keeps it: as it was seen, times as Unix seconds."""
    return {
        "source": q.source,
        "seen": q.seen,
        "seen_utc": iso(q.seen),  # for people reading the file
        "status": q.status,
        "resets_at": q.resets_at,
        "binding": q.binding,
        "windows": [{"name": w.name, "used": w.used, "resets_at": w.resets_at, "status": w.status} for w in q.windows],
    }


def write_private(path: Path, data: bytes) -> None:
    """Replace `path` atomically with `data`, readable by the owner only: a crash
    mid-write leaves the previous file whole."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


# -- reading ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Loaded:
    entries: list[Stored]  # every entry that could be used
    problem: FileProblem | None  # what could not, and where the original bytes went
    logins: list[Login] = field(default_factory=list)  # the client's logins that could be used


NOTHING = "nothing: cooldowns and counters start afresh"  # kept of a file that cannot be used at all


def read(path: Path) -> Loaded:
    """The usable entries of the state file at `path`. Never raises: bad state must not
    stop the gateway. A file that cannot be used at all is renamed to <name>.corrupt,
    so the next save does not destroy the evidence; a file with some bad entries keeps
    the good ones, and its bytes are copied to <name>.corrupt for the same reason. A
    missing file is a first start."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return Loaded([], None)
    except OSError as e:
        return Loaded([], _unusable(path, f"cannot be read ({reason(e)})"))
    try:
        items, login_items = _items(data)
    except ValueError as e:
        return Loaded([], _unusable(path, str(e)))
    entries: list[Stored] = []
    skipped = Skipped()
    for index, item in enumerate(items):
        where = _where(index, item)
        try:
            entry, bad = _entry(item)
        except ValueError as e:
            skipped.entries.append(f"{where}: {e}")
            continue
        entries.append(entry)
        for part, why in bad:
            skipped.parts.setdefault(part, []).append(f"{where} {why}")
    logins: list[Login] = []
    for index, item in enumerate(login_items):
        try:
            logins.append(_login(item))
        except ValueError as e:
            skipped.logins.append(f"logins[{index}]: {e}")
    if not skipped:
        return Loaded(entries, None, logins)
    return Loaded(entries, _partly_used(path, data, len(items), len(login_items), skipped), logins)


@dataclass
class Skipped:
    """What of a state file could not be used, each with where it is and why."""

    entries: list[str] = field(default_factory=list)  # whole credential entries
    parts: dict[str, list[str]] = field(default_factory=dict)  # "cooldown", "quota": of entries that were kept
    logins: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.entries or self.parts or self.logins)


def _partly_used(path: Path, data: bytes, total: int, logins: int, skipped: Skipped) -> FileProblem:
    """Say what was skipped, and copy the bytes aside: the next save rewrites the file
    without the bad entries."""
    entries = plural(total, "credential entry", "credential entries")
    login_entries = plural(logins, "login entry", "login entries")
    what = [f"{len(skipped.entries)} of {entries}"] if skipped.entries else []
    what += [plural(len(reasons), part) for part, reasons in skipped.parts.items()]
    what += [f"{len(skipped.logins)} of {login_entries}"] if skipped.logins else []
    kept = f"{total - len(skipped.entries)} of {entries}"
    if skipped.parts:
        kept += ", without " + " and ".join(plural(len(reasons), f"bad {part}") for part, reasons in skipped.parts.items())
    kept += f"; {logins - len(skipped.logins)} of {login_entries}" if skipped.logins else ""
    reasons = skipped.entries + [reason for each in skipped.parts.values() for reason in each] + skipped.logins
    problem = f"skipped {' and '.join(what)} that could not be used: {listed(reasons)}"
    aside = path.with_name(path.name + CORRUPT)
    try:
        write_private(aside, data)
    except OSError as e:
        return FileProblem(str(path), f"{problem}; no copy could be kept ({reason(e)})", kept)
    return FileProblem(str(path), problem, kept, str(aside))


def _items(data: bytes) -> tuple[list[Any], list[Any]]:
    """The document's lists of credential and login entries (an older version's file has
    no logins). Raises ValueError saying why there is none."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"not UTF-8 text (byte {e.start})") from None
    try:
        document = json.loads(text)
    except ValueError as e:  # the message names the place only, never the text there
        raise ValueError(f"not JSON ({e})") from None
    if not isinstance(document, dict):
        raise ValueError("not a credential state document (not a JSON object)")
    version = document.get("version")
    if version != VERSION:
        # A number is safe to quote (a newer modelmux's file says which); text is not ours to repeat.
        found = f"version {version}" if type(version) is int else "no version number"
        raise ValueError(f"not a version {VERSION} credential state document ({found})")
    items = document.get("credentials")
    if not isinstance(items, list):
        raise ValueError("its credentials are not a list")
    logins = document.get("logins", [])
    if not isinstance(logins, list):
        raise ValueError("its logins are not a list")
    return items, logins


def _where(index: int, item: Any) -> str:
    """credentials[2] (zai/main): the entry's place, and whose it is when that can be told."""
    if isinstance(item, dict) and isinstance(item.get("provider"), str) and isinstance(item.get("label"), str):
        return f"credentials[{index}] ({item['provider']}/{item['label']})"
    return f"credentials[{index}]"


def _entry(item: Any) -> tuple[Stored, list[tuple[str, str]]]:
    """One entry, and which of its parts (a cooldown, its quota) were left out and why: a
    cooldown of a kind this version does not know must not cost the counters. Raises
    ValueError for an entry that cannot be used."""
    if not isinstance(item, dict):
        raise ValueError("not a JSON object")
    cooldowns: list[Cooldown] = []
    bad: list[tuple[str, str]] = []
    for index, each in enumerate(_field(item, "cooldowns", list)):
        try:
            cooldowns.append(cooldown_of(each))
        except ValueError as e:
            bad.append(("cooldown", f"cooldowns[{index}]: {e}"))
    seen = None
    try:
        seen = quota_of(item["quota"]) if item.get("quota") is not None else None  # none in an older version's file
    except ValueError as e:
        bad.append(("quota", f"quota: {e}"))
    entry = Stored(
        provider=_field(item, "provider", str),
        label=_field(item, "label", str),
        fingerprint=_field(item, "fingerprint", str),
        requests=_count(item, "requests"),
        errors=_count(item, "errors"),
        input_tokens=_count(item, "input_tokens"),
        output_tokens=_count(item, "output_tokens"),
        last_status=_outcome(item, "last_status", NoneType),
        cooldowns=tuple(cooldowns),
        quota=seen,
    )
    return entry, bad


def _login(item: Any) -> Login:
    """One of the client's logins. Raises ValueError saying what is wrong with it."""
    if not isinstance(item, dict):
        raise ValueError("not a JSON object")
    return Login(_field(item, "provider", str), _field(item, "fingerprint", str),
                 _field(item, "kind", (str, NoneType)), quota_of(_field(item, "quota", dict)))


def quota_of(item: Any) -> Quota:
    """A quota_document read back. Raises ValueError saying what is wrong with it."""
    if not isinstance(item, dict):
        raise ValueError("not a JSON object")
    source = _field(item, "source", str)
    if source not in ("anthropic", "codex"):
        raise ValueError("its source is neither anthropic nor codex")
    windows = []
    for index, each in enumerate(_field(item, "windows", list)):
        if not isinstance(each, dict):
            raise ValueError(f"windows[{index}] is not a JSON object")
        try:
            windows.append(Window(_field(each, "name", str), _time(each, "used", NoneType),
                                  _time(each, "resets_at", NoneType), _field(each, "status", (str, NoneType))))
        except ValueError as e:
            raise ValueError(f"windows[{index}]: {e}") from None
    return Quota(source, tuple(windows), _time(item, "seen"), _field(item, "status", (str, NoneType)),  # type: ignore[arg-type]
                 _time(item, "resets_at", NoneType), _field(item, "binding", (str, NoneType)))


def cooldown_of(item: Any) -> Cooldown:
    """A cooldown_document read back. Raises ValueError saying what is wrong with it."""
    if not isinstance(item, dict):
        raise ValueError("not a JSON object")
    kind = _field(item, "kind", str)
    if kind not in POLICIES or POLICIES[kind].base == 0:  # type: ignore[index]
        raise ValueError("its kind is not one that cools a credential")
    model = _field(item, "model", (str, NoneType))
    return Cooldown(
        kind=kind,
        since=_time(item, "since"),
        until=_time(item, "until"),
        level=_count(item, "level"),
        reason=_field(item, "reason", str),
        status=_outcome(item, "status"),  # type: ignore[arg-type]
        model=model,
        stated=_field(item, "stated", bool),
    )


_NAMES = {str: "text", int: "a whole number", float: "a number", bool: "true or false", list: "a list",
          dict: "a JSON object", NoneType: "null"}


def _field(item: dict[str, Any], name: str, types: type | tuple[type, ...]) -> Any:
    """item[name], of one of `types` by exact type: a bool is an int to isinstance, but a
    counter of `true` is corrupt, not 1."""
    if name not in item:
        raise ValueError(f"no {name}")
    value = item[name]
    allowed = types if isinstance(types, tuple) else (types,)
    if type(value) not in allowed:
        named = [_NAMES.get(t, t.__name__) for t in allowed if not (t is int and float in allowed)]  # a number
        raise ValueError(f"{name} is not {' or '.join(named)}")
    return value


def _count(item: dict[str, Any], name: str) -> int:
    value = _field(item, name, int)
    if value < 0:
        raise ValueError(f"{name} is negative")
    return value


def _time(item: dict[str, Any], name: str, *also: type) -> Any:
    """A finite number (or one of `also`, such as null): Python's json reads NaN and
    Infinity, and a cooldown until Infinity would never end."""
    value = _field(item, name, (int, float, *also))
    if type(value) in also:
        return value
    if not math.isfinite(value):
        raise ValueError(f"{name} is not a finite number")
    return float(value)


def _outcome(item: dict[str, Any], name: str, *also: type) -> Outcome | None:
    value = _field(item, name, (int, str, *also))
    if isinstance(value, str) and value not in get_args(TransportFailure):
        raise ValueError(f"{name} is neither a status nor a known transport failure")
    return value


def _unusable(path: Path, problem: str) -> FileProblem:
    """Rename the whole file aside: the next save would otherwise replace it unseen."""
    aside = path.with_name(path.name + CORRUPT)
    try:
        os.replace(path, aside)
    except OSError as e:
        return FileProblem(str(path), f"{problem}; it could not be set aside ({reason(e)}), so the next save "
                           "replaces it", NOTHING)
    return FileProblem(str(path), problem, NOTHING, str(aside))
