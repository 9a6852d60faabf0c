"""repeated: a session's tools translated and written once, and put into each body it
sends as the same JSON text. Pure."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from modelmux.attempt.exchange import upstream_json
from modelmux.translate import repeated, validation


def _names(tools: Sequence[Any]) -> list[dict[str, Any]]:
    return [{"name": t["name"].upper()} for t in tools]


def _other(tools: Sequence[Any]) -> list[dict[str, Any]]:
    return [{"other": t["name"]} for t in tools]


def test_the_same_items_give_the_same_section_and_other_items_or_builders_their_own():
    a, b = {"name": "a"}, {"name": "b"}
    first = repeated.section([a, b], _names)
    assert first == [{"name": "A"}, {"name": "B"}]
    assert repeated.section([a, b], _names) is first
    assert repeated.section([dict(a), b], _names) is not first  # equal, but another item
    assert repeated.section([b, a], _names) == [{"name": "B"}, {"name": "A"}]
    assert repeated.section([a, b], _other) == [{"other": "a"}, {"other": "b"}]


def test_a_body_with_a_section_is_written_as_json_writes_it():
    tools = [{"name": "Bash", "description": "Run \"it\" \u00e9"}, {"name": "Read"}]
    section = repeated.section(tools, _names)
    body = {"model": "m", "tools": section, "messages": [{"role": "user", "content": "hi"}], "stream": True}
    plain = json.dumps(body, separators=(",", ":")).encode()
    assert upstream_json(body) == plain
    assert repeated.written(section) is not None
    assert upstream_json(body) == plain  # its text kept from the first time
    assert repeated.written(list(section)) is None  # an equal list is no section


def test_a_client_text_that_looks_like_the_placeholder_stays_as_it_is():
    section = repeated.section([{"name": "x"}], _names)
    body = {"tools": section, "messages": [{"content": "\x00modelmux-0123:tools"}]}
    assert json.loads(upstream_json(body)) == {"tools": [{"name": "X"}], "messages": [{"content": "\x00modelmux-0123:tools"}]}


def test_past_kept_lists_every_section_is_built_again():
    items = [[{"name": str(i)}] for i in range(repeated.KEPT + 1)]
    first = repeated.section(items[0], _names)
    for some in items[1:]:
        repeated.section(some, _names)
    again = repeated.section(items[0], _names)
    assert again == first and again is not first


def test_a_repeated_tool_is_the_same_item_however_short():
    body = b'{"model": "m", "tools": [{"name": "t"}], "messages": [{"role": "user", "content": "x"}]}'
    first, _ = validation.parse_placed(body)
    second, _ = validation.parse_placed(body)
    assert second["tools"][0] is first["tools"][0]
    assert second["messages"][0] is not first["messages"][0]  # a short message is read again
