"""The shape of an Anthropic Messages request (and count_tokens), checked at the edge. Pure.

Routing, the token estimate and the translators read the client's body as the
Messages API defines it. Before this check, `messages` as a string, `content` as a
number, a tool name that was no string or an image `source` that was no object
raised inside them: a 500 with a traceback, which SDKs retry (issue 17). So every
field they read is checked for its type here, and a body that is not what the API
defines is the client's 400, naming the field as Anthropic names it
(`messages.0.content.1.source: Input should be an object`).

Only types are checked, and only of fields the API defines: a field or a block type
it does not know passes, so a request the API takes is never refused here (Anthropic
adds block types; a passthrough provider sees them). Hand-written rather than a JSON
Schema: it runs on every request, and Claude Code's are 80 KB (docs/benchmarks.md has
what it costs).
"""

from __future__ import annotations

import json
import re
from collections.abc import Hashable
from typing import Any, Generic, TypeVar

# A model name may be anything but control characters (C0, DEL, C1): they would break
# the log line and the flow's comment that show it (model_paths.py: names in URLs).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# json.loads' own pieces, for parse_placed.
_SPACE = json.decoder.WHITESPACE.match
_scan_key = json.decoder.scanstring
_scan_value = json.JSONDecoder().scan_once

STRING, OBJECT, LIST, BOOLEAN = "a valid string", "an object", "a valid list", "a valid boolean"
INTEGER, NUMBER = "a valid integer", "a valid number"
CONTENT = "a string or a list of content blocks"
_TYPES: dict[str, type | tuple[type, ...]] = {
    STRING: str, OBJECT: dict, LIST: list, BOOLEAN: bool, INTEGER: int, NUMBER: (int, float),
}
Rule = tuple[str, str, bool]  # a field, what it must be, whether it is required
# Top-level fields: what each must be when present (model is checked first). What the API
# requires and nothing here reads (max_tokens, even messages) is left for the provider to ask.
FIELDS: tuple[Rule, ...] = (
    ("max_tokens", INTEGER, False), ("stream", BOOLEAN, False), ("temperature", NUMBER, False),
    ("top_p", NUMBER, False), ("top_k", INTEGER, False), ("stop_sequences", LIST, False),
    ("metadata", OBJECT, False), ("thinking", OBJECT, False), ("tool_choice", OBJECT, False),
    ("output_config", OBJECT, False), ("tools", LIST, False), ("messages", LIST, False),
)
# The fields of objects the translators read.
PARTS: dict[str, tuple[Rule, ...]] = {
    "metadata": (("user_id", STRING, False),),
    "thinking": (("type", STRING, True), ("budget_tokens", INTEGER, False)),
    "tool_choice": (("type", STRING, True), ("name", STRING, False), ("disable_parallel_tool_use", BOOLEAN, False)),
    "output_config": (("effort", STRING, False),),
    "tool": (("name", STRING, False), ("type", STRING, False), ("description", STRING, False),
             ("input_schema", OBJECT, False)),
    "message": (("role", STRING, True),),
    "source": (("type", STRING, True), ("media_type", STRING, False), ("data", STRING, False),
               ("url", STRING, False), ("file_id", STRING, False)),
}
# Each content block type's fields; `content` (tool_result, a document's source) is
# checked as nested blocks, `source` as a source.
BLOCKS: dict[str, tuple[Rule, ...]] = {
    "text": (("text", STRING, True),),
    "image": (("source", OBJECT, True),),
    "document": (("source", OBJECT, True), ("title", STRING, False), ("context", STRING, False)),
    "tool_use": (("id", STRING, True), ("name", STRING, True), ("input", OBJECT, False)),
    "server_tool_use": (("id", STRING, True), ("name", STRING, True), ("input", OBJECT, False)),
    "tool_result": (("tool_use_id", STRING, True), ("is_error", BOOLEAN, False)),
    "thinking": (("thinking", STRING, False), ("signature", STRING, False)),
    "redacted_thinking": (("data", STRING, False),),
}


class Malformed(ValueError):
    """What is wrong with the request, as `field.path: what it should be`."""


def parse(raw: bytes) -> Any:
    """A request body as JSON; Malformed when it is none. JSON nested deeper than the
    parser's recursion limit (about 10,000 levels) raises RecursionError, not ValueError."""
    try:
        return json.loads(raw)
    except ValueError as e:
        raise Malformed(f"request body is not valid JSON ({e})") from None
    except RecursionError:
        raise Malformed("request body is nested too deeply to be read") from None


def parse_placed(raw: bytes, recent: bool = True) -> tuple[Any, tuple[int, int] | None]:
    """parse(raw), and where in `raw` the value of its top-level `model` is (byte
    offsets; None unless it has exactly one), so that the upstream's model can be written
    into the client's bytes (exchange.with_model) instead of the whole body again. The
    top level is read field by field with json's own scanner, as json.loads reads it
    (the same dict: a key's last value, in its first place); a body that does not read
    that way is parse's to read or refuse. `recent`: a client's body, whose repeated
    list items Recent gives as parsed before (not for an upstream's answer)."""
    try:
        placed = _top_level(raw, recent)
    except (ValueError, IndexError, RecursionError):
        placed = None
    return placed if placed is not None else (parse(raw), None)


