"""repeated: a session's tools translated and written once, and put into each body it
sends as the same JSON text. Pure."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from modelmux.attempt.exchange import upstream_json
from modelmux.config.types import Shape
from modelmux.translate import repeated, token_estimate, validation
from modelmux.translate.openai_chat.request import to_chat


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
    assert second["messages"][0] is first["messages"][0]  # the same list: its items are the same
    third, _ = validation.parse_placed(body.replace(b'"x"}]', b'"x"}, {"role": "user", "content": "y"}]'))
    assert third["messages"][0] is first["messages"][0]  # a list that starts as one before
    other, _ = validation.parse_placed(body.replace(b'"x"', b'"z"'))
    assert other["messages"] == [{"role": "user", "content": "z"}]


def _turn(message: dict[str, Any], suffix: str) -> list[dict[str, Any]]:
    return [{"role": message["role"], "content": message["content"] + suffix}]


def _joined(messages: tuple[dict[str, Any], ...]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": " ".join(m["content"] for m in messages)}]


def _given(*contents: str) -> list[dict[str, Any]]:
    """Messages as repeated.Recent gives them out (long enough for it to keep)."""
    messages = [{"role": "user", "content": c + " " * 300} for c in contents]
    body, _ = validation.parse_placed(json.dumps({"model": "m", "messages": messages}).encode())
    return body["messages"]


def test_the_same_item_and_arguments_give_the_same_translation_and_others_their_own():
    a, b = _given("hi", "yo")
    first = repeated.translated(_turn, a, "!")
    assert first == [{"role": "user", "content": a["content"] + "!"}]
    assert repeated.translated(_turn, a, "!") is first
    assert repeated.translated(_turn, _given("hi")[0], "!") is first  # the same text, given out again
    assert repeated.translated(_turn, dict(a), "!") is not first  # equal, but not one Recent gave out
    assert repeated.translated(_turn, a, "?") == [{"role": "user", "content": a["content"] + "?"}]
    both = repeated.translated(_joined, (a, b))
    assert repeated.translated(_joined, (a, b)) is both  # a new tuple of the same items
    assert repeated.translated(_joined, (b, a)) is not both


def test_a_list_of_translated_pieces_and_new_items_is_written_as_json_writes_it():
    a = _given("caf\u00e9 \"x\"")[0]
    pieces = repeated.translated(_turn, a, "")
    body = {"model": "m", "messages": [*pieces, {"role": "assistant", "content": "new"}, *pieces]}
    plain = json.dumps(body, separators=(",", ":")).encode()
    assert repeated.written(body["messages"]) is not None
    assert upstream_json(body) == plain
    assert upstream_json(body) == plain  # the pieces' text kept from the first time
    assert repeated.written([dict(pieces[0])]) is None  # an equal message is no piece


def test_a_translation_lives_as_long_as_recent_holds_its_item():
    kept, gone = _given("kept", "gone")
    first, once = repeated.translated(_turn, kept, ""), repeated.translated(_turn, gone, "")
    repeated.RECENT._rotate()
    assert repeated.translated(_turn, _given("kept")[0], "") is first  # given out again: it moves along
    repeated.RECENT._rotate()
    assert repeated.translated(_turn, kept, "") is first
    assert repeated.written(once) is None and repeated.translated(_turn, gone, "") is not once


def test_a_message_recent_does_not_keep_is_translated_every_time_and_not_kept():
    short = {"role": "user", "content": "short"}
    body, _ = validation.parse_placed(json.dumps({"model": "m", "messages": [short]}).encode())
    built = repeated.translated(_turn, body["messages"][0], "")
    assert built == [short] and repeated.written(built) is None


def test_what_is_known_of_items_goes_with_them_two_generations_on():
    """A gateway's memory must not grow with each new turn (bench: RSS over 5,000
    requests): whether check passed an item, its token count and its translation are
    kept only as long as Recent holds the item."""
    recent = repeated.RECENT
    generation = recent.generation
    for i in range(400):  # each turn's last message is new, as each request's is
        turn = [{"role": "user", "content": [{"type": "text", "text": f"turn {i} " + "x" * 30_000}]}]
        body, _ = validation.parse_placed(json.dumps({"model": "m", "messages": turn}).encode())
        validation.check(body)
        token_estimate.estimate_input_tokens(body)
        to_chat(body, Shape(), "m")
    assert recent.generation >= generation + 10  # 12 MB of text: a generation per 1 MB
    held = len(recent._held) + len(recent._held_old)
    assert held <= 2 * (recent.GENERATION // 30_000 + 2)
    assert len(recent._passed) + len(recent._passed_old) <= held
    assert len(token_estimate._COUNTED._new) + len(token_estimate._COUNTED._old) <= held
    assert len(repeated._ENTRIES._new) + len(repeated._ENTRIES._old) <= held
