"""Tool schemas → what Gemini's function declarations accept: exact outputs for every
rule, Claude Code's real tool schemas, and random schemas, all checked against a
model of Gemini's Schema object."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelmux.translate.gemini.schema import ANY, parameters

CLAUDE_CODE = json.loads((Path(__file__).parent / "data" / "claude_code_tool_schemas.json").read_text())
ALLOWED = {
    "type", "format", "description", "nullable", "enum", "properties", "required", "items", "anyOf", "minimum",
    "maximum", "minLength", "maxLength", "pattern", "minItems", "maxItems", "minProperties", "maxProperties",
}  # fmt: skip
FORMATS = {"string": {"enum", "date-time"}, "integer": {"int32", "int64"}, "number": {"float", "double"}}


def check(schema: Any, where: str = "parameters") -> None:
    """What Gemini's API answers 400 to, as assertions."""
    assert isinstance(schema, dict), where
    assert set(schema) <= ALLOWED, (where, set(schema) - ALLOWED)
    assert ("type" in schema) != ("anyOf" in schema), f"{where}: a type or an anyOf, not both or neither"
    if "anyOf" in schema:
        assert schema["anyOf"], where
        for i, branch in enumerate(schema["anyOf"]):
            check(branch, f"{where}.anyOf[{i}]")
        return
    kind = schema["type"]
    assert kind in ("string", "number", "integer", "boolean", "array", "object"), where
    if "enum" in schema:
        assert kind == "string" and schema["enum"] and all(isinstance(v, str) for v in schema["enum"]), where
    if "format" in schema:
        assert schema["format"] in FORMATS.get(kind, ()), where
    if "properties" in schema or "required" in schema:
        assert kind == "object", f"{where}: properties only allowed for OBJECT type"
    if "required" in schema:
        required = schema["required"]
        assert required and len(set(required)) == len(required), where
        assert set(required) <= set(schema.get("properties") or {}), f"{where}: required names a missing property"
    for name, value in (schema.get("properties") or {}).items():
        check(value, f"{where}.properties[{name}]")
    assert ("items" in schema) == (kind == "array"), f"{where}: items: missing field"
    if "items" in schema:
        check(schema["items"], f"{where}.items")
    if "description" in schema:
        assert isinstance(schema["description"], str) and schema["description"], where


def clean(schema: dict) -> dict | None:
    cleaned = parameters(schema)
    if cleaned is not None:
        check(cleaned)
    return cleaned


def prop(schema: dict) -> dict:
    """The cleaned form of one property."""
    cleaned = clean({"type": "object", "properties": {"x": schema}})
    assert cleaned is not None
    return cleaned["properties"]["x"]


# -- Claude Code's own tools --------------------------------------------------------


@pytest.mark.parametrize("name", sorted(CLAUDE_CODE))
def test_every_claude_code_tool_becomes_a_valid_declaration(name):
    cleaned = clean(CLAUDE_CODE[name])
    source = CLAUDE_CODE[name]
    if not source.get("properties"):
        assert cleaned is None  # Gemini: "properties: should be non-empty for OBJECT type"
    else:
        assert cleaned is not None and list(cleaned["properties"]) == list(source["properties"])
        assert cleaned.get("required", []) == source.get("required", [])


def test_claude_code_read():
    assert clean(CLAUDE_CODE["Read"]) == {
        "type": "object",
        "properties": {
            "file_path": {"type": "string", "description": "The absolute path to the file to read"},
            "offset": {"type": "integer", "minimum": 0, "maximum": 9007199254740991,
                       "description": "The line number to start reading from. Only provide if the file is too large to read at once"},
            "limit": {"type": "integer", "maximum": 9007199254740991, "minimum": 1,  # exclusiveMinimum 0, exactly
                      "description": "The number of lines to read. Only provide if the file is too large to read at once."},
            "pages": {"type": "string", "description": 'Page range for PDF files (e.g., "1-5", "3", "10-20"). Only applicable to PDF files. Maximum 20 pages per request.'},
        },
        "required": ["file_path"],
    }  # fmt: skip


def test_claude_code_task_update_union_and_free_form_metadata():
    cleaned = clean(CLAUDE_CODE["TaskUpdate"])
    assert cleaned["properties"]["status"] == {
        "type": "string", "enum": ["pending", "in_progress", "completed", "deleted"], "description": "New status for the task"}
    assert cleaned["properties"]["metadata"] == {
        "type": "object",
        "description": "Metadata keys to merge into the task. Set a key to null to delete it. (an object with any keys)"}


