"""What a session sends again: parsed, translated and written as JSON once. Pure.

Claude Code sends each turn's tools, system blocks and earlier messages again byte for
byte. `Recent` gives an item whose text a body repeats as the value it parsed before
(validation.parse_placed reads the client's body with it), so that what is known of
that item can be known by its identity, for as long as Recent holds it (`Kept`): that
check passed it, its token count, its translation. `section` builds a translator's
tools once per distinct list of items; `translated` builds one turn's messages once;
`written` is the JSON text of either, which upstream_json puts into the body instead of
writing it again.

What is built here is shared between requests: nothing may change it in place
(tests/test_body_untouched.py)."""

from __future__ import annotations

import json
from collections.abc import Callable, Hashable, Sequence
from typing import Any, Generic, TypeVar


# json.loads' own pieces, to read a list's items one by one as json.loads reads them.
_SPACE = json.decoder.WHITESPACE.match
_scan_value = json.JSONDecoder().scan_once


# -- items parsed once ----------------------------------------------------------------


class Recent:
    """The items of recent bodies' lists, parsed, by their text. Claude Code sends each
    turn's tools, system blocks and earlier messages again byte for byte, and scanning
    them was most of a request's parse (a 79 KB request: 285 µs, the Router's largest
    cost). An item whose text a new body repeats is the same value, so a list is read
    item by item and a repeated item is taken as it was parsed.

    A JSON object or array ends where its own text says, so when the body's text at an
    item starts with an item seen before, that item is what a scan would read there.
    The values are shared between requests: nothing may change a request's body in place
    (tests/test_body_untouched.py holds every reader to that).

    Two generations of at most GENERATION characters each: a full one becomes the old,
    and an old item that is seen again moves to the new. What is known of an item by its
    identity lives as long as Recent holds the item, and no longer: whether `check`
    passed it (what it checks of an item depends on nothing else in the body), and what
    `Kept` keeps for other modules (its translation, its token count). Only an item this
    generation gave out (`holds`) gets such a fact: a fresh item that is not kept would
    only keep memory alive, since no later body gives it again."""

    KEY = 256  # an item is looked up by its first characters (tool results share their first 60)
    SMALLEST = KEY  # an item shorter than this is scanned again: it costs less than keeping it
    PER_KEY = 8  # items kept under one key (they share their first KEY characters)
    GENERATION = 1_000_000  # characters; parsed, an item takes 5 to 15 times its text's bytes
    HELD = 20_000  # items given out in one generation, at most (short items from earlier lists hold no text)
    ARRAYS = 4  # arrays remembered per field: the latest of as many conversations going on at once
    PROBES = 4  # an array's first items tried: all, all but the last, ... (each probe compares text)

    def __init__(self) -> None:
        self._new: dict[str, list[tuple[str, Any]]] = {}
        self._old: dict[str, list[tuple[str, Any]]] = {}
        self._size = 0  # characters in _new
        self.generation = 0
        # The items given out in this generation and the last, by id (kept alive here, so
        # that an id is not another's), and those of them check passed.
        self._held: dict[int, Any] = {}
        self._held_old: dict[int, Any] = {}
        self._passed: set[int] = set()
        self._passed_old: set[int] = set()
        # field → its latest arrays (_remember)
        self._arrays: dict[str, list[tuple[str, tuple[Any, ...], tuple[int | None, ...]]]] = {}

    def holds(self, item: Any) -> bool:
        """Whether this generation gave `item` out."""
        return self._held.get(id(item)) is item

    def passes(self, items: list[Any]) -> None:
        """validation.check passed `items` (those this generation gave out are noted)."""
        held = self._held
        self._passed.update(id(item) for item in items if held.get(id(item)) is item)

    def unchecked(self, items: list[Any]) -> list[int]:
        """The indexes of `items` validation.check has not passed (an id in either set
        is of an item held, so of no other object)."""
        passed, old = self._passed, self._passed_old
        return [index for index, item in enumerate(items) if id(item) not in passed and id(item) not in old]

    def _hold(self, item: Any) -> None:
        self._held[id(item)] = item
        if len(self._held) > self.HELD:
            self._rotate()

    def _rotate(self) -> None:
        self._old, self._new, self._size = self._new, {}, 0
        self._held_old, self._held = self._held, {}
        self._passed_old, self._passed = self._passed, set()
        self.generation += 1

    def items(self, text: str, at: int, every: bool = False, name: str = "") -> tuple[list[Any], int]:
        """The JSON array at `text[at]` ("["), and where it ends; json's errors. `every`:
        keep short items too (a tool: repeated.section knows a list by its items).
        `name`: the field the array is. An array that starts with the text of the first
        items of one read under that name before takes those items without looking each
        one up: a turn's messages are the last turn's and more (but for the last few,
        whose cache_control markers moved), its tools the same."""
        found: list[Any] = []
        start = at
        at = _SPACE(text, at + 1).end()
        if text[at] == "]":
            return found, at + 1
        ends: list[int | None] = []  # where each item ends, from `start`
        if (taken := self._taken(text, start, name)) is not None:
            found, ends, after = taken
            for item in found:
                self._hold(item)
            if text[after] == "]":
                return found, after + 1
            at = _SPACE(text, after + 1).end()
        while True:
            item, end = self._item(text, at, 0 if every else self.SMALLEST)
            found.append(item)
            at = _SPACE(text, end).end()
            if text[at] == "]":
                if name:
                    self._remember(name, text, start, end, found, ends)
                return found, at + 1
            if text[at] != ",":
                raise ValueError(f"expected ',' or ']' at {at}")
            ends.append(end - start)
            at = _SPACE(text, at + 1).end()

    def _taken(self, text: str, start: int, name: str) -> tuple[list[Any], list[int | None], int] | None:
        """The first items of an array read before that the one at `start` starts with,
        where they end, and where the text after them goes on (at a "," or "]"); None
        if none."""
        for array in self._arrays.get(name, ()):
            head, values, ends = array
            for count in range(len(values), max(0, len(values) - self.PROBES), -1):
                end = ends[count - 1]
                if end is None:  # a number there might go on
                    continue
                near = max(0, end - 64)  # the last characters first: another conversation's differ there
                if text[start + near : start + end] != head[near:end]:
                    continue
                if text.startswith(head if end == len(head) else head[:end], start):
                    after = _SPACE(text, start + end).end()
                    if text[after] in ",]":
                        return list(values[:count]), list(ends[:count]), after
        return None

    def _remember(self, name: str, text: str, start: int, end: int, values: list[Any], ends: list[int | None]) -> None:
        """Keep an array's text up to its last item's end, its items and where each ends
        (None for an item that is not an object or array: a number's text can go on)."""
        head = text[start:end]
        ends.append(end - start)
        ends_of = tuple(e if isinstance(v, (dict, list)) else None for e, v in zip(ends, values, strict=True))
        kept = [(head, tuple(values), ends_of)] + [a for a in self._arrays.get(name, ()) if a[0] != head]
        self._arrays[name] = kept[: self.ARRAYS]

    def _item(self, text: str, at: int, smallest: int) -> tuple[Any, int]:
        if text[at] != "{" and text[at] != "[":
            return _scan_value(text, at)
        key = text[at : at + self.KEY]
        for generation in (self._new, self._old):
            for known, value in generation.get(key, ()):
                if text.startswith(known, at):
                    if generation is self._old:
                        self._keep(key, known, value)
                    self._hold(value)
                    return value, at + len(known)
        value, end = _scan_value(text, at)
        if end - at >= smallest:
            self._keep(key, text[at:end], value)
            self._hold(value)
        return value, end

    def _keep(self, key: str, known: str, value: Any) -> None:
        kept = self._new.setdefault(key, [])
        kept.insert(0, (known, value))
        del kept[self.PER_KEY :]
        self._size += len(known)
        if self._size > self.GENERATION:
            self._rotate()


