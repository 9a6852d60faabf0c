"""JSON Schema (a tool's input_schema) → the OpenAPI subset Gemini's function
declarations accept. Pure.

Gemini's `Schema` knows type, format, description, nullable, enum, properties,
required, items, anyOf, min/max of numbers, lengths, item and property counts and
pattern, and answers 400 to anything else ("Unknown name \"additionalProperties\"",
"type: must be specified when not using one_of, any_of or all_of fields", "enum
only allowed for STRING type", "properties: only allowed for OBJECT type",
"parameters.properties: should be non-empty for OBJECT type", a `required` name
missing from `properties`). Claude Code's own tools use `$schema`,
`additionalProperties`, `propertyNames`, `const`, `default`, `exclusiveMinimum`,
`format: uri`, typeless properties and anyOf unions; MCP tools add `$ref`/`$defs`,
`oneOf`, `allOf` and type lists.

The cleaner keeps what Gemini reads and moves what it cannot into the description,
so the model still learns it: "(default: 3; format: uri; greater than 0)".
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

from modelmux.translate.gemini.keywords import (
    KEPT,
    Schema,
    bounds,
    choices,
    compact,
    describe,
    format_words,
    inferred_type,
    is_null,
    notes_of,
    single_type,
    string_choices,
    summary,
)

# Keywords the cleaner reads itself.
HANDLED = frozenset({
    "type", "description", "title", "enum", "const", "format", "nullable", "default", "examples", "example",
    "properties", "required", "additionalProperties", "propertyNames", "patternProperties", "items", "prefixItems",
    "anyOf", "oneOf", "allOf", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "uniqueItems", "deprecated",
    "$ref", "$defs", "definitions", *(k for keys in KEPT.values() for k in keys),
})  # fmt: skip
# Keywords that say nothing a model needs.
SILENT = frozenset({
    "$schema", "$id", "$comment", "$anchor", "$dynamicAnchor", "$dynamicRef", "$vocabulary", "readOnly",
    "writeOnly", "discriminator", "xml", "externalDocs", "additionalItems", "unevaluatedProperties",
    "unevaluatedItems", "contentSchema", "propertyOrdering",
})  # fmt: skip
# Keywords that only become words in a description.
WORDS = ("description", "title", "default", "examples", "example", "deprecated")
SCALARS = ({"type": "string"}, {"type": "number"}, {"type": "boolean"}, {"type": "object"})
# A value of any type: Gemini needs a type or an anyOf on every schema.
ANY: Schema = {"anyOf": [*SCALARS, {"type": "array", "items": {"anyOf": list(SCALARS)}}]}
MAX_DEPTH = 32
MAX_NODES = 5000  # a schema that inlines to more is not one a model reads

# Distinct tool schemas remembered: Claude Code's tools and a good number of MCP servers'.
CACHED_SCHEMAS = 512


def parameters(input_schema: Any) -> Schema | None:
    """The `parameters` of a function declaration; None when the tool takes none
    (Gemini rejects an OBJECT without properties there). Claude Code sends the same
    tools with every request, so cleaned schemas are remembered by their JSON text
    (a third of the cost of cleaning them); the result is shared, so callers must not
    change it."""
    if not isinstance(input_schema, dict):
        return None
    return _cleaned(json.dumps(input_schema, separators=(",", ":")))


@lru_cache(maxsize=CACHED_SCHEMAS)
def _cleaned(text: str) -> Schema | None:
    input_schema = json.loads(text)
    cleaned = Cleaner(input_schema).clean(input_schema)
    if cleaned.get("type") != "object" or not cleaned.get("properties"):
        return None
    return cleaned


class Cleaner:
    """One schema document: `$ref`s resolve against its root."""

    def __init__(self, root: Schema) -> None:
        self.root = root
        self._expanding: list[str] = ["#"]  # the refs being inlined above the current node
        self._nodes = 0

    def clean(self, raw: Any, depth: int = 0) -> Schema:
        mark = len(self._expanding)
        try:
            schema, ref = self._inline(raw)
            self._nodes += 1
            if schema is None or depth > MAX_DEPTH or self._nodes > MAX_NODES:
                return self._stub(raw if isinstance(raw, dict) else {}, ref)
            return self._clean(self._merge_all_of(schema), depth)
        finally:
            del self._expanding[mark:]  # what this node inlined is free again beside it

    def _inline(self, raw: Any) -> tuple[Schema | None, str | None]:
        """`raw` with its `$ref`s replaced by their targets (siblings win), each ref now
        being expanded; (None, ref) when a ref refers back to itself or to nothing."""
        if not isinstance(raw, dict):
            return dict(ANY), None  # `true`: anything
        schema, ref = raw, None
        while isinstance(schema.get("$ref"), str):
            ref = schema["$ref"]
            target = self.lookup(ref)
            if target is None or ref in self._expanding:
                return None, ref
            self._expanding.append(ref)
            schema = {**target, **{k: v for k, v in schema.items() if k != "$ref"}}
        return schema, ref

    def lookup(self, ref: str) -> Schema | None:
        """A local JSON pointer (`#`, `#/$defs/X`, `#/properties/a/items`); remote refs
        cannot be fetched by a pure translator."""
        if not ref.startswith("#"):
            return None
        node: Any = self.root
        for token in filter(None, ref[1:].split("/")):
            token = unquote(token).replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict):
                node = node.get(token)
            elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
                node = node[int(token)]
            else:
                return None
        return node if isinstance(node, dict) else None

    def peek(self, raw: Any) -> Schema:
        """`raw` with its `$ref` chain followed, for looking at, not cleaning."""
        seen: set[str] = set()
        while isinstance(raw, dict) and isinstance(raw.get("$ref"), str) and raw["$ref"] not in seen:
            seen.add(raw["$ref"])
            target = self.lookup(raw["$ref"])
            if target is None:
                break
            raw = {**target, **{k: v for k, v in raw.items() if k != "$ref"}}
        return raw if isinstance(raw, dict) else {}

    def _stub(self, schema: Schema, ref: str | None) -> Schema:
        """Where a schema refers to itself (or to what cannot be found, or nests past
        any use) it ends in its type and a few words."""
        target = self.lookup(ref) if ref else None
        source = target or schema
        kind = single_type(source.get("type")) or inferred_type(source) or "object"
        if ref is None:
            note = "nested deeper than shown"
        elif target is None:
            note = f"schema {ref}"
        else:
            note = f"the same shape as {'the whole schema' if ref == '#' else ref.rsplit('/', 1)[-1]}, nested"
        stub: Schema = {"type": kind} if kind in KEPT else dict(ANY)
        if kind == "array":
            stub["items"] = dict(ANY)
        return describe(stub, schema.get("description") or source.get("description"), [note])

    def _merge_all_of(self, schema: Schema) -> Schema:
        parts = schema.get("allOf")
        if not isinstance(parts, list):
            return schema
        merged: Schema = {k: v for k, v in schema.items() if k != "allOf"}
        for raw in parts:
            part, _ = self._inline(raw)
            if part is None:
                continue  # it refers back to what is being expanded: nothing new
            for key, value in self._merge_all_of(part).items():
                if key == "properties" and isinstance(value, dict):
                    merged["properties"] = {**value, **(merged.get("properties") or {})}
                elif key == "required" and isinstance(value, list):
                    merged["required"] = list(dict.fromkeys([*required_names(merged.get("required")), *required_names(value)]))
                else:
                    merged.setdefault(key, value)
        return merged

    def _clean(self, schema: Schema, depth: int) -> Schema:
        notes: list[str] = []
        nullable = schema.get("nullable") is True
        types = schema.get("type")
        if isinstance(types, list):
            nullable = nullable or "null" in types
            types = [t for t in types if t != "null"]
            types = types[0] if len(types) == 1 else types or None
        elif types == "null":
            nullable, types = True, None
            notes.append("always null")
        branches = [b for key in ("anyOf", "oneOf") for b in schema.get(key) or () if isinstance(schema.get(key), list)]
        if branches:
            real = [b for b in branches if not is_null(self.peek(b))]
            nullable = nullable or len(real) < len(branches)
            rest = {k: v for k, v in schema.items() if k not in ("anyOf", "oneOf")}
            if nullable:
                rest["nullable"] = True
            return self._union(rest, real, depth)
        if isinstance(types, list):  # ["string", "number"]: one branch per type, the words on the parent
            rest = {k: v for k, v in schema.items() if k in HANDLED and k not in WORDS}
            out: Schema = {"anyOf": [self._clean({**rest, "type": t}, depth) for t in types]}
            notes += notes_of(schema)
        else:
            out = self._typed(schema, types if isinstance(types, str) else inferred_type(schema), notes, depth)
        if nullable:
            out["nullable"] = True
        for key, value in schema.items():
            if key not in HANDLED and key not in SILENT:
                notes.append(f"{key}: {compact(value)}")
        return describe(out, schema.get("description") or schema.get("title"), notes)

    def _union(self, rest: Schema, branches: list[Any], depth: int) -> Schema:
        """anyOf/oneOf without its null branches: one branch merges into its parent;
        string constants become one enum; objects merge (Gemini reads a flat object
        best); the rest stays an anyOf."""
        if not branches:
            return self._clean(rest, depth)
        peeked = [self.peek(b) for b in branches]
        if all(string_choices(p) is not None for p in peeked):
            allowed = list(dict.fromkeys(c for p in peeked for c in string_choices(p) or ()))
            return self._clean({**rest, "type": "string", "enum": allowed}, depth)
        if len(peeked) == 1 or all((single_type(p.get("type")) or inferred_type(p)) == "object" for p in peeked):
            mark = len(self._expanding)
            inlined = [self._inline(b)[0] for b in branches]
            if all(i is not None for i in inlined):
                merged = [self._merge_all_of(i) for i in inlined if i is not None]
                return self._clean({**merged[0], **rest} if len(merged) == 1 else _merge_objects(rest, merged), depth)
            del self._expanding[mark:]  # a branch refers back to its parent: keep the union
        out: Schema = {"anyOf": [self.clean(b, depth + 1) for b in branches]}
        if rest.get("nullable"):
            out["nullable"] = True
        return describe(out, rest.get("description") or rest.get("title"), notes_of(rest))

    def _typed(self, schema: Schema, kind: str | None, notes: list[str], depth: int) -> Schema:
        notes += notes_of(schema)
        if kind not in KEPT:
            return dict(ANY)
        out: Schema = {"type": kind}
        for key in KEPT[kind]:
            if isinstance(schema.get(key), (int, float, str)) and not isinstance(schema.get(key), bool):
                out[key] = schema[key]
        choices(schema, kind, out, notes)
        format_words(schema, kind, out, notes)
        bounds(schema, kind, out, notes)
        if kind == "array":
            out["items"] = self._items(schema, notes, depth)
            if schema.get("uniqueItems") is True:
                notes.append("unique items")
        if kind == "object":
            self._object(schema, out, notes, depth)
        return out

    def _items(self, schema: Schema, notes: list[str], depth: int) -> Schema:
        items = schema.get("items")
        tuple_items = schema.get("prefixItems") if isinstance(schema.get("prefixItems"), list) else None
        if isinstance(items, list):  # draft 4 tuples
            tuple_items, items = items, None
        if tuple_items:
            notes.append("in order: " + ", ".join(summary(self.peek(i)) for i in tuple_items))
            return self.clean({"anyOf": tuple_items} if len(tuple_items) > 1 else tuple_items[0], depth + 1)
        return self.clean(items if isinstance(items, dict) else {}, depth + 1)

    def _object(self, schema: Schema, out: Schema, notes: list[str], depth: int) -> None:
        properties: dict[str, Any] = schema["properties"] if isinstance(schema.get("properties"), dict) else {}
        if properties:
            out["properties"] = {name: self.clean(p, depth + 1) for name, p in properties.items()}
        required = [n for n in required_names(schema.get("required")) if n in properties]
        if required:
            out["required"] = required
        extra = schema.get("additionalProperties")
        if isinstance(extra, dict) and extra:
            notes.append(f"{'other keys' if properties else 'keys'} map to {summary(self.peek(extra))}")
        elif (extra is True or extra == {} or extra is None) and not properties:
            notes.append("an object with any keys")
        names = schema.get("propertyNames")
        if isinstance(names, dict) and set(names) - {"type"}:
            notes.append(f"key names: {summary(self.peek(names))}")
        for pattern, value in (schema.get("patternProperties") or {}).items():
            notes.append(f"keys matching {pattern} map to {summary(self.peek(value))}")


def required_names(names: Any) -> list[str]:
    """A schema's `required`: its names, once each. JSON Schema wants a list of unique
    names there; a client's tool may send anything (`[[]]`, a number), and what is not a
    name requires nothing."""
    return list(dict.fromkeys(n for n in names if isinstance(n, str))) if isinstance(names, list) else []


def _merge_objects(rest: Schema, branches: list[Schema]) -> Schema:
    """Object variants as one object: every property of any variant, required only
    where every variant requires it; what set the variants apart goes in a note."""
    properties: dict[str, Any] = dict(rest.get("properties") or {})
    for branch in branches:
        for name, value in (branch.get("properties") or {}).items():
            old = properties.get(name)
            both = (string_choices(old), string_choices(value)) if isinstance(old, dict) else (None, None)
            if old is None:
                properties[name] = value
            elif both[0] is not None and both[1] is not None:
                properties[name] = {**old, "enum": list(dict.fromkeys([*both[0], *both[1]]))}
                properties[name].pop("const", None)
    common = set.intersection(*(set(required_names(b.get("required"))) for b in branches))
    required = list(dict.fromkeys([*required_names(rest.get("required")),
                                  *(n for b in branches for n in required_names(b.get("required")) if n in common)]))
    variants = " | ".join(_variant(b) for b in branches)
    described = rest.get("description") if isinstance(rest.get("description"), str) else None
    description = "; ".join(filter(None, [described, f"one of: {variants}"]))
    return {**rest, "type": "object", "properties": properties, "required": required, "description": description}


def _variant(branch: Schema) -> str:
    consts = [f"{n}={compact(p['const'])}" for n, p in (branch.get("properties") or {}).items() if isinstance(p, dict) and "const" in p]
    required = required_names(branch.get("required"))
    return " ".join(filter(None, [", ".join(consts), f"requires {', '.join(required)}" if required else ""])) or "any"


