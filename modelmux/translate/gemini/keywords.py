"""What each JSON Schema keyword becomes for Gemini: kept, or words in the description. Pure."""

from __future__ import annotations

import json
from typing import Any

Schema = dict[str, Any]

# Kept as they are, for the types they apply to.
KEPT = {
    "string": ("minLength", "maxLength", "pattern"),
    "number": ("minimum", "maximum"),
    "integer": ("minimum", "maximum"),
    "array": ("minItems", "maxItems"),
    "object": ("minProperties", "maxProperties"),
    "boolean": (),
}
FORMATS = {"string": ("enum", "date-time"), "integer": ("int32", "int64"), "number": ("float", "double")}


def choices(schema: Schema, kind: str, out: Schema, notes: list[str]) -> None:
    """Gemini takes enums of strings only; other choices become words."""
    values = list(schema["enum"]) if isinstance(schema.get("enum"), list) else []
    if "const" in schema:
        values = [schema["const"]]
    if None in values:
        out["nullable"] = True
        values = [v for v in values if v is not None]
    if not values:
        return
    if kind == "string" and all(isinstance(v, str) for v in values):
        out["enum"] = values
    elif len(values) == 1:
        notes.append(f"always {compact(values[0])}")
    else:
        notes.append("one of: " + ", ".join(compact(v) for v in values))


def format_words(schema: Schema, kind: str, out: Schema, notes: list[str]) -> None:
    value = schema.get("format")
    if not isinstance(value, str):
        return
    if value in FORMATS.get(kind, ()):
        out["format"] = value
    else:
        notes.append(f"format: {value}")


def bounds(schema: Schema, kind: str, out: Schema, notes: list[str]) -> None:
    """Exclusive bounds: exact as inclusive ones for integers, words for numbers."""
    if kind not in ("number", "integer"):
        return
    for key, inclusive, step, words in (("exclusiveMinimum", "minimum", 1, "greater than"), ("exclusiveMaximum", "maximum", -1, "less than")):
        bound = schema.get(key)
        if bound is True and isinstance(schema.get(inclusive), (int, float)):  # draft 4: a flag on minimum
            bound = schema[inclusive]
        if isinstance(bound, bool) or not isinstance(bound, (int, float)):
            continue
        if kind == "integer" and float(bound).is_integer():
            tighter = int(bound) + step
            current = out.get(inclusive)
            out[inclusive] = tighter if current is None else (max if step > 0 else min)(current, tighter)
        else:
            notes.append(f"{words} {compact(bound)}")
    if isinstance(schema.get("multipleOf"), (int, float)):
        notes.append(f"a multiple of {compact(schema['multipleOf'])}")


def notes_of(schema: Schema) -> list[str]:
    notes = []
    if "default" in schema:
        notes.append(f"default: {compact(schema['default'])}")
    examples: list[Any] = schema["examples"] if isinstance(schema.get("examples"), list) else []
    if "example" in schema:
        examples = [*examples, schema["example"]]
    if examples:
        notes.append("examples: " + ", ".join(compact(e) for e in examples))
    if schema.get("deprecated") is True:
        notes.append("deprecated")
    return notes


def describe(out: Schema, description: Any, notes: list[str]) -> Schema:
    notes = list(dict.fromkeys(notes))
    text = description.strip() if isinstance(description, str) else ""
    if notes:
        text = f"{text} ({'; '.join(notes)})" if text else f"({'; '.join(notes)})"
    if text:
        out["description"] = text
    return out


def is_null(schema: Schema) -> bool:
    return schema.get("type") == "null" or ("const" in schema and schema["const"] is None) or schema.get("enum") == [None]


def string_choices(schema: Any) -> list[str] | None:
    """The strings a `const` or string `enum` schema allows; None for any other schema."""
    if not isinstance(schema, dict) or schema.get("type", "string") != "string":
        return None
    if isinstance(schema.get("const"), str):
        return [schema["const"]]
    values = schema.get("enum")
    if isinstance(values, list) and values and all(isinstance(v, str) for v in values):
        return values
    return None


def single_type(types: Any) -> str | None:
    if isinstance(types, list):
        types = [t for t in types if t != "null"]
        return types[0] if len(types) == 1 else None
    return types if isinstance(types, str) else None


def inferred_type(schema: Schema) -> str | None:
    """JSON Schema lets the type go unsaid; Gemini does not."""
    if any(k in schema for k in ("properties", "required", "additionalProperties", "patternProperties", "propertyNames")):
        return "object"
    if any(k in schema for k in ("items", "prefixItems", "minItems", "maxItems")):
        return "array"
    values = schema["enum"] if isinstance(schema.get("enum"), list) else [schema["const"]] if "const" in schema else []
    values = [v for v in values if v is not None]
    if values:
        if all(isinstance(v, str) for v in values):
            return "string"
        if all(isinstance(v, bool) for v in values):
            return "boolean"
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            return "integer"
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            return "number"
    if any(k in schema for k in ("pattern", "minLength", "maxLength", "format")):
        return "string"
    if any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")):
        return "number"
    return None


def summary(schema: Schema) -> str:
    """A few words for a schema that has to become a note."""
    choices = string_choices(schema)
    if choices:
        return "one of " + ", ".join(choices)
    kind = single_type(schema.get("type")) or inferred_type(schema)
    if kind == "array" and isinstance(schema.get("items"), dict):
        return f"array of {summary(schema['items'])}"
    if kind == "string" and isinstance(schema.get("pattern"), str):
        return f"strings matching {schema['pattern']}"
    return kind or "any value"


def compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