RECENT = Recent()

V = TypeVar("V")


class Kept(Generic[V]):
    """Values known by the identity of items RECENT gave out (a turn's translation, its
    token count), kept as long as it holds the items: two of its generations. A value
    is kept only for items this generation gave out, and moves with them to the next
    when they are given out again."""

    def __init__(self) -> None:
        self._generation = RECENT.generation
        self._new: dict[Hashable, tuple[tuple[Any, ...], V]] = {}
        self._old: dict[Hashable, tuple[tuple[Any, ...], V]] = {}

    def get(self, key: Hashable) -> V | None:
        self._follow()
        if (found := self._new.get(key)) is not None:
            return found[1]
        if (found := self._old.get(key)) is None:
            return None
        if all(map(RECENT.holds, found[0])):
            self._new[key] = found
        return found[1]

    def put(self, key: Hashable, items: tuple[Any, ...], value: V) -> None:
        """`value` for `key`, a key made of `items`' ids; not kept unless RECENT holds them."""
        self._follow()
        if all(map(RECENT.holds, items)):
            self._new[key] = (items, value)

    def _follow(self) -> None:
        if (generation := RECENT.generation) != self._generation:
            self._old = self._new if generation == self._generation + 1 else {}
            self._new = {}
            self._generation = generation



# -- tools translated once ---------------------------------------------------------

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
        texts = [_piece_text(item) for item in value]
        if not any(texts):
            return None
        return "[" + ",".join(text or _WRITE(item) for text, item in zip(texts, value)) + "]"
    return _piece_text(value)


# -- items translated once ----------------------------------------------------------
# The earlier turns of a conversation come again with every request, as the same parsed
# items (Recent), and a translator's messages for one of them depend on that
# item and a few settings only. `translated` builds them once; each message's JSON
# (`written`) is what upstream_json puts into the body instead of writing the message
# again (on the bench's request: about 300 µs of a Chat request's 500). Both are Kept:
# a turn no later request sends is not kept alive here.


class _Entry:
    __slots__ = ("value", "texts")

    def __init__(self, value: list[Any]) -> None:
        self.value = value
        self.texts: list[str | None] = [None] * len(value)


_ENTRIES: Kept[_Entry] = Kept()  # (build, the item's identity, args) → what build made
_PIECES: Kept[tuple[_Entry, int]] = Kept()  # id of an element of what build made → where it is


def _identity(item: Any) -> Any:
    """An item is known by the object it is; a tuple of items by theirs."""
    return tuple(map(id, item)) if isinstance(item, tuple) else id(item)


def translated(build: Callable[..., list[Any]], item: Any, *args: Any) -> list[Any]:
    """build(item, *args), built once for the same `item` (the same object, or a tuple of
    the same objects, that Recent gave out) and the same hashable `args`;
    `build` must read nothing else, and nothing may change what it built (the lists are
    shared between requests)."""
    key = (build, _identity(item), args)
    if (entry := _ENTRIES.get(key)) is not None:
        return entry.value
    entry = _Entry(build(item, *args))
    items = item if isinstance(item, tuple) else (item,)
    _ENTRIES.put(key, items, entry)
    for index, piece in enumerate(entry.value):
        _PIECES.put(id(piece), items, (entry, index))
    return entry.value


def _piece_text(piece: Any) -> str | None:
    """The JSON text of `piece` when it is an element of what `translated` gave, written once."""
    if (found := _PIECES.get(id(piece))) is None:
        return None
    entry, index = found
    if entry.value[index] is not piece:
        return None
    if (text := entry.texts[index]) is None:
        text = entry.texts[index] = _WRITE(piece)
    return text

