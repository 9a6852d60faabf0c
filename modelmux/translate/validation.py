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
from typing import Any

from modelmux.translate.repeated import RECENT

# A model name may be anything but control characters (C0, DEL, C1): they would break
# the log line and the flow's comment that show it (model_paths.py: names in URLs).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# json.loads' own pieces, for parse_placed (repeated.Recent binds the same two for its list
# items: it cannot import them from here, which imports it).
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


_REPEATED = frozenset(("messages", "tools", "system"))  # the lists a session sends again


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
    tools = body.get("tools") or []
    for index in RECENT.unchecked(tools):
        _object(tools[index], "tools", index)
        _fields(tools[index], PARTS["tool"], "tools", index)
    RECENT.passes(tools)
    for index, stop in enumerate(body.get("stop_sequences") or ()):
        if not isinstance(stop, str):
            raise Malformed(f"stop_sequences.{index}: Input should be {STRING}")
    if body.get("system") is not None:
        _content(body["system"], "system")
    messages = body.get("messages") or []
    for index in RECENT.unchecked(messages):
        message = messages[index]
        _object(message, "messages", index)
        _fields(message, PARTS["message"], "messages", index)
        if "content" not in message:
            raise Malformed(f"messages.{index}.content: Field required")
        _content(message["content"], f"messages.{index}.content")
    RECENT.passes(messages)


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
