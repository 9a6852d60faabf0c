"""JSON Schema errors → one line each, naming the key path and what to write instead."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import jsonschema

# What to write, by the last key of the failing path (jsonschema's own wording for
# `oneOf` and `pattern` failures says nothing a user can act on).
HINTS = {
    "base_url": "an http(s) URL without query string, e.g. https://api.example.com/anthropic",
    "match": "a model name, a glob such as 'claude-*haiku*', or one of {exact: NAME}, {glob: PATTERN}, {regex: EXPR}",
    "default": "null (unmatched models get 404) or {provider: NAME} with an optional model",
    "label": "letters, digits, '_', '.' or '-', starting with a letter or digit",
    "port": "a port number from 1 to 65535",
}
TYPE_NAMES = {
    "object": "a mapping (key: value lines)",
    "array": "a list",
    "string": "a string",
    "integer": "a whole number",
    "number": "a number",
    "null": "null",
    "boolean": "true or false",
}


def key_path(parts: Iterable[Any]) -> str:
    """deque(['routes', 2, 'provider']) → 'routes[2].provider'."""
    text = ""
    for part in parts:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "(top level)"


def describe(error: jsonschema.ValidationError) -> str:
    path = list(error.absolute_path)
    where = key_path(path)
    last = next((p for p in reversed(path) if isinstance(p, str)), "")
    hint = HINTS.get(last)
    match error.validator:
        case "additionalProperties":
            known = sorted((error.schema.get("properties") or {}).keys())
            extra = sorted(set(error.instance) - set(known)) if isinstance(error.instance, dict) else []
            names = ", ".join(f"'{k}'" for k in extra)
            tail = f"; known keys: {', '.join(known)}" if known else ""
            return f"{where}: unknown key {names}{tail}"
        case "required":
            missing = [k for k in error.validator_value if k not in (error.instance or {})]
            return f"{where}: missing required key {', '.join(repr(k) for k in missing)}"
        case "enum":
            choices = ", ".join(str(c) for c in error.validator_value)
            return f"{where}: {error.instance!r} is not one of: {choices}"
        case "type":
            wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
            return f"{where}: expected {' or '.join(TYPE_NAMES.get(t, t) for t in wanted)}, got {error.instance!r}"
        case "propertyNames":
            return f"{where}: name {error.instance!r} is not allowed; use {HINTS['label']}"
        case "pattern" | "oneOf" | "minimum" | "maximum" if hint:
            return f"{where}: {error.instance!r} is not valid; write {hint}"
        case "minProperties" if where == "providers":
            return "providers: at least one provider is needed"
    return f"{where}: {error.message}"


def describe_all(validator: jsonschema.protocols.Validator, data: Any, limit: int = 10) -> list[str]:
    """Every schema problem in document order, deepest first within a key, at most `limit`."""
    errors = sorted(validator.iter_errors(data), key=lambda e: [str(p) for p in e.absolute_path])
    problems = [describe(e) for e in errors]
    unique = list(dict.fromkeys(problems))
    if len(unique) > limit:
        unique = unique[:limit] + [f"... and {len(unique) - limit} more problems"]
    return unique
