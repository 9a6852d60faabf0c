"""The credential state file: cooldowns with their real expiry times, and counters, so a
restart neither forgets a 5-hour quota block nor keeps one that has expired.

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
from dataclasses import dataclass
from pathlib import Path
from types import NoneType
from typing import Any, get_args

from modelmux.config.file_problems import CORRUPT, FileProblem, listed, plural, reason
from modelmux.config.paths import config_state
from modelmux.credentials.cooldowns import POLICIES, Cooldown, Outcome, TransportFailure, iso

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


SUFFIX = ".state.json"


def state_path(config_path: Path, environ: Mapping[str, str]) -> Path:
    """Where a config's credential state lives: one file per config, in the state
    directory (`paths.config_state`)."""
    return config_state(config_path, SUFFIX, environ)


def dump(entries: list[Stored], now: float) -> bytes:
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
            }
            for e in entries
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
        items = _items(data)
    except ValueError as e:
        return Loaded([], _unusable(path, str(e)))
    entries: list[Stored] = []
    skipped: list[str] = []  # whole entries
    dropped: list[str] = []  # single cooldowns of entries that were kept
    for index, item in enumerate(items):
        where = _where(index, item)
        try:
            entry, bad = _entry(item)
        except ValueError as e:
            skipped.append(f"{where}: {e}")
            continue
        entries.append(entry)
        dropped += [f"{where} {each}" for each in bad]
    if not skipped and not dropped:
        return Loaded(entries, None)
    return Loaded(entries, _partly_used(path, data, len(items), skipped, dropped))


def _partly_used(path: Path, data: bytes, total: int, skipped: list[str], dropped: list[str]) -> FileProblem:
    """Say what was skipped, and copy the bytes aside: the next save rewrites the file
    without the bad entries."""
    entries = plural(total, "credential entry", "credential entries")
    what = [f"{len(skipped)} of {entries}"] if skipped else []
    what += [plural(len(dropped), "cooldown")] if dropped else []
    kept = f"{total - len(skipped)} of {entries}"
    kept += f", without {plural(len(dropped), 'bad cooldown')}" if dropped else ""
    problem = f"skipped {' and '.join(what)} that could not be used: {listed(skipped + dropped)}"
    aside = path.with_name(path.name + CORRUPT)
    try:
        write_private(aside, data)
    except OSError as e:
        return FileProblem(str(path), f"{problem}; no copy could be kept ({reason(e)})", kept)
    return FileProblem(str(path), problem, kept, str(aside))


def _items(data: bytes) -> list[Any]:
    """The document's list of entries. Raises ValueError saying why there is none."""
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
    return items


def _where(index: int, item: Any) -> str:
    """credentials[2] (zai/main): the entry's place, and whose it is when that can be told."""
    if isinstance(item, dict) and isinstance(item.get("provider"), str) and isinstance(item.get("label"), str):
        return f"credentials[{index}] ({item['provider']}/{item['label']})"
    return f"credentials[{index}]"


def _entry(item: Any) -> tuple[Stored, list[str]]:
    """One entry, and why each of its cooldowns that cannot be used was left out: a
    cooldown of a kind this version does not know must not cost the counters. Raises
    ValueError for an entry that cannot be used."""
    if not isinstance(item, dict):
        raise ValueError("not a JSON object")
    cooldowns: list[Cooldown] = []
    bad: list[str] = []
    for index, each in enumerate(_field(item, "cooldowns", list)):
        try:
            cooldowns.append(cooldown_of(each))
        except ValueError as e:
            bad.append(f"cooldowns[{index}]: {e}")
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
    )
    return entry, bad


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


_NAMES = {str: "text", int: "a whole number", bool: "true or false", list: "a list", NoneType: "null"}


def _field(item: dict[str, Any], name: str, types: type | tuple[type, ...]) -> Any:
    """item[name], of one of `types` by exact type: a bool is an int to isinstance, but a
    counter of `true` is corrupt, not 1."""
    if name not in item:
        raise ValueError(f"no {name}")
    value = item[name]
    allowed = types if isinstance(types, tuple) else (types,)
    if type(value) not in allowed:
        raise ValueError(f"{name} is not {' or '.join(_NAMES.get(t, t.__name__) for t in allowed)}")
    return value


def _count(item: dict[str, Any], name: str) -> int:
    value = _field(item, name, int)
    if value < 0:
        raise ValueError(f"{name} is negative")
    return value


def _time(item: dict[str, Any], name: str) -> float:
    # Python's json reads NaN and Infinity: a cooldown until Infinity would never end.
    value = _field(item, name, (int, float))
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