def _top_level(raw: bytes, recent: bool) -> tuple[dict[str, Any], tuple[int, int] | None] | None:
    if json.detect_encoding(raw) != "utf-8":
        return None
    text = raw.decode("utf-8", "surrogatepass")  # as json.loads decodes
    at = _SPACE(text, 0).end()
    if text[at : at + 1] != "{":
        return None
    body: dict[str, Any] = {}
    models: list[tuple[int, int]] = []
    at = _SPACE(text, at + 1).end()
    while text[at] != "}":
        if text[at] != '"':
            return None
        key, at = _scan_key(text, at + 1, True)
        at = _SPACE(text, at).end()
        if text[at] != ":":
            return None
        at = _SPACE(text, at + 1).end()
        try:
            if recent and key in _REPEATED and text[at] == "[":
                body[key], end = RECENT.items(text, at, every=key == "tools", name=key)
            else:
                body[key], end = _scan_value(text, at)
        except StopIteration:
            return None
        if key == "model":
            models.append((at, end))
        at = _SPACE(text, end).end()
        if text[at] == ",":
            at = _SPACE(text, at + 1).end()
            if text[at] != '"':
                return None
        elif text[at] != "}":
            return None
    if _SPACE(text, at + 1).end() != len(text):
        return None
    if len(models) != 1:
        return body, None
    start, end = models[0]
    if len(text) != len(raw):  # not all ASCII: count the bytes of the characters before
        start, end = (len(text[:start].encode("utf-8", "surrogatepass")),
                      len(text[:end].encode("utf-8", "surrogatepass")))
    return body, (start, end)


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

    def passes(self, item: Any) -> None:
        """`check` passed `item`."""
        if self.holds(item):
            self._passed.add(id(item))

    def checked(self, item: Any) -> bool:
        """Whether `check` passed `item` (an id in either set is of an item held)."""
        return id(item) in self._passed or id(item) in self._passed_old

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
_REPEATED = frozenset(("messages", "tools", "system"))  # the lists a session sends again

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


def check(body: Any) -> None:
    """Raises Malformed for the first field of `body` (parsed JSON) that is not what the
    Messages API defines; the same body for count_tokens, which takes the same fields.
    Paths are put together only for the error: this runs on every request."""
    if not isinstance(body, dict):
        raise Malformed("request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise Malformed("model: field required (a non-empty string naming the model)")
    if _CONTROL.search(model):
        raise Malformed("model: a model name may not hold control characters")
    _fields(body, FIELDS, "")  # null is as good as absent, for the API as for the translators
    for name in ("metadata", "thinking", "tool_choice", "output_config"):
        if body.get(name) is not None:  # an object (FIELDS)
            _fields(body[name], PARTS[name], f"{name}.")
    choice = body.get("tool_choice")
    if choice and choice["type"] == "tool" and choice.get("name") is None:
        raise Malformed("tool_choice.name: Field required")  # {"type": "tool"} names the tool it forces
    for index, tool in enumerate(body.get("tools") or ()):
        if not RECENT.checked(tool):
            _object(tool, "tools", index)
            _fields(tool, PARTS["tool"], "tools", index)
            RECENT.passes(tool)
    for index, stop in enumerate(body.get("stop_sequences") or ()):
        if not isinstance(stop, str):
            raise Malformed(f"stop_sequences.{index}: Input should be {STRING}")
    if body.get("system") is not None:
        _content(body["system"], "system")
    for index, message in enumerate(body.get("messages") or ()):
        if RECENT.checked(message):
            continue
        _object(message, "messages", index)
        _fields(message, PARTS["message"], "messages", index)
        if "content" not in message:
            raise Malformed(f"messages.{index}.content: Field required")
        _content(message["content"], f"messages.{index}.content")
        RECENT.passes(message)


def _content(content: Any, where: str) -> None:
    """A string, or a list of content blocks."""
    if isinstance(content, str):
        return
    if not isinstance(content, list):
        raise Malformed(f"{where}: Input should be {CONTENT}")
    for index, block in enumerate(content):
        _object(block, where, index)
        kind = block.get("type")
        if kind in BLOCKS:
            _block(block, kind, where, index)
        elif not isinstance(kind, str):  # another string: a block type the API added later, passed on
            raise Malformed(f"{where}.{index}.type: " + (f"Input should be {STRING}" if "type" in block
                                                          else "Field required"))


def _block(block: dict[str, Any], kind: str, where: str, index: int) -> None:
    _fields(block, BLOCKS[kind], where, index)
    if kind in ("image", "document"):
        source = block["source"]
        _fields(source, PARTS["source"], f"{where}.{index}.source.")
        if source.get("content") is not None:  # a document's own content blocks
            _content(source["content"], f"{where}.{index}.source.content")
    elif kind == "tool_result" and block.get("content") is not None:
        _content(block["content"], f"{where}.{index}.content")


def _object(value: Any, where: str, index: int) -> None:
    if not isinstance(value, dict):
        raise Malformed(f"{where}.{index}: Input should be {OBJECT}")


def _fields(value: dict[str, Any], rules: tuple[Rule, ...], where: str, index: int | None = None) -> None:
    """`where`: the path of `value` with its trailing dot, or of the list it is item
    `index` of (put together only for an error: blocks are many)."""
    for name, what, required in rules:
        found = value.get(name)
        if found is None:
            if required:
                raise Malformed(f"{_path(where, index)}{name}: "
                                + (f"Input should be {what}" if name in value else "Field required"))
        # bool is an int in Python, not in JSON: `true` is no integer or number.
        elif not isinstance(found, _TYPES[what]) or (found.__class__ is bool and what in (INTEGER, NUMBER)):
            raise Malformed(f"{_path(where, index)}{name}: Input should be {what}")


def _path(where: str, index: int | None) -> str:
    return where if index is None else f"{where}.{index}."
