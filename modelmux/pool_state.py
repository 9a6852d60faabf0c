"""The credential state file: cooldowns with their real expiry times, and counters, so a
restart neither forgets a 5-hour quota block nor keeps one that has expired.

Plain data in and out; `Pools.save`/`Pools.load` decide what to store and apply.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args

from modelmux.cooldowns import POLICIES, Cooldown, Outcome, TransportFailure, iso
from modelmux.paths import config_state

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
                "cooldowns": [
                    {
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
                    for c in e.cooldowns
                ],
            }
            for e in entries
        ],
    }
    return json.dumps(document, indent=1, ensure_ascii=False).encode()


def parse(text: str) -> list[Stored]:
    """Raises ValueError (or TypeError, KeyError) naming what is wrong."""
    document = json.loads(text)
    if not isinstance(document, dict) or document.get("version") != VERSION:
        raise ValueError(f"not a version {VERSION} credential state document")
    return [_entry(item) for item in _typed(document["credentials"], list)]


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


def _entry(item: Any) -> Stored:
    item = _typed(item, dict)
    return Stored(
        provider=_typed(item["provider"], str),
        label=_typed(item["label"], str),
        fingerprint=_typed(item["fingerprint"], str),
        requests=_typed(item["requests"], int),
        errors=_typed(item["errors"], int),
        input_tokens=_typed(item["input_tokens"], int),
        output_tokens=_typed(item["output_tokens"], int),
        last_status=_outcome(item["last_status"], allow_none=True),
        cooldowns=tuple(_cooldown(c) for c in _typed(item["cooldowns"], list)),
    )


def _cooldown(item: Any) -> Cooldown:
    item = _typed(item, dict)
    kind = item["kind"]
    if kind not in POLICIES or POLICIES[kind].base == 0:
        raise ValueError(f"unknown cooldown kind {kind!r}")
    model = item["model"]
    return Cooldown(
        kind=kind,
        since=float(_typed(item["since"], (int, float))),
        until=float(_typed(item["until"], (int, float))),
        level=_typed(item["level"], int),
        reason=_typed(item["reason"], str),
        status=_outcome(item["status"], allow_none=False),  # type: ignore[arg-type]
        model=None if model is None else _typed(model, str),
        stated=_typed(item["stated"], bool),
    )


def _outcome(value: Any, allow_none: bool) -> Outcome | None:
    if value is None and allow_none:
        return None
    if isinstance(value, str) and value in get_args(TransportFailure):
        return value  # type: ignore[return-value]
    return int(_typed(value, int))


def _typed(value: Any, types: type | tuple[type, ...]) -> Any:
    # bool is an int to isinstance; a counter of `true` is a corrupt file, not 1.
    if (isinstance(value, bool) and types is not bool) or not isinstance(value, types):
        raise TypeError(f"expected {types}, got {value!r}")
    return value
