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

from modelmux.translate.validation import RECENT

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
    """The JSON text of `value` when it is a section `section` gave (written once), a
    piece `translated` gave, or a list with such pieces (the others written now)."""
    known = _by_value.get(id(value))
    if known is not None and known.value is value:
        if known.text is None:
            known.text = _WRITE(value)
        return known.text
    if type(value) is list:
        texts = [_translated.text(item) for item in value]
        if not any(texts):
            return None
        return "[" + ",".join(text or _WRITE(item) for text, item in zip(texts, value)) + "]"
    return _translated.text(value)


# -- items translated once ----------------------------------------------------------
# The earlier turns of a conversation come again with every request, as the same parsed
# items (validation.Recent), and a translator's messages for one of them depend on that
# item and a few settings only. `translated` builds them once; each message's JSON
# (`written`) is what upstream_json puts into the body instead of writing the message
# again (on the bench's request: about 300 µs of a Chat request's 500). They are kept as
# long as Recent holds their items (as validation.Kept keeps values), so that a turn
# no later request sends is not kept alive here.


class _Entry:
    __slots__ = ("item", "value", "texts")

    def __init__(self, item: Any, value: list[Any]) -> None:
        self.item = item
        self.value = value
        self.texts: list[str | None] = [None] * len(value)


class _Translated:
    """Two generations, RECENT's: an entry goes when Recent's generation after the one it
    was made or last used in ends, and only items Recent holds get one."""

    def __init__(self) -> None:
        self._generation = RECENT.generation
        self._new: dict[tuple[Any, ...], _Entry] = {}
        self._old: dict[tuple[Any, ...], _Entry] = {}
        self._pieces_new: dict[int, tuple[_Entry, int]] = {}  # id of a value's element → where it is
        self._pieces_old: dict[int, tuple[_Entry, int]] = {}

    def get(self, build: Callable[..., list[Any]], item: Any, args: tuple[Any, ...]) -> list[Any]:
        self._follow()
        key = (build, _identity(item), args)
        if (entry := self._new.get(key)) is not None:
            return entry.value
        entry = self._old.get(key)
        if entry is None:
            entry = _Entry(item, build(item, *args))
        if all(map(RECENT.holds, item if isinstance(item, tuple) else (item,))):
            self._new[key] = entry
            for index, piece in enumerate(entry.value):
                self._pieces_new[id(piece)] = (entry, index)
        return entry.value

    def text(self, piece: Any) -> str | None:
        self._follow()
        found = self._pieces_new.get(id(piece)) or self._pieces_old.get(id(piece))
        if found is None:
            return None
        entry, index = found
        if entry.value[index] is not piece:
            return None
        if (text := entry.texts[index]) is None:
            text = entry.texts[index] = _WRITE(piece)
        return text

    def _follow(self) -> None:
        if (generation := RECENT.generation) != self._generation:
            follows = generation == self._generation + 1
            self._old, self._pieces_old = (self._new, self._pieces_new) if follows else ({}, {})
            self._new, self._pieces_new = {}, {}
            self._generation = generation

    def clear(self) -> None:
        self.__init__()  # type: ignore[misc]


def _identity(item: Any) -> Any:
    """An item is known by the object it is; a tuple of items by theirs."""
    return tuple(map(id, item)) if isinstance(item, tuple) else id(item)


_translated = _Translated()


def translated(build: Callable[..., list[Any]], item: Any, *args: Any) -> list[Any]:
    """build(item, *args), built once for the same `item` (the same object, or a tuple of
    the same objects, that validation.Recent gave out) and the same hashable `args`;
    `build` must read nothing else, and nothing may change what it built (the lists are
    shared between requests)."""
    return _translated.get(build, item, args)


def clear() -> None:
    """Forget everything built (tests)."""
    _sections.clear()
    _by_value.clear()
    _translated.clear()