def test_claude_code_defaults_formats_and_typeless_values_become_words():
    assert clean(CLAUDE_CODE["TaskOutput"])["properties"]["timeout"] == {
        "type": "number", "minimum": 0, "maximum": 600000, "description": "Max wait time in ms (default: 30000)"}
    assert clean(CLAUDE_CODE["WebFetch"])["properties"]["url"] == {
        "type": "string", "description": "The URL to fetch content from (format: uri)"}
    workflow = clean(CLAUDE_CODE["Workflow"])["properties"]
    assert workflow["args"]["anyOf"] == ANY["anyOf"]  # "type: must be specified" otherwise
    assert workflow["resumeFromRunId"]["pattern"] == "^wf_[a-z0-9-]{6,}$"
    # Properties named like keywords are properties, not keywords.
    assert workflow["title"]["type"] == workflow["description"]["type"] == "string"


# -- references -----------------------------------------------------------------------


def test_refs_are_inlined_from_any_depth_with_sibling_words():
    schema = {
        "type": "object",
        "$defs": {"Point": {"type": "object", "properties": {"x": {"$ref": "#/$defs/Coord"}}, "required": ["x", "gone"]},
                  "Coord": {"type": "number", "description": "a coordinate"}},
        "definitions": {"Name": {"type": "string", "minLength": 1}},
        "properties": {
            "at": {"$ref": "#/$defs/Point", "description": "where"},
            "name": {"$ref": "#/definitions/Name"},
            "same": {"$ref": "#/properties/name"},
            "slashed": {"$ref": "#/$defs/a~1b%20c"},
        },
    }
    schema["$defs"]["a/b c"] = {"type": "boolean"}
    assert clean(schema)["properties"] == {
        "at": {"type": "object", "properties": {"x": {"type": "number", "description": "a coordinate"}}, "required": ["x"],
               "description": "where"},
        "name": {"type": "string", "minLength": 1},
        "same": {"type": "string", "minLength": 1},
        "slashed": {"type": "boolean"},
    }  # fmt: skip


