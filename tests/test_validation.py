"""A Messages request that is not what the API defines is the client's 400 naming the
field (modelmux/translate/validation.py), and nothing on the pure request path raises anything
else, whatever JSON it is thrown."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from modelmux import routing
from modelmux.attempt import exchange
from modelmux.config import loader
from modelmux.errors import GatewayError
from modelmux.translate import messages, repeated, validation
from modelmux.translate.token_estimate import estimate_input_tokens

ROUTES = """
providers:
  vendor: {protocol: anthropic, base_url: "https://vendor.example", credentials: [{label: v, key: k}]}
  anthropic: {protocol: anthropic, base_url: "https://api.anthropic.com", auth: passthrough}
  chat: {protocol: openai-chat, base_url: "https://chat.example/v1", credentials: [{label: c, key: k}]}
  azure:
    protocol: openai-chat
    base_url: "https://azure.example/openai"
    endpoint: "/deployments/{model}/chat/completions"
    credentials: [{label: a, key: k}]
  responses: {protocol: openai-responses, base_url: "https://responses.example/v1", credentials: [{label: r, key: k}]}
  gemini: {protocol: gemini, base_url: "https://gemini.example/v1beta", credentials: [{label: g, key: k}]}
default: {provider: anthropic}
"""
CONFIG = loader.parse(yaml.safe_load(ROUTES), Path("/x/routes.yaml"), {})
OK = {"model": "m", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]}


def problem(body: Any) -> str | None:
    try:
        validation.check(body)
    except validation.Malformed as e:
        return str(e)
    return None


@pytest.mark.parametrize("change, message", [
    ({"messages": "hi"}, "messages: Input should be a valid list"),
    ({"messages": [1, 2]}, "messages.0: Input should be an object"),
    ({"messages": [{"role": "user", "content": 5}]}, "messages.0.content: Input should be a string or a list of content blocks"),
    ({"messages": [{"role": "user"}]}, "messages.0.content: Field required"),
    ({"messages": [{"content": "hi"}]}, "messages.0.role: Field required"),
    ({"system": 5}, "system: Input should be a string or a list of content blocks"),
    ({"system": [{"type": "text", "text": 5}]}, "system.0.text: Input should be a valid string"),
    ({"tools": {"a": 1}}, "tools: Input should be a valid list"),
    ({"tools": [{"name": 5, "input_schema": {}}]}, "tools.0.name: Input should be a valid string"),
    ({"tools": [{"name": "t", "input_schema": []}]}, "tools.0.input_schema: Input should be an object"),
    ({"messages": [{"role": "user", "content": [{"type": "text", "text": "x"}, {"type": "image", "source": "x"}]}]},
     "messages.0.content.1.source: Input should be an object"),
    ({"messages": [{"role": "user", "content": [{"type": "image"}]}]}, "messages.0.content.0.source: Field required"),
    ({"messages": [{"role": "user", "content": [{"text": "x"}]}]}, "messages.0.content.0.type: Field required"),
    ({"messages": [{"role": "assistant", "content": [{"type": "tool_use", "id": 1, "name": "t", "input": {}}]}]},
     "messages.0.content.0.id: Input should be a valid string"),
    ({"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": 3}]}]},
     "messages.0.content.0.content: Input should be a string or a list of content blocks"),
    ({"messages": [{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t",
                                                 "content": [{"type": "image", "source": {"type": 1}}]}]}]},
     "messages.0.content.0.content.0.source.type: Input should be a valid string"),
    ({"messages": [{"role": "user", "content": [{"type": "document", "source": {"type": "content", "content": [7]}}]}]},
     "messages.0.content.0.source.content.0: Input should be an object"),
    ({"max_tokens": "8"}, "max_tokens: Input should be a valid integer"),
    ({"max_tokens": True}, "max_tokens: Input should be a valid integer"),
    ({"temperature": "hot"}, "temperature: Input should be a valid number"),
    ({"stream": "yes"}, "stream: Input should be a valid boolean"),
    ({"stop_sequences": ["a", 1]}, "stop_sequences.1: Input should be a valid string"),
    ({"thinking": {"budget_tokens": 10}}, "thinking.type: Field required"),
    ({"tool_choice": {"type": "tool", "name": 3}}, "tool_choice.name: Input should be a valid string"),
    ({"metadata": {"user_id": 3}}, "metadata.user_id: Input should be a valid string"),
    ({"model": "gpt\nINFO forged log line"}, "model: a model name may not hold control characters"),
    ({"model": ""}, "model: field required (a non-empty string naming the model)"),
])
def test_each_malformed_field_is_named(change: dict, message: str) -> None:
    assert problem({**OK, **change}) == message


@pytest.mark.parametrize("body", [
    OK,
    {**OK, "metadata": {"user_id": None}, "temperature": None, "system": None, "tools": None},
    {**OK, "messages": [{"role": "user", "content": [{"type": "web_fetch_tool_result_2030", "anything": [1]}]}]},
    {**OK, "messages": [{"role": "user", "content": [{"type": "search_result", "source": "https://x", "content": []}]}]},
    {**OK, "model": "accounts/fireworks/models/llama-v3p1-70b-instruct"},
    {**OK, "model": "gpt-5.3-codex(xhigh)"},
    {"model": "m"},  # the API requires messages and says so; modelmux routes it as it is
])
def test_what_the_api_takes_passes(body: dict) -> None:
    assert problem(body) is None


def test_a_body_nested_too_deeply_to_parse_is_malformed() -> None:
    with pytest.raises(validation.Malformed, match="nested too deeply"):
        validation.parse(b'{"model": "m", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    with pytest.raises(validation.Malformed, match="not valid JSON"):
        validation.parse(b"{")


@pytest.mark.parametrize(("raw", "value"), [
    (b'{"model":"m","max_tokens":1}', b'"m"'),
    (b' {\n "t": "caf\xc3\xa9" ,\t"model" : "m"} ', b'"m"'),  # the place in bytes, not characters
    (b'{"model":"m\\u0062"}', b'"m\\u0062"'),
    (b'{"mod\\u0065l":"m"}', b'"m"'),
    (b'{"model":"m","x":{"model":"n"}}', b'"m"'),  # a nested one is not the request's
    (b'{"model":"m","model":"n"}', None),  # json.loads keeps the last: one place would not do
    (b'{"model":"m","mod\\u0065l":"m"}', None),
    (b'{"max_tokens":1}', None),
    (b'\xef\xbb\xbf{"model":"m"}', None),  # json.loads takes it; its own reading, without a place
    ('{"model":"m"}'.encode("utf-16"), None),
    (b'[{"model":"m"}]', None),
    (b'{"a":NaN,"b":1e400,"model":"m"}', b'"m"'),
])  # fmt: skip
def test_a_body_is_parsed_as_json_loads_parses_it_with_the_place_of_its_model(raw: bytes, value: bytes | None) -> None:
    parsed, place = validation.parse_placed(raw)
    assert repr(parsed) == repr(json.loads(raw))  # the same, key order and the NaN included
    assert (raw[place[0]:place[1]] if place else None) == value
    if place is not None:
        assert raw[place[1]:].lstrip(b" ").startswith((b",", b"}")) and raw[:place[0]].rstrip(b" ").endswith(b":")


@pytest.mark.parametrize("raw", [b"", b"{", b'{"a":1,}', b'{"a":1} x', b'{"a" 1}', b'{"a":}', b'{"a":1 "b":2}',
                                 b"{\"a\":[" * 3 + b"]}"])
def test_a_body_json_loads_refuses_is_refused_with_its_words(raw: bytes) -> None:
    with pytest.raises(validation.Malformed) as placed:
        validation.parse_placed(raw)
    with pytest.raises(validation.Malformed) as parsed:
        validation.parse(raw)
    assert str(placed.value) == str(parsed.value)


# -- the whole pure request path, fuzzed ---------------------------------------------
# Two kinds of body: anything at all (mostly refused by validation), and bodies whose
# fields have the types the API defines but any value, with unknown fields beside them
# (mostly accepted: they reach routing, the estimate and every translator).

SCALARS = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8)
ANY = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                        max_size=3), max_leaves=8)
TEXT = st.text(max_size=12) | st.sampled_from(["", " ", "Warmup", "x-anthropic-billing-header: cc", "gemini-"])
OBJECT = st.dictionaries(st.text(max_size=6), ANY, max_size=3)
EXTRA = {"cache_control": OBJECT, "citations": ANY, "zz_unknown": ANY}


def block(kinds: list[str], depth: int = 1) -> st.SearchStrategy:
    source = st.fixed_dictionaries({"type": st.sampled_from(["base64", "url", "text", "content", "file", "x"])},
                                   optional={"media_type": st.sampled_from(["image/png", "application/pdf", "x/y"]),
                                             "data": TEXT, "url": TEXT, "file_id": TEXT,
                                             "content": TEXT | st.lists(block(["text", "image"], 0), max_size=2)
                                             if depth else TEXT})
    nested = st.lists(block(["text", "image", "document", "search_result"], 0), max_size=2) if depth else st.just([])
    fields = {
        "text": {"text": TEXT}, "image": {"source": source}, "document": {"source": source},
        "tool_use": {"id": TEXT, "name": TEXT}, "server_tool_use": {"id": TEXT, "name": TEXT},
        "tool_result": {"tool_use_id": TEXT}, "thinking": {}, "redacted_thinking": {},
    }
    optional = {"tool_use": {"input": OBJECT}, "tool_result": {"content": TEXT | nested, "is_error": st.booleans()},
                "thinking": {"thinking": TEXT, "signature": st.sampled_from(["", "gemini-x", "rs_abc", "sig"]) | TEXT},
                "redacted_thinking": {"data": TEXT}, "document": {"title": TEXT}}
    return st.one_of([st.fixed_dictionaries({"type": st.just(kind), **fields.get(kind, {"source": ANY})},
                                            optional={**optional.get(kind, {}), **EXTRA}) for kind in kinds])


BLOCK = block(["text", "image", "document", "tool_use", "tool_result", "thinking", "redacted_thinking",
               "server_tool_use", "search_result", "web_fetch_2030"])
MESSAGE = st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system"]) | TEXT,
                                 "content": TEXT | st.lists(BLOCK, max_size=4)})
TOOL = st.fixed_dictionaries({}, optional={
    "name": TEXT, "type": st.sampled_from(["custom", "web_search_20250305"]) | TEXT, "description": TEXT,
    "input_schema": st.fixed_dictionaries({}, optional={"type": st.sampled_from(["object", "string"]) | ANY,
                                                        "properties": ANY, "required": ANY, "$ref": TEXT}),
})
MODELS = ["m", "vendor,m", "chat,gpt-5", "azure,deploy", "azure,../x", "responses,gpt-5.3-codex(high)",
          "gemini,gemini-2.5-flash", "gemini,a b", "gemini,gemini-2.5-pro(8192)", "gemini,gemini-3-pro(low)"]
TYPED = st.fixed_dictionaries({"model": st.sampled_from(MODELS)}, optional={
    "messages": st.lists(MESSAGE, max_size=4), "system": TEXT | st.lists(block(["text"]), max_size=2),
    "tools": st.lists(TOOL, max_size=3), "stop_sequences": st.lists(TEXT, max_size=6),
    "tool_choice": st.fixed_dictionaries({"type": st.sampled_from(["auto", "any", "tool", "none"]) | TEXT},
                                         optional={"name": TEXT, "disable_parallel_tool_use": st.booleans()}),
    "thinking": st.fixed_dictionaries({"type": st.sampled_from(["enabled", "adaptive", "disabled"]) | TEXT},
                                      optional={"budget_tokens": st.integers()}),
    "output_config": st.fixed_dictionaries({}, optional={"effort": TEXT, "format": ANY}),
    "metadata": st.fixed_dictionaries({}, optional={"user_id": TEXT}), "max_tokens": st.integers(),
    "stream": st.booleans(), "temperature": st.floats(allow_nan=False) | st.integers(),
    "top_p": st.floats(allow_nan=False), "top_k": st.integers(), "zz_unknown": ANY,
})
ANYTHING = ANY | st.dictionaries(st.sampled_from(["model", "messages", "system", "tools", "tool_choice", "thinking",
                                                  "max_tokens", "stream", "metadata"]), ANY)


def request_path(body: Any, path: str) -> None:
    """What the Router does with a body before it is sent, by either send path (the
    relay prepares each candidate with the same exchange.prepare)."""
    raw = json.dumps(body).encode()
    try:
        parsed, model_at = validation.parse_placed(raw)
        validation.check(parsed)
    except validation.Malformed:
        return
    facts = routing.Facts(parsed, {}, None)
    facts.thinking, facts.tools, facts.prompt_tokens  # noqa: B018 (each fact, as a route's conditions read it)
    try:
        decision = routing.route(CONFIG, parsed["model"], None, facts)
        messages.is_warmup(parsed)
        for candidate in routing.candidates(CONFIG, decision):
            credential = candidate.provider.credentials[0] if candidate.provider.credentials else None
            outgoing = exchange.prepare(candidate, parsed, raw, path, "", {}, credential, model_at)
            if outgoing.translation is not None:
                exchange.estimate(outgoing.translation, parsed)
            else:  # the model written into the client's bytes, or the body written again
                assert json.loads(outgoing.content)["model"] == candidate.upstream_model
        estimate_input_tokens(parsed)
    except GatewayError as e:
        assert e.status in (400, 404), e.message  # the client's model or its effort: its own mistake


PATHS = st.sampled_from(["/v1/messages", exchange.COUNT_TOKENS])
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@FUZZ
@given(st.lists(st.tuples(st.sampled_from(["model", "max_tokens"]) | st.text(max_size=3), ANY), max_size=4),
       st.sampled_from([(",", ":"), (", ", ": "), (" ,\n", " :\t")]), st.booleans())
def test_any_object_is_parsed_as_json_loads_parses_it(fields: list, separators: tuple[str, str], ascii: bool) -> None:
    """Its fields written one by one: a key may come twice, as json.dumps never writes it."""
    comma, colon = separators
    text = "{" + comma.join(json.dumps(k, ensure_ascii=ascii) + colon + json.dumps(v, ensure_ascii=ascii)
                            for k, v in fields) + "}"
    raw = text.encode("utf-8", "surrogatepass")
    parsed, place = validation.parse_placed(raw)
    assert repr(parsed) == repr(json.loads(raw))
    assert (place is not None) == ([k for k, _ in fields].count("model") == 1)
    if place is not None:
        assert json.loads(raw[place[0]:place[1]]) == parsed["model"]


@FUZZ
@given(TYPED, PATHS)
def test_no_well_typed_body_makes_the_request_path_raise_anything_but_a_400(body: Any, path: str) -> None:
    request_path(body, path)


@FUZZ
@given(ANYTHING, PATHS)
def test_no_json_at_all_makes_the_request_path_raise_anything_but_a_400(body: Any, path: str) -> None:
    request_path(body, path)


@pytest.mark.parametrize("model", ["m", "vendor,m", "chat,gpt-5", "responses,gpt-5", "gemini,gemini-2.5-flash"])
def test_nesting_json_can_parse_is_sent_by_every_protocol(model: str) -> None:
    """About 10,000 levels parse (deeper is a 400: above); what parses, each translator
    sends (the Gemini schema cleaner stops at its own depth)."""
    deep = "[" * 9000 + "]" * 9000
    raw = (f'{{"model": "{model}", "tools": [{{"name": "t", "input_schema": {{"type": "object", "properties": {{"a": '
           f'{deep}}}}}}}], "messages": [{{"role": "assistant", "content": [{{"type": "tool_use", "id": "x", '
           f'"name": "t", "input": {{"a": {deep}}}}}]}}], "extra": {deep}}}')
    request_path(json.loads(raw), "/v1/messages")


def test_unknown_top_level_fields_are_never_read_as_known_parts() -> None:
    assert problem({**OK, "source": "x", "message": 1, "tool": [], "container": {"id": 5}}) is None


# -- parse_placed reads repeated list items once (Recent) --------------------------------


def test_an_item_seen_before_is_taken_as_parsed_and_the_body_reads_as_json_loads_reads_it():
    recent = repeated.Recent()
    tool = {"name": "Bash", "description": "Run a command. " * 20, "input_schema": {"type": "object"}}
    text = json.dumps({"tools": [tool, tool]})
    first, end = recent.items(text, text.index("["))
    assert first == [tool, tool] and first[0] is first[1] and text[end] == "}"
    again = '{"model": "m", "tools": [\n  ' + json.dumps(tool) + "\n]}"  # other spacing around the item
    second, _ = recent.items(again, again.index("["))
    assert second == [tool] and second[0] is first[0]


def test_an_item_that_differs_anywhere_is_read_afresh():
    recent = repeated.Recent()
    message = {"role": "user", "content": [{"type": "text", "text": "a" * 400}]}
    text = json.dumps([message])
    recent.items(text, 0)
    longer = {"role": "user", "content": [{"type": "text", "text": "a" * 400}], "x": 1}  # the old text minus its "}"
    changed = {"role": "user", "content": [{"type": "text", "text": "a" * 399 + "b"}]}
    for new in (longer, changed):
        found, _ = recent.items(json.dumps([new]), 0)
        assert found == [new]


@pytest.mark.parametrize("text", ["[]", "[ ]", "[1, \"x\", null, {\"a\": [1, 2]}]", " [ [ ] , { } ] "])
def test_any_list_reads_as_json_loads_reads_it(text: str):
    at = len(text) - len(text.lstrip())
    found, end = repeated.Recent().items(text, at)
    assert found == json.loads(text) and text[end:].strip() == ""


@pytest.mark.parametrize("text", ["[1,]", "[1 2]", "[", "[{\"a\": 1}", "[1,,2]"])
def test_a_broken_list_is_json_loads_to_refuse(text: str):
    with pytest.raises(validation.Malformed):
        validation.parse_placed(('{"model": "m", "messages": ' + text + "}").encode())


def test_a_full_generation_becomes_the_old_and_an_old_item_seen_again_is_kept():
    recent = repeated.Recent()
    recent.GENERATION = 3000
    items = [{"n": i, "text": "x" * 1000} for i in range(4)]
    for item in items:
        recent.items(json.dumps([item]), 0)
    first = recent.items(json.dumps([items[0]]), 0)[0][0]  # it went to the old generation, and back
    assert first == items[0] and recent.items(json.dumps([items[0]]), 0)[0][0] is first


def test_an_item_is_checked_once_and_a_different_item_always():
    good = {"role": "user", "content": [{"type": "text", "text": "x" * 300}]}
    bad = {"role": "user", "content": [{"type": "text", "text": 7, "pad": "x" * 300}]}
    for _ in range(2):  # the second time the good item comes from Recent, checked
        body, _ = validation.parse_placed(json.dumps({"model": "m", "messages": [good]}).encode())
        validation.check(body)
        with pytest.raises(validation.Malformed, match=r"^messages\.1\.content\.0\.text: Input should be a valid string$"):
            validation.check(validation.parse(json.dumps({"model": "m", "messages": [good, bad]}).encode()))
        body, _ = validation.parse_placed(json.dumps({"model": "m", "messages": [good, bad]}).encode())
        with pytest.raises(validation.Malformed, match=r"^messages\.1\.content\.0\.text"):
            validation.check(body)


def test_a_list_that_starts_as_one_read_before_takes_its_items_and_reads_the_rest():
    recent = repeated.Recent()
    recent.SMALLEST = 10**9  # no item is kept by itself: what is reused comes from the list
    turns = [{"role": "user" if i % 2 else "assistant", "content": [{"type": "text", "text": f"turn {i}"}]}
             for i in range(4)]
    first, _ = recent.items(json.dumps(turns[:2]), 0, name="messages")
    longer = json.dumps(turns)
    second, end = recent.items(longer, 0, name="messages")
    assert second == turns and end == len(longer)
    assert second[0] is first[0] and second[1] is first[1] and second is not first
    same, _ = recent.items(longer, 0, name="messages")
    assert same == turns and all(a is b for a, b in zip(same, second)) and same is not second
    assert recent.items(longer, 0, name="tools")[0][0] is not second[0]  # another field's lists are its own


@pytest.mark.parametrize("then", [
    '[{"a": 1}, {"b": 2}, {"c": 3}]',  # more items
    '[{"a": 1}, {"b": 2} ]',  # the same, other spacing at the end
    '[{"a": 1}, {"b": 2}x]',  # not JSON
    '[{"a": 1}, {"b": 2}',  # cut short
    '[{"a": 1}]',  # fewer items
    '[{"a": 1}, {"b": 2}, 3, 4]',
])
def test_a_list_read_after_one_it_starts_like_reads_as_json_loads_reads_it(then: str):
    recent = repeated.Recent()
    recent.items('[{"a": 1}, {"b": 2}]', 0, name="messages")
    recent.items('[{"a": 1}, {"b": 2}, 3]', 0, name="messages")  # it ends with a number: not taken as a start
    body = '{"model": "m", "messages": ' + then + "}"
    try:
        expected = json.loads(body)
    except ValueError:
        with pytest.raises(validation.Malformed):
            validation.parse_placed(body.encode())
        with pytest.raises((ValueError, IndexError)):  # parse_placed's own errors to fall back on
            recent.items(then, 0, name="messages")
    else:
        found, _ = recent.items(then, 0, name="messages")
        assert found == expected["messages"]


def test_conversations_that_take_turns_each_take_their_own_earlier_items():
    recent = repeated.Recent()
    recent.SMALLEST = 10**9
    def turn(who: str, i: int) -> dict:
        return {"role": "user", "content": [{"type": "text", "text": f"{who} says {i} " + "x" * 100}]}
    seen: dict[str, list] = {}
    for i in range(1, 6):
        for who in ("alice", "bob", "carol"):
            history = [turn(who, n) for n in range(i)]
            found, _ = recent.items(json.dumps(history), 0, name="messages")
            assert found == history
            if who in seen:
                assert all(a is b for a, b in zip(found, seen[who]))  # the earlier turns, as read then
            seen[who] = found
