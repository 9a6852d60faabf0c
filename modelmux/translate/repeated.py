"""What a session sends again, translated and written as JSON once. Pure.

Claude Code sends the same tools with every request of a session, and validation.Recent
gives a repeated tool the same parsed item each time. A translator's tools are a
function of those items alone, so `section` builds them once per distinct list of items
and hands the same list out again; `written` is that list's JSON text, which
upstream_json puts into the body instead of writing the tools again (on the bench's 24
tools: about 100 µs of a translated request's 400).

A section is shared between requests: nothing may change it in place
(tests/test_body_untouched.py)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

KEPT = 32  # distinct tool lists (sessions, and tool sets within one) kept; then all are dropped

_WRITE = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode


class _Section:
    __slots__ = ("items", "value", "text")

    def __init__(self, items: tuple[Any, ...], value: list[Any]) -> None:
        self.items = items  # kept alive, so that their ids name no other object
        self.value = value
        self.text: str | None = None  # the value's JSON, once a body with it is written


_sections: dict[tuple[Callable[..., Any], tuple[int, ...]], _Section] = {}
_by_value: dict[int, _Section] = {}  # id of a section's value → it


def section(items: Sequence[Any], build: Callable[[Sequence[Any]], list[Any]]) -> list[Any]:
    """build(items), built once for the same items (the same objects, in order) and the
    same `build`, which must read nothing but `items`."""
    key = (build, tuple(map(id, items)))
    if (known := _sections.get(key)) is not None:
        return known.value
    if len(_sections) >= KEPT:
        _sections.clear()
        _by_value.clear()
    known = _sections[key] = _Section(tuple(items), build(items))
    _by_value[id(known.value)] = known
    return known.value


def written(value: Any) -> str | None:
    """The JSON text of `value` when it is a section `section` gave, written once."""
    known = _by_value.get(id(value))
    if known is None or known.value is not value:
        return None
    if known.text is None:
        known.text = _WRITE(value)
    return known.text