def test_recursive_refs_end_in_a_described_stub():
    tree = {
        "type": "object",
        "properties": {"root": {"$ref": "#/$defs/Node"}},
        "$defs": {"Node": {"type": "object", "properties": {"value": {"type": "string"},
                                                              "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}}}},
    }  # fmt: skip
    root = clean(tree)["properties"]["root"]
    assert root["properties"]["children"]["items"] == {"type": "object", "description": "(the same shape as Node, nested)"}
    whole = clean({"type": "object", "properties": {"next": {"$ref": "#"}, "v": {"type": "integer"}}})
    assert whole["properties"]["next"] == {"type": "object", "description": "(the same shape as the whole schema, nested)"}


def test_mutual_recursion_and_a_ref_to_a_ref_terminate():
    schema = {
        "type": "object",
        "properties": {"a": {"$ref": "#/$defs/A"}, "alias": {"$ref": "#/$defs/Alias"}},
        "$defs": {"A": {"type": "object", "properties": {"b": {"$ref": "#/$defs/B"}}},
                  "B": {"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}},
                  "Alias": {"$ref": "#/$defs/Alias2"}, "Alias2": {"$ref": "#/$defs/Alias"}},
    }  # fmt: skip
    cleaned = clean(schema)
    assert cleaned["properties"]["a"]["properties"]["b"]["properties"]["a"]["description"] == "(the same shape as A, nested)"
    assert cleaned["properties"]["alias"] == {"type": "object", "description": "(the same shape as Alias, nested)"}


def test_a_ref_that_cannot_be_resolved_keeps_its_name():
    assert prop({"$ref": "https://example.com/schema.json"}) == {
        "type": "object", "description": "(schema https://example.com/schema.json)"}


# -- unions, nulls, types ------------------------------------------------------------


def test_null_branches_become_nullable():
    assert prop({"anyOf": [{"type": "string"}, {"type": "null"}], "description": "d", "default": None}) == {
        "type": "string", "nullable": True, "description": "d (default: null)"}
    assert prop({"oneOf": [{"$ref": "#/$defs/N"}, {"type": "integer", "minimum": 1}]} | {}) is not None
    assert prop({"type": ["integer", "null"], "maximum": 5}) == {"type": "integer", "maximum": 5, "nullable": True}
    assert prop({"enum": ["a", None]}) == {"type": "string", "enum": ["a"], "nullable": True}


def test_real_unions_stay_unions():
    assert prop({"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}], "description": "paths"}) == {
        "anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}], "description": "paths"}
    assert prop({"type": ["string", "number"], "description": "id", "default": 1}) == {
        "anyOf": [{"type": "string"}, {"type": "number"}], "description": "id (default: 1)"}
    assert prop({"oneOf": [{"type": "integer"}, {"type": "boolean"}, {"type": "null"}]}) == {
        "anyOf": [{"type": "integer"}, {"type": "boolean"}], "nullable": True}


def test_object_variants_merge_into_one_object():
    # zod's discriminated union, as MCP servers send it
    schema = {"anyOf": [
        {"type": "object", "properties": {"entity": {"type": "string", "const": "one"}, "opts": {"type": "object", "properties": {"a": {"type": "string"}}}},
         "required": ["entity", "opts"], "additionalProperties": False},
        {"type": "object", "properties": {"entity": {"type": "string", "const": "two"}, "size": {"type": "integer"}},
         "required": ["entity", "size"], "additionalProperties": False},
    ], "$schema": "http://json-schema.org/draft-07/schema#"}  # fmt: skip
    assert clean(schema) == {
        "type": "object",
        "properties": {"entity": {"type": "string", "enum": ["one", "two"]},
                       "opts": {"type": "object", "properties": {"a": {"type": "string"}}},
                       "size": {"type": "integer"}},
        "required": ["entity"],
        "description": 'one of: entity="one" requires entity, opts | entity="two" requires entity, size',
    }  # fmt: skip


@pytest.mark.parametrize("required", [[[]], [{}], 5, "a", [["a"], "a", "a"]])
def test_a_required_that_is_no_list_of_names_requires_only_its_names(required):
    """A client's tool may send anything as `required` (hypothesis found `[[]]`, which
    made the request raise instead of being sent)."""
    names = ["a"] if isinstance(required, list) and "a" in required else []
    properties = {"a": {"type": "string"}}
    for schema in ({"type": "object", "properties": properties, "required": required},
                   {"allOf": [{"type": "object", "properties": properties, "required": required}]}):
        assert clean(schema).get("required", []) == names
    variants = {"anyOf": [{"type": "object", "properties": properties, "required": required}] * 2}
    assert clean(variants).get("required", []) == names


def test_constraint_only_variants_become_words():
    schema = {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
              "oneOf": [{"required": ["a"]}, {"required": ["b"]}]}  # fmt: skip
    assert clean(schema) == {
        "type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        "description": "one of: requires a | requires b"}


def test_all_of_merges():
    schema = {"type": "object", "properties": {"p": {"allOf": [
        {"$ref": "#/$defs/Base"}, {"properties": {"extra": {"type": "boolean"}}, "required": ["extra"]}]}},
        "$defs": {"Base": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"], "title": "Base"}}}  # fmt: skip
    assert clean(schema)["properties"]["p"] == {
        "type": "object", "properties": {"id": {"type": "string"}, "extra": {"type": "boolean"}},
        "required": ["id", "extra"], "description": "Base"}


def test_missing_types_are_inferred():
    assert prop({"properties": {"a": {"type": "string"}}, "required": ["a"]}) == {
        "type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    assert prop({"items": {"type": "integer"}}) == {"type": "array", "items": {"type": "integer"}}
    assert prop({"enum": ["x", "y"]}) == {"type": "string", "enum": ["x", "y"]}
    assert prop({"enum": [1, 2]}) == {"type": "integer", "description": "(one of: 1, 2)"}
    assert prop({"minimum": 0.5}) == {"type": "number", "minimum": 0.5}
    assert prop({"description": "anything"}) == {**ANY, "description": "anything"}
    assert prop({"type": "array"}) == {"type": "array", "items": ANY}


# -- keywords Gemini does not read ----------------------------------------------------


def test_constants_and_enums():
    assert prop({"type": "string", "const": "fixed"}) == {"type": "string", "enum": ["fixed"]}
    assert prop({"type": "boolean", "const": True}) == {"type": "boolean", "description": "(always true)"}
    assert prop({"type": "integer", "enum": [1, 5, 10], "description": "size"}) == {
        "type": "integer", "description": "size (one of: 1, 5, 10)"}


def test_formats():
    assert prop({"type": "string", "format": "date-time"}) == {"type": "string", "format": "date-time"}
    assert prop({"type": "string", "format": "email"}) == {"type": "string", "description": "(format: email)"}
    assert prop({"type": "integer", "format": "int64"}) == {"type": "integer", "format": "int64"}
    assert prop({"type": "number", "format": "decimal"}) == {"type": "number", "description": "(format: decimal)"}


def test_bounds():
    assert prop({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1}) == {
        "type": "number", "description": "(greater than 0; less than 1)"}
    assert prop({"type": "integer", "exclusiveMinimum": 0, "minimum": 5, "exclusiveMaximum": 10}) == {
        "type": "integer", "minimum": 5, "maximum": 9}
    assert prop({"type": "integer", "minimum": 0, "exclusiveMinimum": True}) == {"type": "integer", "minimum": 1}
    assert prop({"type": "number", "multipleOf": 0.5}) == {"type": "number", "description": "(a multiple of 0.5)"}


def test_words_join_the_description():
    assert prop({"type": "integer", "title": "Count", "description": "How many", "default": 3, "examples": [1, 2],
                 "deprecated": True}) == {
        "type": "integer", "description": "How many (default: 3; examples: 1, 2; deprecated)"}
    assert prop({"type": "string", "title": "Name", "example": "bob"}) == {"type": "string", "description": "Name (examples: \"bob\")"}
    assert prop({"type": "string", "not": {"const": "x"}, "$comment": "internal"}) == {
        "type": "string", "description": '(not: {"const":"x"})'}


def test_objects():
    assert prop({"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}}) == {
        "type": "object", "description": "(keys map to array of string)"}
    assert prop({"type": "object", "properties": {"a": {"type": "string"}}, "additionalProperties": {"type": "integer"},
                 "propertyNames": {"pattern": "^[a-z]+$"}}) == {
        "type": "object", "properties": {"a": {"type": "string"}},
        "description": "(other keys map to integer; key names: strings matching ^[a-z]+$)"}
    assert prop({"type": "object", "patternProperties": {"^x-": {"type": "string"}}, "additionalProperties": False}) == {
        "type": "object", "description": "(keys matching ^x- map to string)"}
    # required stays consistent with properties
    assert prop({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a", "a", "b"]}) == {
        "type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    assert prop({"type": "object", "required": ["b"]}) == {"type": "object", "description": "(an object with any keys)"}
    assert prop({"type": "string", "properties": {"a": {}}, "required": ["a"]}) == {"type": "string"}


def test_arrays():
    assert prop({"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 3, "uniqueItems": True}) == {
        "type": "array", "minItems": 1, "maxItems": 3, "items": {"type": "string"}, "description": "(unique items)"}
    assert prop({"type": "array", "prefixItems": [{"type": "number"}, {"type": "string"}]}) == {
        "type": "array", "items": {"anyOf": [{"type": "number"}, {"type": "string"}]},
        "description": "(in order: number, string)"}


def test_a_tool_without_parameters_has_none():
    assert parameters({"type": "object", "properties": {}, "additionalProperties": False}) is None
    assert parameters({"type": "object"}) is None
    assert parameters(None) is None


# -- any schema -----------------------------------------------------------------------

KEYWORDS = st.sampled_from(["description", "title", "default", "format", "minimum", "exclusiveMinimum", "const",
                            "pattern", "examples", "deprecated", "$comment", "minItems", "uniqueItems", "not"])
VALUES = st.one_of(st.none(), st.booleans(), st.integers(-5, 5), st.floats(allow_nan=False, allow_infinity=False),
                   st.text(max_size=5), st.lists(st.integers(), max_size=2))
TYPES = st.sampled_from(["string", "number", "integer", "boolean", "array", "object", "null"])


def _schemas() -> st.SearchStrategy:
    leaf = st.one_of(
        st.dictionaries(st.just("type"), st.one_of(TYPES, st.lists(TYPES, max_size=3)), max_size=1),
        st.builds(lambda e: {"enum": e}, st.lists(VALUES, min_size=1, max_size=3)),
        st.just({"$ref": "#/$defs/D"}), st.just({"$ref": "#"}), st.just({"$ref": "#/nowhere"}), st.just(True), st.just({}),
    )

    def extend(children: st.SearchStrategy) -> st.SearchStrategy:
        return st.one_of(
            st.builds(lambda p, r: {"type": "object", "properties": p, "required": r},
                      st.dictionaries(st.sampled_from(["a", "b", "type", "properties"]), children, max_size=3),
                      st.lists(st.sampled_from(["a", "b", "c"]), max_size=3)),
            st.builds(lambda i: {"type": "array", "items": i}, children),
            st.builds(lambda bs: {"anyOf": bs}, st.lists(children, max_size=3)),
            st.builds(lambda bs: {"oneOf": bs}, st.lists(children, max_size=3)),
            st.builds(lambda bs: {"allOf": bs}, st.lists(children, max_size=2)),
            st.builds(lambda a: {"type": "object", "additionalProperties": a}, st.one_of(st.booleans(), children)),
            st.builds(lambda s, k, v: {**s, k: v} if isinstance(s, dict) else s, children, KEYWORDS, VALUES),
        )

    return st.recursive(leaf, extend, max_leaves=12)


@given(_schemas(), _schemas())
@settings(max_examples=400, deadline=None)
def test_any_schema_becomes_valid_for_gemini(properties, definition):
    schema = {"type": "object", "properties": {"p": properties, "q": {"type": "string"}}, "$defs": {"D": definition}}
    cleaned = clean(schema)
    assert cleaned is not None and set(cleaned["properties"]) == {"p", "q"}
